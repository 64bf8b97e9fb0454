"""Every write of the JSON API refuses a body that is not declared as JSON (415), and changes nothing.

A cross-site form can send text/plain, urlencoded or multipart bodies without a CORS preflight."""

import json

import pytest

from shop.models import Order, OutboxMessage

pytestmark = pytest.mark.django_db(databases=["default", "shop"])

GOOD = {"email": "ada@example.com", "name": "Ada", "address": "1 Road", "lines": [{"sku": "MUG-001", "quantity": 2}]}
NOT_JSON = [
    "text/plain",
    "text/plain; charset=utf-8",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=x",
    "application/xml",
    "",  # a body with no declared type
]


def _place(client) -> dict:
    response = client.post("/api/orders", json.dumps(GOOD), content_type="application/json")
    assert response.status_code == 201, response.content
    return response.json()


def _assert_415(response, content_type: str) -> None:
    assert response.status_code == 415, response.content
    detail = response.json()["detail"]
    assert "Content-Type: application/json" in detail
    assert (content_type.split(";")[0] or "no Content-Type") in detail


@pytest.mark.parametrize("content_type", NOT_JSON)
def test_place_order_refuses_a_body_that_is_not_json(client, products, content_type):
    response = client.generic("POST", "/api/orders", json.dumps(GOOD), content_type=content_type)
    _assert_415(response, content_type)
    assert not Order.objects.using("shop").exists() and not OutboxMessage.objects.using("shop").exists()


@pytest.mark.parametrize("content_type", NOT_JSON)
def test_cancel_refuses_a_body_that_is_not_json(client, products, content_type):
    placed = _place(client)
    response = client.generic(
        "POST",
        f"/api/orders/{placed['id']}/cancel",
        "{}",
        content_type=content_type,
        HTTP_AUTHORIZATION=f"Bearer {placed['token']}",
    )
    _assert_415(response, content_type)
    assert Order.objects.using("shop").get(id=placed["id"]).status == "placed"


@pytest.mark.parametrize("content_type", ["application/json", "application/json; charset=utf-8"])
def test_json_with_or_without_a_charset_is_accepted(client, products, content_type):
    response = client.generic("POST", "/api/orders", json.dumps(GOOD), content_type=content_type)
    assert response.status_code == 201


def test_a_bodiless_cancel_needs_no_content_type(client, products):
    placed = _place(client)
    response = client.generic(
        "POST",
        f"/api/orders/{placed['id']}/cancel",
        "",
        content_type="",
        HTTP_AUTHORIZATION=f"Bearer {placed['token']}",
    )
    assert response.status_code != 415
    assert response.status_code < 300
