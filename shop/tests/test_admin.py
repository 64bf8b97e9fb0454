"""Staff admin pages for the shop, and the cancel action going through the service."""

import pytest

from shop.models import Order, OutboxMessage

pytestmark = pytest.mark.django_db(databases=["default", "shop"])


@pytest.fixture
def admin_client(client, django_user_model):
    client.force_login(django_user_model.objects.create_superuser("root", "root@example.com", "pw"))
    return client


def test_changelists_and_pages_render(admin_client, place):
    placed = place()
    outbox = OutboxMessage.objects.using("shop").get()
    for url in [
        "/admin/shop/product/",
        "/admin/shop/product/?q=mug",
        "/admin/shop/order/",
        "/admin/shop/order/?status__exact=placed",
        f"/admin/shop/order/{placed.order.id}/change/",
        "/admin/shop/outboxmessage/",
        f"/admin/shop/outboxmessage/{outbox.position}/change/",
        "/admin/shop/inboxmessage/",
    ]:
        response = admin_client.get(url)
        assert response.status_code == 200, url
    page = admin_client.get(f"/admin/shop/order/{placed.order.id}/change/").content.decode()
    assert placed.order.token_hash in page and 'name="token_hash"' not in page  # shown, not editable
    assert "Kafka Mug" in page  # the lines inline


def test_outbox_is_read_only(admin_client, place):
    place()
    assert admin_client.get("/admin/shop/outboxmessage/add/").status_code == 403


def test_cancel_action_cancels_what_it_can(admin_client, place):
    first, second = place(), place()
    Order.objects.using("shop").filter(id=second.order.id).update(status="dispatched")
    response = admin_client.post(
        "/admin/shop/order/",
        {"action": "cancel_selected_orders", "_selected_action": [str(first.order.id), str(second.order.id)]},
        follow=True,
    )
    page = response.content.decode()
    assert "Cancel requested for 1 order(s)" in page and "past cancelling" in page
    statuses = dict(Order.objects.using("shop").values_list("id", "status"))
    assert statuses == {first.order.id: "placed", second.order.id: "dispatched"}  # shipping decides
    requests = OutboxMessage.objects.using("shop").filter(event_type="conveyor.shop.order.cancel_requested.v1")
    assert [row.key for row in requests] == [str(first.order.id)]


def test_admin_needs_staff(client, place):
    assert client.get("/admin/shop/order/").status_code == 302
