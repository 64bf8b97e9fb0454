"""The oversell check, shared by the SQLite and the PostgreSQL test."""

from __future__ import annotations

import random

from django.db.models import Sum

from inventory.models import OutboxMessage as InventoryOutbox
from inventory.models import ReservationLine, StockItem
from shop.models import Order, OrderLine
from tests.support import wait_for

from .helpers import REJECTED, joined, place_concurrently, seed

UNITS = 10


def run_oversell(stack, rounds: int, buyers: int, tag: str) -> dict:
    """`rounds` SKUs of 10 units each; `buyers` buyers per SKU, all at once, interleaved; two inventory
    consumers race for the units. Returns the figures; asserts nobody got more than there was."""
    skus = {f"OVS-{tag}-{r}": UNITS for r in range(rounds)}
    seed(skus)
    stack.consumer("shop")
    stack.consumer("inventory", "inventory-a")
    stack.consumer("inventory", "inventory-b")
    joined(stack, "shop", "inventory-a", "inventory-b")
    jobs = [{sku: 1} for sku in skus for _ in range(buyers)]
    random.Random(20).shuffle(jobs)
    orders = place_concurrently(jobs)
    assert len(orders) == len(jobs)

    def decided():
        reserved = ReservationLine.objects.using("inventory").filter(sku__in=list(skus)).count()
        rejected = InventoryOutbox.objects.using("inventory").filter(event_type=REJECTED, key__in=orders).count()
        return reserved + rejected == len(orders)

    wait_for(decided, 300, f"inventory to decide all {len(orders)} orders", interval=0.5)
    wait_for(
        lambda: not Order.objects.using("shop").filter(id__in=orders, status="placed").exists(),
        120,
        "the shop to hear every decision",
        interval=0.5,
    )
    figures = {"skus": len(skus), "buyers_per_sku": buyers, "orders": len(orders), "oversold_skus": []}
    for sku in skus:
        item = StockItem.objects.using("inventory").get(sku=sku)
        lines = ReservationLine.objects.using("inventory").filter(sku=sku).aggregate(n=Sum("quantity"))["n"] or 0
        shop_reserved = OrderLine.objects.using("shop").filter(sku=sku, order__status="reserved").count()
        shop_rejected = OrderLine.objects.using("shop").filter(sku=sku, order__status="rejected").count()
        if not (item.reserved == lines == shop_reserved == UNITS and item.on_hand == UNITS):
            figures["oversold_skus"].append((sku, item.on_hand, item.reserved, lines, shop_reserved))
        assert shop_reserved + shop_rejected == buyers, (sku, shop_reserved, shop_rejected)
    handled = [stack.log(n).count("handled conveyor.shop.order.placed.v1") for n in ("inventory-a", "inventory-b")]
    figures["placed_handled_by_consumer"] = handled
    assert not figures["oversold_skus"], figures
    assert all(handled), f"one inventory consumer did all the work; no race was tested: {handled}"
    return figures
