"""Replay, discard and restock follow Django's model permissions, not mere staff status."""

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client

from dashboard.models import DeadLetter
from eventbus.dispatch import Dispatcher
from eventbus.service import service
from inventory.models import StockItem

from .factories import dead_lettered, new_order_id, record

pytestmark = pytest.mark.django_db(databases=["default", "dashboard", "inventory"])


def _login(*codenames):
    user = User.objects.create_user("plain-staff", password="pw", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    client = Client()
    client.force_login(user)
    return client


def _letter():
    original = record("placed", new_order_id())
    Dispatcher(service("dashboard")).handle([original])
    Dispatcher(service("dashboard")).handle([dead_lettered(original)])
    return DeadLetter.objects.using("dashboard").get()


@pytest.mark.parametrize("action", ["replay", "discard"])
def test_staff_without_the_permission_cannot_replay_or_discard(action):
    letter = _letter()
    client = _login("view_deadletter")
    response = client.post(f"/dashboard/api/dead-letters/{action}", {"ids": [letter.pk]})
    assert response.status_code == 403 and "change_deadletter" in response.json()["error"]
    admin = client.post("/admin/dashboard/deadletter/", {"action": action, "_selected_action": [letter.pk]})
    assert admin.status_code in (200, 302, 403)
    letter.refresh_from_db()
    assert letter.status == "new"


def test_the_permission_lets_staff_replay():
    letter = _letter()
    client = _login("view_deadletter", "change_deadletter")
    assert client.post("/dashboard/api/dead-letters/replay", {"ids": [letter.pk]}).status_code == 200
    letter.refresh_from_db()
    assert letter.status == "replayed"


def test_the_admin_offers_actions_only_with_the_permission():
    _letter()
    viewer = _login("view_deadletter").get("/admin/dashboard/deadletter/")
    assert viewer.status_code == 200 and 'value="replay"' not in viewer.content.decode()
    User.objects.all().delete()
    changer = _login("view_deadletter", "change_deadletter").get("/admin/dashboard/deadletter/")
    assert 'value="replay"' in changer.content.decode()


def test_restock_needs_the_stock_permission():
    StockItem.objects.using("inventory").create(sku="PERM-1", on_hand=1)
    item = StockItem.objects.using("inventory").get(sku="PERM-1")
    viewer = _login("view_stockitem")
    page = viewer.get("/admin/inventory/stockitem/")
    assert page.status_code == 200 and 'value="restock"' not in page.content.decode()
    viewer.post("/admin/inventory/stockitem/", {"action": "restock", "_selected_action": [item.pk], "quantity": "5"})
    assert StockItem.objects.using("inventory").get(sku="PERM-1").on_hand == 1
    User.objects.all().delete()
    stocker = _login("view_stockitem", "change_stockitem")
    stocker.post("/admin/inventory/stockitem/", {"action": "restock", "_selected_action": [item.pk], "quantity": "5"})
    assert StockItem.objects.using("inventory").get(sku="PERM-1").on_hand == 6


def test_the_dashboard_shows_replay_and_discard_only_with_the_permission():
    viewer = _login("view_deadletter").get("/dashboard/").content.decode()
    assert 'data-can-act="false"' in viewer
    assert "dl-replay-selected" not in viewer and "dl-discard-selected" not in viewer
    User.objects.all().delete()
    changer = _login("view_deadletter", "change_deadletter").get("/dashboard/").content.decode()
    assert 'data-can-act="true"' in changer
    assert "dl-replay-selected" in changer and "dl-discard-selected" in changer
