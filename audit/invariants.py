"""The saga's invariants, checked across the shop's, inventory's and shipping's databases.

Once the system is quiet, for every order:
- I1: the three services agree. `delivered` = shipment delivered = reservation consumed; `cancelled` = no
  shipment dispatched = reservation released or never made; `rejected` = no reservation held or consumed, no
  shipment dispatched. Anything else is an order still on its way.
- I2: stock is conserved per SKU: what was received - the units of delivered orders = on hand, and reserved =
  the units of active reservations.
- I3: no order the shop shows cancelled was shipped; no cancel was confirmed after a dispatch.
While the saga moves, I1 and I2 may lag by the events in flight (and stock cannot be read as one snapshot
across a moving database), so `quiet=False` checks only what holds at every moment: I3, and that no service
acts on an order before the one that must come first. The reads go shop, inventory, shipping: each service
acts only after the one before it committed, so what a later read sees cannot be older than its cause.
"""

from __future__ import annotations

import itertools
from collections import Counter, defaultdict
from dataclasses import dataclass

from inventory.models import Reservation, ReservationLine, StockItem
from shipping.models import Shipment
from shop.models import Order, OrderHistory, OrderLine
from shop.stages import STAGES, path_to

SHIPPED = {"dispatched", "delivered"}
TERMINAL = {"delivered", "rejected", "cancelled"}


@dataclass(frozen=True)
class Finding:
    invariant: str  # I1, I2 or I3
    subject: str  # an order id or a SKU
    detail: str

    def __str__(self) -> str:
        return f"{self.invariant} {self.subject}: {self.detail}"


@dataclass(frozen=True)
class OrderView:
    """What each service says about one order."""

    order_id: str
    shop: str | None  # the order's status
    history: tuple[str, ...]
    reservation: str | None  # active, released, consumed, or None
    shipment: str | None  # waiting, ready, packed, dispatched, delivered, cancelled, or None


def order_views(order_ids=None) -> dict[str, OrderView]:
    """Every order any service knows (or only `order_ids`), as each service sees it."""
    orders, reservations, shipments = (
        Order.objects.using("shop"),
        Reservation.objects.using("inventory"),
        Shipment.objects.using("shipping"),
    )
    history = OrderHistory.objects.using("shop").order_by("at", "id")
    if order_ids is not None:
        ids = [str(o) for o in order_ids]
        orders, reservations, shipments = (
            orders.filter(id__in=ids),
            reservations.filter(order_id__in=ids),
            shipments.filter(order_id__in=ids),
        )
        history = history.filter(order_id__in=ids)
    shop = {str(i): s for i, s in orders.values_list("id", "status")}
    held = {str(i): s for i, s in reservations.values_list("order_id", "status")}
    shipped = {str(i): s for i, s in shipments.values_list("order_id", "status")}
    entries = defaultdict(list)
    for order_id, status in history.values_list("order_id", "status"):
        entries[str(order_id)].append(status)
    return {
        o: OrderView(o, shop.get(o), tuple(entries[o]), held.get(o), shipped.get(o))
        for o in sorted({*shop, *held, *shipped})
    }


def check_order(view: OrderView, *, quiet: bool) -> list[Finding]:
    """The findings about one order; `quiet` adds the checks that hold only once no event is in flight."""
    found: list[Finding] = []

    def finding(invariant: str, detail: str) -> None:
        found.append(Finding(invariant, view.order_id, f"{detail} ({_says(view)})"))

    if view.shop is None:
        if view.reservation in ("active", "consumed") or view.shipment in SHIPPED:
            finding("I1", "inventory or shipping acts on an order the shop does not have")
        return found
    stages = [s for s in view.history if s in STAGES]
    if stages[:1] != ["placed"] or len(set(stages)) != len(stages) or (stages and stages[-1] != view.shop):
        finding("I1", f"the shop's history {stages} does not lead to its status")
    elif any(path_to(a, b) != [b] for a, b in itertools.pairwise(stages)):
        finding("I1", f"the shop's history {stages} skips or repeats a stage")
    if view.shop == "cancelled" and view.shipment in SHIPPED:
        finding("I3", "the shop shows it cancelled but shipping dispatched it")
    if view.shipment == "cancelled" and (view.shop in SHIPPED or view.reservation == "consumed"):
        finding("I3", "shipping confirmed a cancel after the goods left")
    if view.shop == "cancelled" and view.shipment != "cancelled":
        finding("I3", "the shop cancelled it without shipping's confirmation")
    if view.reservation == "released" and view.shipment != "cancelled":
        finding("I3", "inventory released its stock without shipping's confirmation")
    if view.reservation == "consumed" and view.shipment not in SHIPPED:
        finding("I2", "inventory took the units out but shipping never dispatched it")
    if not quiet:
        return found
    if view.shop not in TERMINAL:
        finding("I1", f"still {view.shop}: the saga has not finished")
    elif view.shop == "delivered" and (view.shipment, view.reservation) != ("delivered", "consumed"):
        finding("I1", "delivered in the shop, but not delivered by shipping and consumed by inventory")
    elif view.shop == "cancelled" and view.reservation not in (None, "released"):
        finding("I1", "cancelled, but its stock is still held or was taken")
    elif view.shop == "rejected" and (view.reservation not in (None, "released") or view.shipment in SHIPPED):
        finding("I1", "rejected, but stock is held for it or it was shipped")
    return found


def check_stock(skus=None) -> list[Finding]:
    """I2 per SKU: received - units dispatched = on hand; reserved = units of active reservations."""
    lines = ReservationLine.objects.using("inventory")
    items = StockItem.objects.using("inventory")
    if skus is not None:
        lines, items = lines.filter(sku__in=list(skus)), items.filter(sku__in=list(skus))
    units = {"active": Counter(), "consumed": Counter()}
    for sku, quantity, status in lines.values_list("sku", "quantity", "reservation__status"):
        if status in units:
            units[status][sku] += quantity
    found = []
    for item in items:
        if item.received - units["consumed"][item.sku] != item.on_hand:
            found.append(
                Finding(
                    "I2",
                    item.sku,
                    f"received {item.received} - dispatched {units['consumed'][item.sku]} != on hand {item.on_hand}",
                )
            )
        if item.reserved != units["active"][item.sku]:
            found.append(
                Finding(
                    "I2", item.sku, f"reserved {item.reserved} != {units['active'][item.sku]} in active reservations"
                )
            )
    return found


def check_delivered_lines(order_ids) -> list[Finding]:
    """The units a delivered order took out of stock are the units the customer ordered."""
    ordered, taken = defaultdict(Counter), defaultdict(Counter)
    for order_id, sku, quantity in (
        OrderLine.objects.using("shop").filter(order_id__in=order_ids).values_list("order_id", "sku", "quantity")
    ):
        ordered[str(order_id)][sku] += quantity
    for order_id, sku, quantity in (
        ReservationLine.objects.using("inventory")
        .filter(reservation_id__in=order_ids)
        .values_list("reservation_id", "sku", "quantity")
    ):
        taken[str(order_id)][sku] += quantity
    return [
        Finding("I2", o, f"ordered {dict(ordered[o])} but inventory took {dict(taken[o])}")
        for o in order_ids
        if ordered[o] != taken[o]
    ]


def audit(*, order_ids=None, skus=None, quiet: bool = True) -> list[Finding]:
    """Every finding about the orders (all, or `order_ids`) and the stock (all SKUs, or `skus`)."""
    views = order_views(order_ids)
    found = [f for view in views.values() for f in check_order(view, quiet=quiet)]
    if not quiet:
        return found
    delivered = [v.order_id for v in views.values() if v.shop == "delivered" and v.reservation == "consumed"]
    return found + check_delivered_lines(delivered) + check_stock(skus)


def _says(view: OrderView) -> str:
    return f"shop {view.shop}, inventory {view.reservation or 'no reservation'}, shipping {view.shipment or 'none'}"
