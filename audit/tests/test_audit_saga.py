"""`manage.py audit_saga` on a saga run through the real handlers (in-memory bus): silent and 0 when the
services agree, each disagreement printed and 1 when they do not."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from eventbus.testing import InMemoryBus
from inventory.models import StockItem
from shipping.models import Shipment
from shop.models import Order
from shop.services import request_cancel
from tests.faults.helpers import buy, seed

pytestmark = pytest.mark.django_db(
    transaction=True, databases=["default", "shop", "inventory", "shipping", "dashboard"]
)


@pytest.fixture
def orders(courier):
    seed({"AUD-1": 10})
    bus = InMemoryBus("shop", "inventory", "shipping")
    delivered, cancelled, rejected = buy({"AUD-1": 2}), buy({"AUD-1": 3}), buy({"AUD-1": 50})
    bus.deliver()
    request_cancel(order_id=cancelled)
    bus.deliver()
    for _ in range(3):
        courier.step()
        bus.deliver()
    statuses = dict(Order.objects.using("shop").values_list("id", "status"))
    assert sorted(statuses.values()) == ["cancelled", "delivered", "rejected"]
    return {"delivered": delivered, "cancelled": cancelled, "rejected": rejected}


def audit_saga(*args) -> str:
    out = StringIO()
    call_command("audit_saga", *args, stdout=out)
    return out.getvalue()


def test_agreeing_services_pass(orders):
    assert "all 3 orders agree and stock is conserved" in audit_saga()


def test_a_cancelled_order_that_shipped_is_reported(orders):
    Shipment.objects.using("shipping").filter(order_id=orders["cancelled"]).update(status="dispatched")
    with pytest.raises(CommandError, match="disagreement"):
        audit_saga()
    out = StringIO()
    with pytest.raises(CommandError):
        call_command("audit_saga", stdout=out)
    assert f"I3 {orders['cancelled']}: the shop shows it cancelled but shipping dispatched it" in out.getvalue()


def test_stock_that_does_not_add_up_is_reported(orders):
    StockItem.objects.using("inventory").filter(sku="AUD-1").update(on_hand=9)
    out = StringIO()
    with pytest.raises(CommandError):
        call_command("audit_saga", stdout=out)
    assert "I2 AUD-1: received 10 - dispatched 2 != on hand 9" in out.getvalue()


def test_an_order_that_has_not_finished_is_reported(orders):
    Order.objects.using("shop").filter(id=orders["delivered"]).update(status="dispatched")
    out = StringIO()
    with pytest.raises(CommandError):
        call_command("audit_saga", "--order", orders["delivered"], stdout=out)
    assert "still dispatched" in out.getvalue()
