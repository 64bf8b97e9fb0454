"""Which of the project's own files one order runs through, from `POST /api/orders` to the dashboard's frame.

    .venv/bin/python bench/order_path.py [--tree DIR]     # DIR: a checkout to count (default: this one)

One process, no Kafka: the order is posted to the ASGI application as daphne would pass it, the in-memory
bus then carries the saga through every service's real Dispatcher and handlers (the courier's Celery steps
inline), and the dashboard's live feed builds and sends its frame. A profiler hook on every thread notes
the source file of each Python function called; a first order warms everything up and is not counted.
Files under tests/ and bench/ are left out; so is everything outside the tree (Django, Kafka, …). Kafka's
own runner and relay are not run here: `eventbus/runner.py`, `eventbus/kafka_io.py` and `eventbus/relay.py`
are on the real path too, as is the browser's side (`dashboard/sockets.py`, `dashboard/frames.py`).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

ALIASES = ("default", "shop", "inventory", "shipping", "dashboard")


def _env(tree: Path, db: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        DJANGO_DEBUG="0",
        DJANGO_SECRET_KEY="order-path",
        DJANGO_ALLOWED_HOSTS="127.0.0.1,localhost",
        DJANGO_SECURE_SSL_REDIRECT="0",
        ORDER_RATE_LIMIT="",
        LOG_LEVEL="ERROR",
        SHIPPING_STEP_SECONDS="0",
        DATABASE_URL=f"sqlite:///{db / 'default.sqlite3'}",
        PYTHONPATH=str(tree),
    )
    for alias in ALIASES[1:]:
        env[f"{alias.upper()}_DATABASE_URL"] = f"sqlite:///{db / f'{alias}.sqlite3'}"
    env.pop("CONVEYOR_TEST_DB_DIR", None)
    return env


async def _post(app, body: bytes) -> int:
    from asgiref.testing import ApplicationCommunicator

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/api/orders",
        "raw_path": b"/api/orders",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"127.0.0.1"), (b"content-type", b"application/json")],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }
    talk = ApplicationCommunicator(app, scope)
    await talk.send_input({"type": "http.request", "body": body, "more_body": False})
    start = await talk.receive_output(120)
    while (await talk.receive_output(120)).get("more_body"):
        pass
    return start["status"]


def trace(tree: Path) -> None:
    seen: set[str] = set()

    def note(frame, event, arg):
        if event == "call":
            seen.add(frame.f_code.co_filename)

    threading.setprofile(note)  # every thread started from here on (request threads, pushers)
    sys.setprofile(note)
    from config.asgi import application
    from config.celery import app as celery_app

    celery_app.conf.task_always_eager = True
    import orjson

    from demo.catalog import PRODUCTS
    from eventbus.testing import InMemoryBus
    from inventory import services as inventory
    from shop.models import Product

    Product.objects.using("shop").bulk_create(
        [Product(sku=s, name=n, description=d, price=p, available=10**6) for s, n, d, p, _ in PRODUCTS]
    )
    for sku, *_ in PRODUCTS:
        inventory.set_stock(sku, 10**6)
    bus = InMemoryBus("shop", "inventory", "shipping", "dashboard")
    bus.deliver()
    try:
        from dashboard import live_feed as live
    except ImportError:  # a tree from before the module had this name
        from dashboard import live
    live.FLUSH_SECONDS = 1e9  # the frame is flushed below, once the whole saga has run, not by a handler

    def one_order(i: int) -> None:
        body = orjson.dumps(
            {
                "email": f"a{i}@example.com",
                "name": "Ada",
                "address": "1 Loop",
                "lines": [{"sku": PRODUCTS[0][0], "quantity": 1}, {"sku": PRODUCTS[3][0], "quantity": 2}],
            }
        )
        status = asyncio.run(_post(application, body))
        assert status in (200, 201, 202), status
        bus.deliver()
        assert live.feed.flush() is not None, "the dashboard noted nothing"
        live.feed.sender.pusher.wait_idle()  # the frame is sent from the pusher's thread

    one_order(0)
    seen.clear()
    one_order(1)
    sys.setprofile(None)
    threading.setprofile(None)
    root = str(tree.resolve()) + "/"
    own = sorted(
        f[len(root) :]
        for f in seen
        if f.startswith(root)
        and not f.startswith(tuple(root + d for d in ("tests/", "bench/", ".venv/", "var/")))
        and "/tests/" not in f
    )
    for f in own:
        print(f)
    print(f"{len(own)} files")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tree", default=str(Path(__file__).resolve().parent.parent))
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    tree = Path(args.tree).resolve()
    if args.child:
        sys.path.insert(0, str(tree))
        return trace(tree)
    with tempfile.TemporaryDirectory(prefix="order-path-") as db:
        env = _env(tree, Path(db))
        for alias in ALIASES:
            subprocess.run(
                [sys.executable, "manage.py", "migrate", "--database", alias, "-v", "0"], cwd=tree, env=env, check=True
            )
        subprocess.run([sys.executable, __file__, "--tree", str(tree), "--child"], cwd=tree, env=env, check=True)


if __name__ == "__main__":
    main()
