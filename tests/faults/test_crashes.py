"""Crashes for real: kill -9 consumers under load, crash at the two dangerous points of the event bus, and
a relay that is away while orders are taken (issue 7, "Crashes and outages")."""

from __future__ import annotations

import os
import random
import signal
import threading
import time

import pytest
from django.db import connections

from eventbus import schemas
from eventbus.tests.kafka_helpers import read_topic
from shop.models import OutboxMessage as ShopOutbox
from shop.services import request_cancel
from tests.support import wait_for

from .helpers import (
    buy,
    dead_letters_in_logs,
    duplicates_in_log,
    joined,
    random_order,
    seed,
    settled,
    sweep,
    wait_terminal,
)

pytestmark = [
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True, databases=["default", "shop", "inventory", "shipping", "dashboard"]),
]

KILL_ORDERS = int(os.environ.get("FAULTS_KILL_ORDERS", "400"))
KILL_TARGETS = ["inventory-a", "shipping-a", "inventory-b", "shipping-b", "inventory-a"]


def test_kill_9_consumers_five_times_under_load_loses_and_doubles_nothing(stack):
    rng = random.Random(7)
    start = seed({"KILL-A": 100_000, "KILL-B": 100_000, "KILL-SCARCE": 150})  # SCARCE runs out: rejections too
    skus = list(start)
    stack.consumer("shop")
    for name in ("inventory-a", "inventory-b"):
        stack.consumer("inventory", name)
    for name in ("shipping-a", "shipping-b"):
        stack.consumer("shipping", name)
    stack.celery()
    joined(stack, "shop", "inventory-a", "inventory-b", "shipping-a", "shipping-b")

    placed: list[str] = []
    failures: list[BaseException] = []

    def place_all():
        try:
            for _ in range(KILL_ORDERS):
                placed.append(buy(random_order(rng, skus)))
        except BaseException as exc:  # reported by the main thread
            failures.append(exc)
        finally:
            connections.close_all()

    placer = threading.Thread(target=place_all, name="placer")
    started = time.monotonic()
    placer.start()
    kills = []
    for k, target in enumerate(KILL_TARGETS):
        # Spread the kills over the load: the k-th when (k+1)/6 of the orders are in.
        threshold = (k + 1) * KILL_ORDERS // (len(KILL_TARGETS) + 1)
        wait_for(lambda t=threshold: len(placed) >= t or failures, 300, f"{threshold} orders placed", interval=0.02)
        service = target.split("-")[0]
        stack.kill(target)
        kills.append((target, stack.processes[target].returncode, len(placed)))
        stack.consumer(service, target)  # a supervisor restarts it
    placer.join(300)
    assert not failures, failures
    assert len(placed) == KILL_ORDERS
    placed_in = time.monotonic() - started
    assert [rc for _, rc, _ in kills] == [-signal.SIGKILL] * len(KILL_TARGETS), kills

    wait_terminal(placed, 300, sweep=lambda: sweep(stack))
    result = settled(placed, start)
    print(
        f"\nkill -9 test: {result}; kills {kills}; placed in {placed_in:.0f}s, "
        f"all terminal after {time.monotonic() - started:.0f}s; redelivered copies skipped by the inboxes: "
        f"{sum(duplicates_in_log(stack.log(n)) for n in stack.argv)}"
    )
    assert not result.problems, result.problems[:20]
    assert result.by_status.get("delivered", 0) > 0 and result.by_status.get("rejected", 0) > 0, result.by_status
    assert sum(dead_letters_in_logs(stack).values()) == 0, dead_letters_in_logs(stack)


# --------------------------------------------------------------------------------------- crash points

CRASH_CASES = [
    ("inventory", "consumer-after-commit"),
    ("shipping", "consumer-after-commit"),
    ("shop", "consumer-after-commit"),
    ("inventory", "relay-after-send"),
    ("shipping", "relay-after-send"),
]


@pytest.mark.parametrize(("victim", "point"), CRASH_CASES, ids=[f"{v}-{p}" for v, p in CRASH_CASES])
def test_a_crash_at_the_dangerous_point_doubles_no_effect(stack, victim, point):
    """consumer-after-commit: the handler's transaction committed, the offset did not (the batch comes
    again). relay-after-send: the events are on Kafka, the outbox rows are not marked (sent again)."""
    start = seed({"CRASH-1": 100})
    for service in ("shop", "inventory", "shipping"):
        if service == victim:
            stack.consumer(service, f"{service}-crashing", EVENTBUS_CRASH_AT=point)
        else:
            stack.consumer(service)
    stack.celery()
    joined(stack, *(n for n in stack.argv if n in ("shop", "inventory", "shipping")))
    orders = [buy({"CRASH-1": 2}) for _ in range(5)]
    crashing = stack.processes[f"{victim}-crashing"]
    wait_for(lambda: crashing.poll() is not None, 90, f"the {victim} consumer to crash at {point}")
    assert crashing.returncode == -signal.SIGKILL, stack.log(f"{victim}-crashing")[-2000:]
    stack.consumer(victim)  # restarted without the fault
    wait_terminal(orders, 120, sweep=lambda: sweep(stack))
    result = settled(orders, start)
    assert not result.problems, result.problems
    assert result.by_status == {"delivered": 5}
    # the redelivered copy reaches the restarted consumer and is skipped by its inbox (the orders may have
    # ended before: the crashed consumer had applied everything; only its offsets were lost)
    wait_for(
        lambda: sum(duplicates_in_log(stack.log(name)) for name in stack.argv) >= 1,
        60,
        "the restarted consumer to skip a redelivered copy (none means the crash point redelivered nothing)",
    )
    assert sum(dead_letters_in_logs(stack).values()) == 0


# --------------------------------------------------------------------------------------- relay away


def _outbox_ids() -> set[str]:
    return {str(i) for i in ShopOutbox.objects.using("shop").values_list("event_id", flat=True)}


def test_orders_taken_while_the_relay_is_away_are_all_published(stack):
    start = seed({"RELAY-1": 1000})
    stack.consumer("shop")
    joined(stack, "shop")
    first = [buy({"RELAY-1": 1}) for _ in range(20)]
    wait_for(lambda: not ShopOutbox.objects.using("shop").filter(sent_at__isnull=True).exists(), 60, "the relay")
    stack.kill("shop")  # the relay dies; the shop keeps taking orders
    later = [buy({"RELAY-1": 1}) for _ in range(60)]
    for order_id in later[:10]:
        request_cancel(order_id=order_id)  # cancel requests are events too
    unsent = ShopOutbox.objects.using("shop").filter(sent_at__isnull=True).count()
    assert unsent == 70, unsent
    stack.consumer("shop", "shop-again")
    wait_for(lambda: not ShopOutbox.objects.using("shop").filter(sent_at__isnull=True).exists(), 60, "the backlog")
    committed = _outbox_ids()
    assert len(committed) == 90
    records = read_topic(schemas.topic_name("shop.orders"), len(committed))
    on_topic = [dict(r.headers)["ce_id"].decode() for r in records]
    assert set(on_topic) == committed  # every committed event published, nothing invented
    assert len(on_topic) == len(committed), "an event was published twice although the relay was not killed mid-send"
    # and the saga runs them all through
    stack.consumer("inventory")
    stack.consumer("shipping")
    stack.celery()
    orders = first + later
    wait_terminal(orders, 120, sweep=lambda: sweep(stack))
    result = settled(orders, start)
    assert not result.problems, result.problems
    assert result.by_status == {"delivered": 70, "cancelled": 10}
