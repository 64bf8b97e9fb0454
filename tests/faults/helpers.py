"""Shared pieces of the fault tests: a catalogue with stock, placing orders, waiting for the saga, and the
audit that every fault test ends with (nothing lost, nothing doubled, stock conserved)."""

from __future__ import annotations

import random
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal

from django.db.models import Count

from audit import invariants
from inventory import services as inventory
from inventory.models import OutboxMessage as InventoryOutbox
from inventory.models import StockItem
from shipping.models import OutboxMessage as ShippingOutbox
from shop.models import Order, OrderLine, Product
from shop.services import place_order
from tests.support import wait_for

TERMINAL = {"delivered", "rejected", "cancelled"}
RESERVED = "conveyor.inventory.stock.reserved.v1"
REJECTED = "conveyor.inventory.stock.rejected.v1"


def seed(stock: dict[str, int], price: str = "2.00") -> dict[str, int]:
    """Products in the shop and units on hand in inventory; returns the starting on_hand per SKU."""
    for sku, units in stock.items():
        Product.objects.using("shop").update_or_create(sku=sku, defaults={"name": sku, "price": Decimal(price)})
        inventory.set_stock(sku, units)
    return dict(stock)


def buy(sku_quantities: list[tuple[str, int]] | dict[str, int], email: str = "buyer@example.com") -> str:
    lines = sku_quantities.items() if isinstance(sku_quantities, dict) else sku_quantities
    placed = place_order(
        email=email, name="Fault Buyer", address="1 Fault Street", lines=[{"sku": s, "quantity": q} for s, q in lines]
    )
    return str(placed.order.id)


def random_order(rng: random.Random, skus: list[str]) -> dict[str, int]:
    return {sku: rng.randint(1, 3) for sku in rng.sample(skus, rng.randint(1, min(2, len(skus))))}


def statuses(order_ids=None) -> Counter:
    orders = Order.objects.using("shop")
    if order_ids is not None:
        orders = orders.filter(id__in=list(order_ids))
    return Counter(dict(orders.values_list("status").annotate(n=Count("id")).values_list("status", "n")))


def all_terminal(order_ids) -> bool:
    counts = statuses(order_ids)
    return sum(n for s, n in counts.items() if s in TERMINAL) == len(order_ids)


def wait_terminal(order_ids, timeout: float, sweep=None, message: str = "every order to reach a terminal state"):
    """Wait until every order is delivered, rejected or cancelled. `sweep` (optional) is called every few
    seconds while progress stalls, as Celery beat would call shipping.reschedule_stalled."""
    order_ids = list(order_ids)
    state = {"last": None, "since": time.monotonic()}

    def done():
        counts = statuses(order_ids)
        finished = sum(n for s, n in counts.items() if s in TERMINAL)
        if finished == len(order_ids):
            return True
        if sweep is not None:
            if finished != state["last"]:
                state["last"], state["since"] = finished, time.monotonic()
            elif time.monotonic() - state["since"] > 5:
                sweep()
                state["since"] = time.monotonic()
        return False

    try:
        wait_for(done, timeout, message, interval=0.5)
    except AssertionError as exc:
        raise AssertionError(f"{exc}; statuses now {dict(statuses(order_ids))}") from None


@dataclass
class Audit:
    orders: int = 0
    by_status: dict[str, int] = field(default_factory=dict)
    units_delivered: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        return f"{self.orders} orders {self.by_status}; delivered units {self.units_delivered}"


def audit(order_ids, start_on_hand: dict[str, int], *, exact_stock: bool = True) -> Audit:
    """Check the invariants across the three databases (audit/invariants.py: the services agree about each
    order, stock is conserved, nothing shipped is cancelled), plus what a fault could double: one inventory
    decision per order, each courier event once. Returns the figures and the list of violations."""
    order_ids = [str(o) for o in order_ids]
    result = Audit(orders=len(order_ids))
    orders = {str(o.id): o for o in Order.objects.using("shop").filter(id__in=order_ids)}
    if len(orders) != len(order_ids):
        result.problems.append(f"{len(order_ids) - len(orders)} orders missing from the shop")
    result.by_status = dict(Counter(o.status for o in orders.values()))
    result.problems += [str(f) for f in invariants.audit(order_ids=order_ids, skus=list(start_on_hand))]

    # inventory: one decision per order
    decisions = Counter(
        InventoryOutbox.objects.using("inventory")
        .filter(event_type__in=[RESERVED, REJECTED])
        .values_list("key", flat=True)
    )
    result.problems += [f"order {o}: {n} reservation decisions" for o in order_ids if (n := decisions[o]) > 1]

    # shipping: each courier event (and each answer to a cancel) once per order
    shipping_events = Counter(
        ShippingOutbox.objects.using("shipping").filter(key__in=order_ids).values_list("key", "event_type")
    )
    doubled = {k: n for k, n in shipping_events.items() if n > 1}
    if doubled:
        result.problems.append(f"shipping events published twice: {list(doubled.items())[:5]}")

    # stock: start - end = units delivered, per SKU; nothing left reserved
    delivered_ids = [o for o, order in orders.items() if order.status == "delivered"]
    units = Counter()
    for sku, quantity in (
        OrderLine.objects.using("shop").filter(order_id__in=delivered_ids).values_list("sku", "quantity")
    ):
        units[sku] += quantity
    result.units_delivered = dict(units)
    for item in StockItem.objects.using("inventory").filter(sku__in=list(start_on_hand)):
        gone = start_on_hand[item.sku] - item.on_hand
        if gone != units[item.sku]:
            result.problems.append(
                f"{item.sku}: on_hand went {start_on_hand[item.sku]} -> {item.on_hand} (-{gone}) but "
                f"{units[item.sku]} units were delivered"
            )
        if exact_stock and item.reserved != 0:
            result.problems.append(f"{item.sku}: {item.reserved} units still reserved")
    return result


DEAD_LETTERED = re.compile(r": dead-lettered ")


def dead_letters_in_logs(stack) -> dict[str, int]:
    return {name: len(DEAD_LETTERED.findall(stack.log(name))) for name in list(stack.argv)}


DUPLICATES = re.compile(r"\b([1-9]\d*) duplicate")


def duplicates_in_log(text: str) -> int:
    return sum(int(n) for n in DUPLICATES.findall(text))


SWEEP = (
    "from datetime import timedelta; from shipping.services import reschedule_stalled; "
    "print('rescheduled', reschedule_stalled(timedelta(seconds={older_than})))"
)


def sweep(stack, older_than: float = 5.0) -> str:
    """What Celery beat's shipping.reschedule_stalled does, run now in a real process of the stack's env."""
    import subprocess

    from tests.support import PYTHON, ROOT

    done = subprocess.run(
        [PYTHON, "manage.py", "shell", "-c", SWEEP.format(older_than=older_than)],
        cwd=ROOT,
        env=stack.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.strip()


ASSIGNED = re.compile(r"partitions assigned: (?!none)")


def joined(stack, *names: str, timeout: float = 60) -> None:
    """Wait until each named consumer holds partitions. (A consumer that stays at "partitions assigned:
    none" while it is the group's only member is the kafka-python metadata race in the report.)"""
    wait_for(
        lambda: all(ASSIGNED.search(stack.log(n)) for n in names),
        timeout,
        f"{', '.join(names)} to be assigned partitions",
    )


def settled(order_ids, start_on_hand: dict[str, int], timeout: float = 60, **kwargs) -> Audit:
    """The audit once the stragglers are in: the shop reaches `delivered` a moment before inventory has
    consumed the dispatch, so wait (bounded) for a clean audit and return the last one either way. A
    doubled effect never goes away by waiting, so this hides nothing."""
    last = {}

    def clean():
        last["audit"] = audit(order_ids, start_on_hand, **kwargs)
        return not last["audit"].problems

    try:
        wait_for(clean, timeout, "a clean audit", interval=0.5)
    except AssertionError:
        pass
    return last["audit"]


def http(method: str, url: str, body: bytes | dict | None = None, headers: dict | None = None, timeout: float = 30):
    """One real HTTP request; returns (status, headers, body bytes) for any status."""
    import json
    import urllib.error
    import urllib.request

    headers = dict(headers or {})
    if isinstance(body, dict):
        body = json.dumps(body).encode()
        headers.setdefault("Content-Type", "application/json")
    request = urllib.request.Request(url, data=body, method=method, headers=headers)  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (loopback only)
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def place_concurrently(jobs: list[dict[str, int]], threads: int = 8) -> list[str]:
    """Place the orders from `threads` buyers at once (each thread its own DB connection)."""
    from django.db import connections

    results: list[str | None] = [None] * len(jobs)
    errors: list[BaseException] = []

    def work(offset: int):
        try:
            for i in range(offset, len(jobs), threads):
                results[i] = buy(jobs[i])
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    import threading

    workers = [threading.Thread(target=work, args=(n,)) for n in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(600)
    assert not errors, errors[:3]
    return [r for r in results if r is not None]
