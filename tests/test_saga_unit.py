"""The saga's services and handlers on the in-memory bus (no broker): fast checks of the business rules.
The same flows run against the real broker and real processes in tests/test_saga_e2e.py."""

import pytest

from config.celery import app as celery_app
from eventbus import schemas
from eventbus.testing import InMemoryBus
from inventory import services as inventory
from inventory.models import Reservation, StockItem
from shipping.models import Shipment
from shop import services as shop
from shop.models import Order, Product

pytestmark = pytest.mark.django_db(
    transaction=True, databases=["default", "shop", "inventory", "shipping", "dashboard"]
)


@pytest.fixture(autouse=True)
def stock_announced_every_batch(monkeypatch):
    """Stock levels are coalesced in time (at most every 0.25 s); these tests read them after each batch."""
    monkeypatch.setattr(inventory, "STOCK_ANNOUNCE_SECONDS", 0)


@pytest.fixture
def bus():
    celery_app.conf.task_always_eager = True  # courier steps run inline
    yield InMemoryBus("shop", "inventory", "shipping")
    celery_app.conf.task_always_eager = False


@pytest.fixture
def mug(bus):
    Product.objects.using("shop").create(sku="MUG-001", name="Mug", price="12.50")
    inventory.set_stock("MUG-001", 10)
    bus.deliver()
    return "MUG-001"


def place(quantity, sku="MUG-001"):
    return shop.place_order(
        email="a@example.com", name="Ada", address="1 Loop", lines=[{"sku": sku, "quantity": quantity}]
    )


def history(order):
    return list(order.history.values_list("status", flat=True))


def test_an_order_travels_the_whole_saga(bus, mug):
    placed = place(2)
    bus.deliver()
    order = Order.objects.using("shop").get(id=placed.order.id)
    assert order.status == "delivered"
    assert history(order) == ["placed", "reserved", "packed", "dispatched", "delivered"]
    item = StockItem.objects.using("inventory").get(sku=mug)
    assert (item.on_hand, item.reserved) == (8, 0)
    assert Product.objects.using("shop").get(sku=mug).available == 8  # the read model followed


def test_over_quantity_is_rejected_and_nothing_stays_reserved(bus, mug):
    placed = place(11)
    bus.deliver()
    order = Order.objects.using("shop").get(id=placed.order.id)
    assert order.status == "rejected"
    assert order.rejection == [{"sku": mug, "requested": 11, "available": 10, "reason": "insufficient-stock"}]
    assert StockItem.objects.using("inventory").get(sku=mug).reserved == 0
    assert not Shipment.objects.using("shipping").exclude(status="waiting").exists()


def test_an_order_with_one_short_line_reserves_none_of_its_lines(bus, mug):
    Product.objects.using("shop").create(sku="CAP-003", name="Cap", price="18.00")
    inventory.set_stock("CAP-003", 1)
    placed = shop.place_order(
        email="a@example.com",
        name="Ada",
        address="1 Loop",
        lines=[{"sku": mug, "quantity": 2}, {"sku": "CAP-003", "quantity": 2}],
    )
    bus.deliver()
    assert Order.objects.using("shop").get(id=placed.order.id).status == "rejected"
    assert list(StockItem.objects.using("inventory").values_list("sku", "reserved")) == [("CAP-003", 0), (mug, 0)]


def stage_history(order_id):
    return history(Order.objects.using("shop").get(id=order_id))


def test_cancel_before_dispatch_is_confirmed_by_shipping_then_releases_the_stock(mug, courier):
    bus = InMemoryBus("shop", "inventory", "shipping")
    placed = place(3)
    bus.deliver()
    courier.step()  # packed
    bus.deliver()
    assert Order.objects.using("shop").get(id=placed.order.id).status == "packed"
    shop.request_cancel(order_id=placed.order.id)
    assert Order.objects.using("shop").get(id=placed.order.id).status == "packed"  # a request, not a decision
    assert StockItem.objects.using("inventory").get(sku=mug).reserved == 3
    bus.deliver()
    assert Shipment.objects.using("shipping").get(order_id=placed.order.id).status == "cancelled"
    assert StockItem.objects.using("inventory").get(sku=mug).reserved == 0
    assert Reservation.objects.using("inventory").get(order_id=placed.order.id).status == "released"
    assert stage_history(placed.order.id) == ["placed", "reserved", "packed", "cancel_requested", "cancelled"]
    assert courier.step() == {}  # the pending courier step finds the shipment stopped
    bus.deliver()
    assert Order.objects.using("shop").get(id=placed.order.id).status == "cancelled"
    assert StockItem.objects.using("inventory").get(sku=mug).on_hand == 10


def test_cancel_after_dispatch_is_refused_and_the_order_is_delivered(mug, courier):
    bus = InMemoryBus("shop", "inventory", "shipping")
    placed = place(2)
    bus.deliver()
    courier.step()  # packed
    courier.step()  # dispatched: the shop has not heard of it yet
    assert Order.objects.using("shop").get(id=placed.order.id).status == "reserved"
    shop.request_cancel(order_id=placed.order.id)
    bus.deliver()
    courier.step()  # delivered
    bus.deliver()
    order = Order.objects.using("shop").get(id=placed.order.id)
    assert order.status == "delivered"
    assert "cancel_refused" in history(order) and "cancelled" not in history(order)
    item = StockItem.objects.using("inventory").get(sku=mug)
    assert (item.on_hand, item.reserved) == (8, 0)  # the goods left: consumed, never released
    assert Reservation.objects.using("inventory").get(order_id=placed.order.id).status == "consumed"
    with pytest.raises(shop.NotCancellable):
        shop.request_cancel(order_id=placed.order.id)


def test_a_cancel_shipping_hears_before_the_order_starts_nothing_later(mug, courier):
    from shipping import services as shipping

    order_id = str(place(1).order.id)
    assert shipping.decide_cancels([shipping.CancelRequest(order_id, "customer request")]) == {order_id: "cancelled"}
    bus = InMemoryBus("shop", "inventory", "shipping")
    bus.deliver()  # OrderPlaced and StockReserved reach shipping after its answer
    assert courier.scheduled == []
    assert Shipment.objects.using("shipping").get(order_id=order_id).status == "cancelled"
    assert Order.objects.using("shop").get(id=order_id).status == "cancelled"
    assert StockItem.objects.using("inventory").get(sku=mug).reserved == 0


def test_a_placement_inventory_hears_after_the_cancel_reserves_nothing(mug, courier):
    placed = place(4)
    shop.request_cancel(order_id=placed.order.id)
    bus = InMemoryBus("shop", "inventory", "shipping")
    bus.relay()
    orders = schemas.topic_name("shop.orders")
    bus.deliver_from("shipping", orders, 2)  # shipping confirms before inventory has read the order
    bus.relay()
    bus.deliver_from("inventory", schemas.topic_name("shipping.shipments"), 10)
    assert Reservation.objects.using("inventory").get(order_id=placed.order.id).status == "released"
    bus.deliver()  # now the OrderPlaced: a late one (or a dead letter replayed) reserves nothing
    assert StockItem.objects.using("inventory").get(sku=mug).reserved == 0
    assert not bus.events("conveyor.inventory.stock.reserved.v1")
    assert Order.objects.using("shop").get(id=placed.order.id).status == "cancelled"


def test_an_expired_reservation_asks_shipping_and_only_its_confirmation_cancels(mug, courier):
    from datetime import timedelta

    bus = InMemoryBus("shop", "inventory", "shipping")
    stuck, gone = place(1), place(2)
    bus.deliver()
    courier.step(str(gone.order.id))
    courier.step(str(gone.order.id))  # dispatched before the sweep; the shop and inventory have not heard yet
    assert inventory.request_expiry_cancels(timedelta(0)) == 2
    assert inventory.request_expiry_cancels(timedelta(0)) == 0  # asked once
    assert StockItem.objects.using("inventory").get(sku=mug).reserved == 3  # nothing released by inventory alone
    bus.deliver()
    courier.step()
    bus.deliver()
    assert Order.objects.using("shop").get(id=stuck.order.id).status == "cancelled"
    assert history(Order.objects.using("shop").get(id=gone.order.id))[-2:] == ["cancel_refused", "delivered"]
    assert Shipment.objects.using("shipping").get(order_id=gone.order.id).status == "delivered"
    item = StockItem.objects.using("inventory").get(sku=mug)
    assert (item.on_hand, item.reserved) == (8, 0)
    released = bus.events("conveyor.inventory.stock.released.v1")
    assert [(e.data["order_id"], e.data["reason"]) for e in released] == [(str(stuck.order.id), "expired")]


def test_redelivering_every_event_changes_nothing(bus, mug):
    for quantity in (1, 2, 20):
        place(quantity)
    bus.deliver()
    before = (
        list(Order.objects.using("shop").order_by("id").values_list("id", "status")),
        list(StockItem.objects.using("inventory").values_list("sku", "on_hand", "reserved")),
    )
    bus.redeliver_all()
    after = (
        list(Order.objects.using("shop").order_by("id").values_list("id", "status")),
        list(StockItem.objects.using("inventory").values_list("sku", "on_hand", "reserved")),
    )
    assert before == after


def test_a_late_event_is_ignored_not_raised(bus, mug):
    placed = place(1)
    bus.deliver()
    reserved = bus.events("conveyor.inventory.stock.reserved.v1")[0]
    assert shop.follow_saga([shop.SagaStep(str(placed.order.id), "reserved", reserved)]) == [False]
    assert Order.objects.using("shop").get(id=placed.order.id).status == "delivered"


def test_every_event_names_its_cause_and_the_order_it_belongs_to(bus, mug):
    placed = place(1)
    bus.deliver()
    by_type = {e.type.removeprefix("conveyor."): e for e in bus.events() if e.correlation_id == str(placed.order.id)}
    chain = [
        "shop.order.placed.v1",
        "inventory.stock.reserved.v1",
        "shipping.shipment.packed.v1",
        "shipping.shipment.dispatched.v1",
        "shipping.shipment.delivered.v1",
    ]
    assert by_type[chain[0]].causation_id is None
    for cause, effect in zip(chain[1:-1], chain[2:], strict=True):
        assert by_type[effect].causation_id == by_type[cause].id, effect
    assert by_type[chain[1]].causation_id == by_type[chain[0]].id
