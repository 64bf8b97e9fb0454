import pytest
from django.contrib.auth import get_user_model

from inventory.models import OutboxMessage, StockItem

pytestmark = pytest.mark.django_db(databases=["default", "shop", "inventory", "shipping", "dashboard"])


@pytest.fixture
def staff_client(client):
    user = get_user_model().objects.create_user("staff", password="pw", is_staff=True, is_superuser=True)
    client.force_login(user)
    return client


def test_restock_action_adds_units_and_emits_a_stock_event(staff_client):
    StockItem.objects.using("inventory").create(sku="MUG-001", on_hand=2)
    url = "/admin/inventory/stockitem/"
    asked = staff_client.post(url, {"action": "restock", "_selected_action": ["MUG-001"]})
    assert asked.status_code == 200 and b"Add units to" in asked.content
    done = staff_client.post(url, {"action": "restock", "_selected_action": ["MUG-001"], "quantity": "5"})
    assert done.status_code == 302
    assert StockItem.objects.using("inventory").get(sku="MUG-001").on_hand == 7
    event = OutboxMessage.objects.using("inventory").get(event_type="conveyor.inventory.stock.changed.v1")
    assert b'"available":7' in bytes(event.value)


def test_restock_refuses_a_bad_quantity(staff_client):
    StockItem.objects.using("inventory").create(sku="MUG-001", on_hand=2)
    staff_client.post(
        "/admin/inventory/stockitem/", {"action": "restock", "_selected_action": ["MUG-001"], "quantity": "-3"}
    )
    assert StockItem.objects.using("inventory").get(sku="MUG-001").on_hand == 2


@pytest.mark.parametrize(
    "url",
    [
        "/admin/inventory/stockitem/",
        "/admin/inventory/reservation/",
        "/admin/inventory/outboxmessage/",
        "/admin/shipping/shipment/",
        "/admin/shipping/outboxmessage/",
        "/admin/shop/outboxmessage/",
    ],
)
def test_admin_lists_open_for_staff(staff_client, url):
    assert staff_client.get(url).status_code == 200


def test_admin_refuses_anonymous(client):
    assert client.get("/admin/inventory/stockitem/").status_code == 302
