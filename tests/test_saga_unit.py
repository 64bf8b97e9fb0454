"""The saga's services and handlers on the in-memory bus (no broker): fast checks of the business rules.
The same flows run against the real broker and real processes in tests/test_saga_e2e.py."""

import pytest

from config.celery import app as celery_app
from eventbus.testing import InMemoryBus
from inventory import services as inventory
from inventory.models import Reservation, StockItem
from shipping.models import Shipment
from shop import services as shop
from shop.models import Order, Product

pytestmark = pytest.mark.django_db(
    transaction=True, databases=["default", "shop", "inventory", "shipping", "dashboard"]
)


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


def test_cancel_before_dispatch_releases_the_stock(mug):
    bus = InMemoryBus("shop", "inventory")  # no shipping: the order waits at reserved
    placed = place(3)
    bus.deliver()
    assert StockItem.objects.using("inventory").get(sku=mug).reserved == 3
    shop.cancel_order(placed.order.id)
    bus.deliver()
    assert StockItem.objects.using("inventory").get(sku=mug).reserved == 0
    assert Reservation.objects.using("inventory").get(order_id=placed.order.id).status == "released"
    assert Order.objects.using("shop").get(id=placed.order.id).status == "cancelled"


def test_cancel_after_dispatch_is_refused(bus, mug):
    placed = place(1)
    bus.deliver()
    with pytest.raises(shop.NotCancellable):
        shop.cancel_order(placed.order.id)


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
    assert shop.follow_saga(str(placed.order.id), "reserved", reserved) is False
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
