"""Hypothesis, no broker: any order, duplication or reordering of one order's events, delivered through
eventbus.testing.InMemoryBus to the shop and inventory (the same decoding, inbox and handlers as the real
consumers), leaves the order in a legal state and the stock conserved."""

from __future__ import annotations

import uuid

import pytest
from django.db.models import Sum
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from eventbus import envelope, schemas
from eventbus.testing import InMemoryBus
from inventory.models import Reservation, ReservationLine, StockItem
from shop import stages
from shop.models import Order, OrderHistory
from shop.services import NotCancellable, cancel_order

from .helpers import buy, seed

pytestmark = pytest.mark.django_db(databases=["default", "shop", "inventory", "shipping", "dashboard"])

ON_HAND = 5
SHIPPING = ("packed", "dispatched", "delivered")
# steps: deliver what is pending, re-deliver everything (a consumer-group reset), the customer cancels,
# the courier takes its next step (shipping moves only once the stock is reserved, packed -> dispatched ->
# delivered), or one of the courier's events still in flight arrives, in any order, maybe twice
STEP = st.one_of(
    st.just(("deliver",)),
    st.just(("redeliver",)),
    st.just(("cancel",)),
    st.just(("courier",)),
    st.just(("courier",)),
    st.tuples(st.just("arrive"), st.integers(0, 2), st.booleans()),
    st.tuples(st.just("arrive"), st.integers(0, 2), st.booleans()),
)


def _courier_event(kind: str, order_id: str, shipment_id: str) -> envelope.Message:
    return envelope.encode(
        event_type=f"conveyor.shipping.shipment.{kind}.v1",
        source_app="shipping",
        subject=order_id,
        data={"order_id": order_id, "shipment_id": shipment_id},
    )


def legal_history(history: list[str], status: str) -> bool:
    if not history or history[0] != "placed" or history[-1] != status or len(set(history)) != len(history):
        return False
    return all(stages.path_to(a, b) == [b] for a, b in zip(history, history[1:], strict=False))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(quantity=st.integers(1, ON_HAND + 2), steps=st.lists(STEP, max_size=24))
def test_any_interleaving_of_one_orders_events_leaves_a_legal_state_and_conserved_stock(quantity, steps):
    sku = f"HYP-{uuid.uuid4().hex[:8]}"
    seed({sku: ON_HAND})
    order_id = buy({sku: quantity})
    bus = InMemoryBus("shop", "inventory")
    shipment_id, emitted, in_flight = str(uuid.uuid4()), [], []

    def arrive(message, twice=False):
        for _ in range(2 if twice else 1):
            bus.inject(
                schemas.topic_name(message.topic),
                message.value,
                [(k, v.encode()) for k, v in message.headers.items()],
                message.key,
            )

    for step in [*steps, ("deliver",)]:
        if step[0] == "deliver":
            bus.deliver()
        elif step[0] == "redeliver":
            bus.redeliver_all()
        elif step[0] == "cancel":
            try:
                cancel_order(order_id)
            except NotCancellable:
                pass
        elif step[0] == "courier":
            if len(emitted) < len(SHIPPING) and Reservation.objects.using("inventory").filter(order_id=order_id):
                emitted.append(_courier_event(SHIPPING[len(emitted)], order_id, shipment_id))
                in_flight.append(emitted[-1])
        elif in_flight:
            _, index, twice = step
            arrive(in_flight.pop(index % len(in_flight)), twice)
    for message in in_flight:
        arrive(message)
    bus.deliver()

    order = Order.objects.using("shop").get(id=order_id)
    history = list(
        OrderHistory.objects.using("shop").filter(order=order).order_by("id").values_list("status", flat=True)
    )
    assert order.status in stages.STAGES
    event(f"ends {order.status}")
    assert legal_history(history, order.status), (history, order.status)

    item = StockItem.objects.using("inventory").get(sku=sku)
    reservation = Reservation.objects.using("inventory").filter(order_id=order_id).first()
    consumed = (
        ReservationLine.objects.using("inventory")
        .filter(reservation__order_id=order_id, reservation__status="consumed")
        .aggregate(n=Sum("quantity"))["n"]
        or 0
    )
    active = (
        ReservationLine.objects.using("inventory")
        .filter(reservation__order_id=order_id, reservation__status="active")
        .aggregate(n=Sum("quantity"))["n"]
        or 0
    )
    assert item.on_hand + consumed == ON_HAND  # units leave only by a consumed reservation, once
    assert item.reserved == active and 0 <= item.reserved <= item.on_hand
    if quantity > ON_HAND:
        assert reservation is None and order.status in {"rejected", "cancelled"}  # never more than there is
    if order.status == "rejected":
        assert reservation is None
    if order.status == "cancelled":
        assert reservation is None or reservation.status != "active"  # compensation gave the units back
    assert not [d for d in bus.dead if d.reason != "handler-error"], bus.dead
    assert not bus.dead, [(d.reason, d.error) for d in bus.dead]
