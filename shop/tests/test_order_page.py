"""Who sees /orders/<uuid>/: the session that placed it, the token holder, staff; nobody else (404)."""

import uuid

import pytest
from django.test import Client

from shop.access import remember_order
from shop.models import Order, OutboxMessage

pytestmark = pytest.mark.django_db(databases=["default", "shop"])


def owner_client(placed) -> Client:
    client = Client()
    session = client.session  # a saved session, with its cookie set on the client
    remember_order(session, placed.order.id, placed.token)
    session.save()
    return client


def url(order) -> str:
    return f"/orders/{order.id}/"


def test_owner_session_sees_status_lines_and_history(place):
    placed = place()
    page = owner_client(placed).get(url(placed.order))
    assert page.status_code == 200
    html = page.content.decode()
    assert 'data-order-status="placed"' in html
    assert "Kafka Mug" in html
    assert 'data-history-status="placed"' in html
    assert "Cancel this order" in html
    assert page["Cache-Control"].startswith("max-age=0")


def test_the_session_key_recorded_on_the_order_is_enough(place, client):
    client.get("/")  # no session yet
    session = client.session
    session.save()
    placed = place(session_key=session.session_key)
    assert client.get(url(placed.order)).status_code == 200


def test_a_private_link_is_swapped_for_the_session_and_leaves_the_address(place):
    placed = place()
    client = Client()
    response = client.get(url(placed.order), {"token": placed.token})
    assert response.status_code == 302 and response["Location"] == url(placed.order)  # no token in it
    page = client.get(response["Location"])
    assert page.status_code == 200 and placed.token not in page.content.decode()
    assert Client().get(url(placed.order)).status_code == 404  # the session sees it, not everyone


def test_staff_sees_any_order(place, staff_client):
    placed = place()
    assert staff_client.get(url(placed.order)).status_code == 200


@pytest.mark.parametrize("token", [None, "", "wrong", "x" * 5000])
def test_anyone_else_gets_404(place, token):
    placed = place()
    params = {} if token is None else {"token": token}
    assert Client().get(url(placed.order), params).status_code == 404


def test_another_customers_session_gets_404(place):
    mine, theirs = place(), place()
    assert owner_client(mine).get(url(theirs.order)).status_code == 404


def test_non_staff_user_gets_404(place, client, django_user_model):
    placed = place()
    client.force_login(django_user_model.objects.create_user("bob", password="pw"))
    assert client.get(url(placed.order)).status_code == 404


def test_unknown_order_is_404(products, staff_client):
    assert staff_client.get(f"/orders/{uuid.uuid4()}/").status_code == 404


def test_owner_requests_a_cancel_with_a_post(place):
    placed = place()
    client = owner_client(placed)
    response = client.post(f"{url(placed.order)}cancel/")
    assert response.status_code == 302 and response["Location"] == url(placed.order)
    # A request: the order keeps its stage until shipping answers.
    assert Order.objects.using("shop").get(id=placed.order.id).status == "placed"
    assert OutboxMessage.objects.using("shop").filter(event_type="conveyor.shop.order.cancel_requested.v1").count() == 1
    html = client.get(url(placed.order)).content.decode()
    assert 'data-order-status="placed"' in html
    assert 'data-history-status="cancel_requested"' in html
    assert 'data-cancel-state="requested"' in html
    assert " hidden>" in html.split("data-cancel-form", 1)[1].split("\n", 1)[0]  # no second request button
    client.post(f"{url(placed.order)}cancel/")  # asking again changes nothing
    assert OutboxMessage.objects.using("shop").filter(event_type="conveyor.shop.order.cancel_requested.v1").count() == 1


def test_token_holder_cancels_and_is_sent_back_with_the_token(place):
    placed = place()
    response = Client().post(f"{url(placed.order)}cancel/", {"token": placed.token})
    assert response["Location"] == f"{url(placed.order)}?token={placed.token}"
    requests = OutboxMessage.objects.using("shop").filter(event_type="conveyor.shop.order.cancel_requested.v1")
    assert [row.key for row in requests] == [str(placed.order.id)]


def test_cancel_needs_csrf(place):
    placed = place()
    client = owner_client(placed)
    client.handler.enforce_csrf_checks = True
    assert client.post(f"{url(placed.order)}cancel/").status_code == 403
    assert Order.objects.using("shop").get(id=placed.order.id).status == "placed"


def test_stranger_cannot_cancel(place):
    placed = place()
    assert Client().post(f"{url(placed.order)}cancel/", {"token": "wrong"}).status_code == 404
    assert Order.objects.using("shop").get(id=placed.order.id).status == "placed"


def test_a_dispatched_order_has_no_cancel_button_and_refuses_cancel(place):
    placed = place()
    Order.objects.using("shop").filter(id=placed.order.id).update(status="dispatched")
    client = owner_client(placed)
    html = client.get(url(placed.order)).content.decode()
    assert "data-cancel-form" in html and " hidden>" in html.split("data-cancel-form", 1)[1].split("\n", 1)[0]
    response = client.post(f"{url(placed.order)}cancel/", follow=True)
    assert "can no longer be cancelled" in response.content.decode()
    assert Order.objects.using("shop").get(id=placed.order.id).status == "dispatched"
