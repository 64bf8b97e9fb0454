"""Reservations taken for many orders at once decide exactly as they would one order at a time."""

import uuid

import pytest

from inventory import services
from inventory.models import OutboxMessage, Reservation, StockItem

pytestmark = pytest.mark.django_db(databases=["default", "inventory"])


def _orders():
    a, b, c, d = (str(uuid.uuid4()) for _ in range(4))
    return [
        (a, [{"sku": "MUG", "quantity": 2}, {"sku": "CAP", "quantity": 1}], None),
        (b, [{"sku": "MUG", "quantity": 2}], None),  # one MUG left after a: rejected
        (c, [{"sku": "CAP", "quantity": 1}, {"sku": "NOPE", "quantity": 1}], None),  # unknown SKU: all or none
        (a, [{"sku": "MUG", "quantity": 2}, {"sku": "CAP", "quantity": 1}], None),  # a again: nothing new
        (d, [{"sku": "MUG", "quantity": 1}, {"sku": "MUG", "quantity": 0}], None),  # the last MUG
    ]


def _state():
    stock = sorted(StockItem.objects.using("inventory").values_list("sku", "on_hand", "reserved"))
    events = [
        (row.event_type.split(".")[3], row.headers.get("ce_subject"))
        for row in OutboxMessage.objects.using("inventory").order_by("position")
        if not row.event_type.endswith("changed.v1")
    ]
    held = sorted(
        (str(r.order_id), sorted((ln.sku, ln.quantity) for ln in r.lines.all()))
        for r in Reservation.objects.using("inventory").prefetch_related("lines")
    )
    return stock, events, held


@pytest.fixture
def stock():
    services.set_stock("MUG", 3)
    services.set_stock("CAP", 5)


def test_many_orders_at_once_decide_as_one_at_a_time(stock):
    orders = _orders()
    assert services.reserve_stock(orders) == [True, False, False, True, True]
    together = _state()
    assert together[0] == [("CAP", 5, 1), ("MUG", 3, 3)]
    assert [kind for kind, _ in together[1]] == ["reserved", "rejected", "rejected", "reserved"]
    rejected = OutboxMessage.objects.using("inventory").filter(event_type__endswith="rejected.v1").order_by("position")
    assert rejected[0].headers["ce_subject"] == orders[1][0]

    for model in (Reservation, OutboxMessage):
        model.objects.using("inventory").all().delete()
    StockItem.objects.using("inventory").update(reserved=0)
    assert [services.reserve_stock([order])[0] for order in orders] == [True, False, False, True, True]
    assert _state() == together


def test_rejection_reasons_count_what_earlier_orders_of_the_batch_took(stock):
    first, second = str(uuid.uuid4()), str(uuid.uuid4())
    services.reserve_stock(
        [(first, [{"sku": "MUG", "quantity": 2}], None), (second, [{"sku": "MUG", "quantity": 2}], None)]
    )
    row = OutboxMessage.objects.using("inventory").get(event_type__endswith="rejected.v1")
    assert b'"available":1' in bytes(row.value).replace(b" ", b"")


def _consumed_state():
    stock = sorted(StockItem.objects.using("inventory").values_list("sku", "on_hand", "reserved"))
    statuses = sorted((str(r.order_id), r.status) for r in Reservation.objects.using("inventory").all())
    return stock, statuses


def test_many_dispatches_at_once_consume_as_one_at_a_time(stock):
    orders = _orders()
    a, b, _, _, d = (order_id for order_id, _, _ in orders)
    services.reserve_stock(orders)
    services.release_reservation(d)
    dispatches = [(a, None), (b, None), (a, None), (d, None)]  # b never held stock, a twice, d released

    assert services.consume_reservations(dispatches) == [True, False, False, False]
    together = _consumed_state()
    assert together[0] == [("CAP", 4, 0), ("MUG", 1, 0)]

    Reservation.objects.using("inventory").filter(order_id=a).update(status=Reservation.Status.ACTIVE)
    StockItem.objects.using("inventory").filter(sku="CAP").update(on_hand=5, reserved=1)
    StockItem.objects.using("inventory").filter(sku="MUG").update(on_hand=3, reserved=2)
    assert [services.consume_reservations([d])[0] for d in dispatches] == [True, False, False, False]
    assert _consumed_state() == together
