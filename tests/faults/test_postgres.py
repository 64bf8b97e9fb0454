"""Every app on PostgreSQL (a throwaway server, one database per app): the saga and the oversell check
with real consumer processes, and PostgreSQL stopped under load (issue 7, "Database")."""

from __future__ import annotations

import json
import os
import random
import secrets
import threading
import time

import pytest
from django.db import connections, transaction

from tests.support import PYTHON, free_port, wait_for

from .helpers import (
    buy,
    dead_letters_in_logs,
    http,
    joined,
    random_order,
    seed,
    settled,
    sweep,
    wait_terminal,
)
from .oversell import run_oversell

pytestmark = [
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True, databases=["default", "shop", "inventory", "shipping", "dashboard"]),
]

PG_OVERSELL_ROUNDS = int(os.environ.get("FAULTS_PG_OVERSELL_ROUNDS", "4"))


def _saga(stack, celery=True):
    stack.consumer("shop")
    stack.consumer("inventory")
    stack.consumer("shipping")
    if celery:
        stack.celery()
    joined(stack, "shop", "inventory", "shipping")


def test_the_saga_end_to_end_on_postgresql(stack, pg):
    assert connections["shop"].vendor == "postgresql" and connections["inventory"].vendor == "postgresql"
    start = seed({"PG-A": 1000, "PG-SCARCE": 12})
    _saga(stack)
    rng = random.Random(5)
    orders = [buy(random_order(rng, list(start))) for _ in range(60)]
    wait_terminal(orders, 120, sweep=lambda: sweep(stack))
    result = settled(orders, start)
    print(f"\nsaga on PostgreSQL: {result}")
    assert not result.problems, result.problems
    assert set(result.by_status) == {"delivered", "rejected"}, result.by_status
    assert "postgres" in stack.env["SHOP_DATABASE_URL"]


def test_200_buyers_for_10_units_never_oversell_on_postgresql(stack, pg):
    figures = run_oversell(stack, PG_OVERSELL_ROUNDS, 200, "pg")
    print(f"\noversell on PostgreSQL: {figures}")


def test_postgresql_stopped_under_load_503_never_500_consumers_wait_nothing_dead_lettered(stack, pg, pg_server):
    start = seed({"PGDOWN-1": 100_000})
    port, prod_port = free_port(), free_port()
    web, prod = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{prod_port}"
    stack.web(port)  # DJANGO_DEBUG=1, as under `make run`
    stack.start(  # and production settings (DJANGO_DEBUG=0)
        "web-prod",
        [PYTHON, "-m", "config.serve", "-b", "127.0.0.1", "-p", str(prod_port), "config.asgi:application"],
        {
            "DJANGO_DEBUG": "0",
            "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
            "DJANGO_SECURE_SSL_REDIRECT": "0",
        },
    )
    wait_for(lambda: http("GET", f"{prod}/healthz")[0] == 200, 60, "the production-settings web")
    _saga(stack)
    warm = [buy({"PGDOWN-1": 1}) for _ in range(10)]
    wait_terminal(warm, 60, sweep=lambda: sweep(stack))
    status, _, body = http("POST", f"{web}/api/orders", _api_order())
    assert status == 201, body
    token_order = json.loads(body)

    load = [buy({"PGDOWN-1": 1}) for _ in range(150)]  # a backlog in flight...
    pg_server.stop("fast")  # ...when the database goes away (clients disconnected, nothing accepted)
    outage_started = time.monotonic()
    try:
        status, _, body = http("GET", f"{web}/readyz")
        assert status == 503, (status, body)
        report = json.loads(body)
        assert report["status"] == "unavailable"
        assert report["checks"]["database:shop"]["ok"] is False and report["checks"]["database:shop"]["error"]
        answers = {}
        for method, path, payload, headers in [
            ("GET", "/api/products", None, {}),
            ("POST", "/api/orders", _api_order(), {}),
            ("GET", f"/api/orders/{token_order['id']}", None, {"Authorization": f"Bearer {token_order['token']}"}),
            ("GET", f"/orders/{token_order['id']}/?token={token_order['token']}", None, {}),
            ("GET", "/", None, {}),
            ("GET", "/products/PGDOWN-1/", None, {}),
            ("GET", "/cart/", None, {}),
            ("GET", "/dashboard/", None, {}),
        ]:
            answers[f"{method} {path.split('?')[0]}"] = http(method, web + path, payload, headers)[0]
            if path.startswith("/api/"):  # (HTML pages under DEBUG=0 also need collectstatic; not here)
                answers[f"DEBUG=0 {method} {path}"] = http(method, prod + path, payload, headers)[0]
        answers["DEBUG=0 GET /readyz"] = http("GET", f"{prod}/readyz")[0]
        print(f"\nanswers while PostgreSQL is down: {answers}")
        assert not [a for a, s in answers.items() if s >= 500 and s != 503], answers
        assert answers["GET /api/products"] == 503 and answers["POST /api/orders"] == 503, answers
        # the consumers meet the outage and wait (they retry the batch in hand, they do not dead-letter it)
        wait_for(  # an outage of some seconds, long enough for the consumers to meet it and back off
            lambda: (
                sum("database unavailable" in stack.log(n) for n in ("shop", "inventory", "shipping")) >= 2
                and time.monotonic() - outage_started > 5
            ),
            60,
            "the consumers to notice the outage",
        )
        assert all(p.poll() is None for p in stack.processes.values()), "a process died in the outage"
    finally:
        outage = time.monotonic() - outage_started
        pg_server.start()
        connections.close_all()  # this process's own connections died with the server
    wait_for(lambda: http("GET", f"{web}/readyz")[0] == 200, 60, "/readyz to say ready again")
    orders = [*warm, token_order["id"], *load]
    wait_terminal(orders, 180, sweep=lambda: sweep(stack))
    result = settled(orders, start)
    print(f"PostgreSQL outage ({outage:.1f}s): {result}; dead letters {dead_letters_in_logs(stack)}")
    assert not result.problems, result.problems
    assert result.by_status == {"delivered": len(orders)}
    assert sum(dead_letters_in_logs(stack).values()) == 0, dead_letters_in_logs(stack)
    assert all(p.poll() is None for p in stack.processes.values())
    # and the web takes orders again
    status, _, body = http("POST", f"{web}/api/orders", _api_order())
    assert status == 201, body


def _api_order() -> dict:
    return {
        "email": "pg@example.com",
        "name": "PG Buyer",
        "address": "5 Outage Road",
        "lines": [{"sku": "PGDOWN-1", "quantity": 1}],
    }


def test_an_inventory_announcement_skips_the_marks_another_copy_holds(stack, pg):
    """Copies of inventory share the stock rows: one copy's announcement does not wait for the marked rows
    another copy's transaction holds. It announces the others, leaves those marked for their holder, and
    keeps looking for marks until none is left (in case the holder rolls back)."""
    from inventory import services
    from inventory.models import OutboxMessage, StockItem

    services.set_stock("HELD", 5)
    services.set_stock("FREE", 5)
    StockItem.objects.using("inventory").update(announce_pending=True)
    OutboxMessage.objects.using("inventory").all().delete()
    holding, release = threading.Event(), threading.Event()

    def other_copy():
        try:
            with transaction.atomic(using="inventory"):
                StockItem.objects.using("inventory").select_for_update().get(sku="HELD")
                holding.set()
                release.wait(10)
        finally:
            connections["inventory"].close()

    thread = threading.Thread(target=other_copy)
    thread.start()
    assert holding.wait(10), "the other copy never took its lock"
    announcer = services._StockAnnouncer()
    started = time.monotonic()
    try:
        with transaction.atomic(using="inventory"):
            announcer.announce_marked()
        took = time.monotonic() - started
    finally:
        release.set()
        thread.join(10)
    assert took < 5, f"the announcement waited {took:.1f} s for the other copy's lock"
    assert list(OutboxMessage.objects.using("inventory").values_list("key", flat=True)) == ["FREE"]
    assert list(StockItem.objects.using("inventory").filter(announce_pending=True).values_list("sku", flat=True)) == [
        "HELD"
    ]
    assert announcer.maybe_marked  # HELD is still this copy's to announce at its next idle moment
