"""Order tokens: hashed wherever they are kept (the order row, the session), and they expire."""

from datetime import timedelta

import pytest
from django.contrib.sessions.models import Session
from django.test import Client

from shop.models import Order

pytestmark = pytest.mark.django_db(databases=["default", "shop"])


def _age(placed, days):
    created = Order.objects.using("shop").get(id=placed.order.id).created_at - timedelta(days=days)
    Order.objects.using("shop").filter(id=placed.order.id).update(created_at=created)


def test_the_session_keeps_only_the_tokens_hash(place):
    placed = place()
    client = Client()
    client.get(f"/orders/{placed.order.id}/", {"token": placed.token})
    stored = [s.get_decoded() for s in Session.objects.all()]
    assert stored and all(placed.token not in repr(data) for data in stored)
    assert any(placed.order.token_hash in repr(data) for data in stored)


def test_checkout_keeps_only_the_hash_and_hands_the_link_over_in_the_fragment(products):
    client = Client()
    client.post("/products/MUG-001/", {"quantity": "1"})
    response = client.post("/checkout/", {"email": "ada@example.com", "name": "Ada", "address": "1 Road"})
    assert response.status_code == 302
    path, _, fragment = response["Location"].partition("#")
    assert path.startswith("/orders/") and "?" not in path and fragment.startswith("token=")
    token = fragment.removeprefix("token=")
    assert all(token not in repr(s.get_decoded()) for s in Session.objects.all())
    assert client.get(path).status_code == 200


@pytest.mark.parametrize("where", ["api", "page"])
def test_a_token_past_its_max_age_opens_nothing(place, settings, where):
    settings.ORDER_TOKEN_MAX_AGE_DAYS = 30
    placed = place()
    _age(placed, 31)
    if where == "api":
        response = Client().get(f"/api/orders/{placed.order.id}", HTTP_AUTHORIZATION=f"Bearer {placed.token}")
    else:
        response = Client().get(f"/orders/{placed.order.id}/", {"token": placed.token})
    assert response.status_code == 404


def test_a_token_within_its_max_age_works_and_zero_means_forever(place, settings):
    settings.ORDER_TOKEN_MAX_AGE_DAYS = 30
    placed = place()
    _age(placed, 29)
    auth = {"HTTP_AUTHORIZATION": f"Bearer {placed.token}"}
    assert Client().get(f"/api/orders/{placed.order.id}", **auth).status_code == 200
    settings.ORDER_TOKEN_MAX_AGE_DAYS = 0
    _age(placed, 3650)
    assert Client().get(f"/api/orders/{placed.order.id}", **auth).status_code == 200


def test_the_default_max_age_is_generous(settings):
    assert settings.ORDER_TOKEN_MAX_AGE_DAYS >= 90
