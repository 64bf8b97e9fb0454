"""Redis down: the shop still takes orders (service and API), inventory still reserves, and the courier
steps that could not be scheduled resume when Redis returns (beat's sweep reschedules them)."""

from __future__ import annotations

import json

import pytest

from shipping.models import Shipment
from tests.support import RedisServer, free_port, wait_for

from .helpers import buy, http, joined, seed, settled, sweep, wait_terminal

pytestmark = [
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True, databases=["default", "shop", "inventory", "shipping", "dashboard"]),
]


def test_orders_are_taken_while_redis_is_down_and_shipping_resumes_after(stack, tmp_path):
    redis = RedisServer(tmp_path / "redis")  # our own: the session's Redis stays up for everyone else
    redis.start()
    # the limiter must fail open; steps go through Celery (with a delay of 0 they would not need Redis)
    stack.env.update(REDIS_URL=redis.url, ORDER_RATE_LIMIT="1000/m", SHIPPING_STEP_SECONDS="0.2")
    start = seed({"REDIS-1": 1000})
    port = free_port()
    stack.web(port)
    for service in ("shop", "inventory", "shipping"):
        stack.consumer(service)
    stack.celery()
    joined(stack, "shop", "inventory", "shipping")
    warm = [buy({"REDIS-1": 1}) for _ in range(3)]
    wait_terminal(warm, 60)

    redis.stop()
    restarted: list = []  # a failing run must not leave a redis-server behind
    try:
        try:
            during = [buy({"REDIS-1": 1}) for _ in range(15)]
            for _ in range(5):
                status, _, body = http(
                    "POST",
                    f"http://127.0.0.1:{port}/api/orders",
                    {
                        "email": "r@example.com",
                        "name": "R",
                        "address": "1 St",
                        "lines": [{"sku": "REDIS-1", "quantity": 1}],
                    },
                )
                assert status == 201, (status, body)
                during.append(json.loads(body)["id"])
            # inventory reserves and shipping gets ready, but no courier step can be queued
            wait_for(
                lambda: Shipment.objects.using("shipping").filter(order_id__in=during, status="ready").count() == 20,
                90,
                "every shipment to be ready (and stuck) while Redis is down",
                interval=0.5,
            )
            assert not Shipment.objects.using("shipping").filter(order_id__in=during).exclude(status="ready").exists()
            # the warning comes once Celery's publish gives up, which may be after the commit made them ready
            wait_for(
                lambda: "could not schedule the next step" in stack.log("shipping"),
                30,
                "shipping to log that it could not schedule the courier's step",
                interval=0.5,
            )
            assert all(p.poll() is None for p in stack.processes.values()), "a process died without Redis"
        finally:
            back = RedisServer(tmp_path / "redis")
            back.port = redis.port  # the same address the stack knows
            back.start()
            restarted.append(back)
        wait_terminal(during, 120, sweep=lambda: sweep(stack))
        result = settled(warm + during, start)
        assert not result.problems, result.problems
        assert result.by_status == {"delivered": 23}
    finally:
        for server in restarted:
            server.stop()
