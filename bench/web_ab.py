"""The web's runtime pieces against Django's stock ones, in one run: daphne serving `GET /healthz` and
`POST /api/orders` at 16 keep-alive connections while a second process writes to the shop database as the
shop consumer does, variants interleaved round after round.

    .venv/bin/python -m bench.web_ab [--rounds 5] [--seconds 5] [--variants ours,stock_sqlite,stock_asgi,nofreeze]

- `ours`: the application as deployed (`config/asgi.py`).
- `stock_sqlite`: Django's own sqlite3 backend with the same OPTIONS (`transaction_mode="IMMEDIATE"`,
  `timeout`, the WAL pragmas), so no write queue and no connection pool.
- `stock_asgi`: `django.core.asgi.get_asgi_application` in place of the runtime's handler.
- `nofreeze`: without `runtime.heap`'s `gc.freeze()` at start.

Per variant: requests/s, latency percentiles, the web's CPU per request, statuses (a 5xx or a "database is
locked" is a failure), and the competing writer's transactions and errors.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
WORK = ROOT / "var" / "bench" / "web_ab"
VARIANTS = ("ours", "stock_sqlite", "stock_asgi", "nofreeze")


def _prepare(variant: str) -> None:
    """Before Django loads the settings: what the variant swaps for the stock piece."""
    os.environ.setdefault("DB_CONN_MAX_AGE", "0")  # as config/asgi.py sets it for the web
    import config.settings as settings

    if variant == "stock_sqlite":
        for db in settings.DATABASES.values():
            db["ENGINE"] = "django.db.backends.sqlite3"
            db["OPTIONS"].pop("pool", None)
    if variant == "stock_asgi":
        import django.core.asgi

        import runtime.asgi

        runtime.asgi.get_asgi_application = django.core.asgi.get_asgi_application
    if variant == "nofreeze":
        import runtime.heap

        runtime.heap.freeze_startup_objects = lambda: None


def __getattr__(name: str):
    """`bench.web_ab:application`, for daphne: config.asgi's application with the variant's swap."""
    if name != "application":
        raise AttributeError(name)
    _prepare(os.environ["BENCH_WEB_VARIANT"])
    from config.asgi import application

    return application


def writer(stop: Path) -> None:
    """A second process writing to the shop database in short transactions, as the shop consumer's batches do."""
    _prepare(os.environ["BENCH_WEB_VARIANT"])
    import django

    django.setup()
    from django.db import OperationalError, transaction
    from django.db.models import F

    from shop.models import Product

    done = errors = 0
    (WORK / "writer-ready").touch()
    while not stop.exists():
        try:
            with transaction.atomic(using="shop"):
                Product.objects.using("shop").filter(sku="MUG-001").update(available=F("available") + 0)
                time.sleep(0.002)  # the batch's other work, inside the transaction
            done += 1
        except OperationalError:
            errors += 1
        time.sleep(0.005)
    print(json.dumps({"transactions": done, "errors": errors}))


def seed() -> None:
    import django

    django.setup()
    from demo.catalog import PRODUCTS
    from shop.models import Product

    Product.objects.using("shop").bulk_create(
        [Product(sku=s, name=n, description=d, price=p, available=10**9) for s, n, d, p, _ in PRODUCTS]
    )


def one(variant: str, env: dict, seconds: float) -> dict:
    import orjson

    from bench.common import cpu_seconds, order_fields, port_open, wait_until
    from bench.http_load import load
    from tests.support import free_port

    port = free_port()
    env = env | {"BENCH_WEB_VARIANT": variant}
    web = subprocess.Popen(
        [sys.executable, "-m", "config.serve", "-b", "127.0.0.1", "-p", str(port), "bench.web_ab:application"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=open(WORK / f"web-{variant}.log", "a"),  # noqa: SIM115
    )
    try:
        wait_until(lambda: port_open(port), 60, f"daphne ({variant})")
        out = {}
        load(port, "GET", "/healthz", seconds=1, concurrency=4)
        cpu0 = cpu_seconds(web.pid)
        out["healthz"] = load(port, "GET", "/healthz", seconds=seconds)
        out["healthz"]["cpu_ms"] = (cpu_seconds(web.pid) - cpu0) * 1000 / max(out["healthz"]["requests"], 1)

        def body(i: int) -> bytes:
            return orjson.dumps(order_fields(i))

        load(port, "POST", "/api/orders", make_body=body, seconds=1, concurrency=4)
        stop, ready = WORK / "stop-writer", WORK / "writer-ready"
        stop.unlink(missing_ok=True)
        ready.unlink(missing_ok=True)
        writing = subprocess.Popen(
            [sys.executable, "-m", "bench.web_ab", "--writer"], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True
        )
        wait_until(ready.exists, 120, "the competing writer")
        time.sleep(0.5)
        cpu0 = cpu_seconds(web.pid)
        out["orders"] = load(port, "POST", "/api/orders", make_body=body, seconds=seconds)
        out["orders"]["cpu_ms"] = (cpu_seconds(web.pid) - cpu0) * 1000 / max(out["orders"]["requests"], 1)
        stop.touch()
        out["writer"] = json.loads(writing.communicate(timeout=30)[0].strip().splitlines()[-1])
        return out
    finally:
        web.terminate()
        web.wait(20)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--writer", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--seed", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.writer:
        return writer(WORK / "stop-writer")
    if args.seed:
        return seed()

    from bench.hop_ab import ALIASES, _env
    from tests.support import RedisServer

    if WORK.exists():
        shutil.rmtree(WORK)
    (WORK / "db").mkdir(parents=True)
    redis = RedisServer(WORK / "redis")
    redis.start()
    try:
        env = _env(WORK / "db") | {"REDIS_URL": redis.url, "ORDER_RATE_LIMIT": "", "DJANGO_SECURE_SSL_REDIRECT": "0"}
        for alias in ALIASES:
            subprocess.run(
                [sys.executable, "manage.py", "migrate", "--database", alias, "-v", "0"], cwd=ROOT, env=env, check=True
            )
        subprocess.run([sys.executable, "-m", "bench.web_ab", "--seed"], cwd=ROOT, env=env, check=True)
        variants = args.variants.split(",")
        results: dict[str, list[dict]] = {v: [] for v in variants}
        for r in range(args.rounds):
            for variant in variants[r % len(variants) :] + variants[: r % len(variants)]:
                results[variant].append(one(variant, env, args.seconds))
            print(f"round {r + 1}/{args.rounds} done, load {os.getloadavg()[0]:.1f}", flush=True)
    finally:
        redis.stop()
    (WORK / "result.json").write_text(json.dumps(results, indent=1))
    print(f"\nmedian (min-max) of {args.rounds} rounds, 16 connections, {args.seconds:g} s each")
    columns = [
        ("healthz/s", lambda x: x["healthz"]["per_s"]),
        ("healthz p99 ms", lambda x: x["healthz"]["latency_ms"]["p99"]),
        ("healthz CPU-ms", lambda x: x["healthz"]["cpu_ms"]),
        ("orders/s", lambda x: x["orders"]["per_s"]),
        ("orders p95 ms", lambda x: x["orders"]["latency_ms"]["p95"]),
        ("orders p99 ms", lambda x: x["orders"]["latency_ms"]["p99"]),
        ("orders CPU-ms", lambda x: x["orders"]["cpu_ms"]),
        ("non-2xx", lambda x: sum(x[k]["requests"] - x[k]["ok"] for k in ("orders", "healthz"))),
        ("writer tx", lambda x: x["writer"]["transactions"]),
        ("writer errors", lambda x: x["writer"]["errors"]),
    ]
    for variant, runs in results.items():
        print(variant)
        for label, get in columns:
            values = [get(x) for x in runs]
            print(f"  {label:<16} {statistics.median(values):10.2f} ({min(values):.2f}-{max(values):.2f})")


if __name__ == "__main__":
    main()
