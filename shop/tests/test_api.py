"""The JSON API: every route, every status, and bad bodies that must never 500."""

import json
import uuid

import pytest
from django.test import Client

from shop.models import Order, OutboxMessage

pytestmark = pytest.mark.django_db(databases=["default", "shop"])

JSON = "application/json"  # the API refuses other bodies (test_api_content_type.py)
GOOD = {"email": "ada@example.com", "name": "Ada", "address": "1 Road", "lines": [{"sku": "MUG-001", "quantity": 2}]}


def post_json(client, path, body, **extra):
    data = body if isinstance(body, (str, bytes)) else json.dumps(body)
    return client.post(path, data, content_type="application/json", **extra)


def bearer(token):
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


def place_via_api(client) -> dict:
    response = post_json(client, "/api/orders", GOOD)
    assert response.status_code == 201, response.content
    return response.json()


def test_products(client, products):
    body = client.get("/api/products").json()
    assert {"sku": "MUG-001", "name": "Kafka Mug", "price": "12.50", "available": 120} in body
    assert all(isinstance(p["price"], str) and isinstance(p["available"], int) for p in body)
    assert sorted(p["sku"] for p in body) == sorted(products)


def test_place_order_201_and_the_outbox(client, products):
    body = place_via_api(client)
    assert body["status"] == "placed" and set(body) == {"id", "status", "token"}
    order = Order.objects.using("shop").get(id=body["id"])
    assert order.session_key == ""  # API orders belong to their token, not to a cookie
    assert OutboxMessage.objects.using("shop").get().key == body["id"]


def test_place_order_needs_no_csrf(products):
    response = post_json(Client(enforce_csrf_checks=True), "/api/orders", GOOD)
    assert response.status_code == 201


def test_get_order_with_the_token(client, products):
    placed = place_via_api(client)
    response = Client().get(f"/api/orders/{placed['id']}", **bearer(placed["token"]))
    assert response.status_code == 200
    body = response.json()
    assert body["id"] == placed["id"] and body["status"] == "placed"
    assert body["lines"] == [{"sku": "MUG-001", "name": "Kafka Mug", "quantity": 2, "unit_price": "12.50"}]
    assert [h["status"] for h in body["history"]] == ["placed"] and body["history"][0]["at"]


@pytest.mark.parametrize(
    "headers",
    [{}, bearer("wrong"), bearer(""), {"HTTP_AUTHORIZATION": "Basic abc"}, {"HTTP_AUTHORIZATION": "Bearer"}],
)
def test_get_order_without_the_right_token_is_404(client, products, headers):
    placed = place_via_api(client)
    assert Client().get(f"/api/orders/{placed['id']}", **headers).status_code == 404


def test_the_token_of_another_order_is_404(client, products):
    first, second = place_via_api(client), place_via_api(client)
    assert Client().get(f"/api/orders/{first['id']}", **bearer(second["token"])).status_code == 404


@pytest.mark.parametrize("order_id", [str(uuid.uuid4()), "not-a-uuid", "1"])
def test_unknown_or_malformed_order_id_is_404(client, products, order_id):
    assert client.get(f"/api/orders/{order_id}", **bearer("x")).status_code == 404


def test_staff_session_reads_but_cannot_cancel(client, products, staff_client):
    placed = place_via_api(Client())
    assert staff_client.get(f"/api/orders/{placed['id']}").status_code == 200
    # A session is read-only on the API: no cookie-driven state change, so no CSRF hole.
    assert staff_client.post(f"/api/orders/{placed['id']}/cancel", content_type=JSON).status_code == 404
    assert Order.objects.using("shop").get(id=placed["id"]).status == "placed"


def test_a_logged_in_non_staff_user_reads_nothing(client, products, django_user_model):
    placed = place_via_api(Client())
    client.force_login(django_user_model.objects.create_user("bob", password="pw"))
    assert client.get(f"/api/orders/{placed['id']}").status_code == 404


def test_cancel_with_the_token_is_a_request_202_until_shipping_answers(client, products):
    placed = place_via_api(client)
    path = f"/api/orders/{placed['id']}/cancel"
    response = client.post(path, content_type=JSON, **bearer(placed["token"]))
    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "placed"  # unchanged until shipping confirms
    assert [h["status"] for h in body["history"]] == ["placed", "cancel_requested"]
    assert body["cancel"]["state"] == "requested" and body["cancel"]["reason"] == "customer request"
    again = client.post(
        path, content_type=JSON, **bearer(placed["token"])
    )  # asking again: the same answer, no second request
    assert again.status_code == 202 and again.json()["history"] == body["history"]
    requests = OutboxMessage.objects.using("shop").filter(event_type="conveyor.shop.order.cancel_requested.v1")
    assert requests.count() == 1


def test_cancel_of_a_cancelled_order_is_409(client, products):
    placed = place_via_api(client)
    Order.objects.using("shop").filter(id=placed["id"]).update(status="cancelled")
    again = client.post(f"/api/orders/{placed['id']}/cancel", content_type=JSON, **bearer(placed["token"]))
    assert again.status_code == 409 and "cancelled" in again.json()["detail"]


@pytest.mark.parametrize("status", ["dispatched", "delivered", "rejected", "cancelled"])
def test_cancel_after_the_point_of_no_return_is_409(client, products, status):
    placed = place_via_api(client)
    Order.objects.using("shop").filter(id=placed["id"]).update(status=status)
    response = client.post(f"/api/orders/{placed['id']}/cancel", content_type=JSON, **bearer(placed["token"]))
    assert response.status_code == 409
    assert response["Content-Type"].startswith("application/json")
    assert Order.objects.using("shop").get(id=placed["id"]).status == status


def test_cancel_with_a_wrong_token_is_404(client, products):
    placed = place_via_api(client)
    assert client.post(f"/api/orders/{placed['id']}/cancel", content_type=JSON, **bearer("nope")).status_code == 404
    assert client.post(f"/api/orders/{placed['id']}/cancel", content_type=JSON).status_code == 404
    assert Order.objects.using("shop").get(id=placed["id"]).status == "placed"


def _with(**changes):
    return {**GOOD, **changes}


def _line(**changes):
    return _with(lines=[{"sku": "MUG-001", "quantity": 1, **changes}])


BAD_BODIES = {
    "empty object": {},
    "array": [],
    "null": None,
    "number": 42,
    "missing email": {k: v for k, v in GOOD.items() if k != "email"},
    "missing lines": {k: v for k, v in GOOD.items() if k != "lines"},
    "email not an email": _with(email="nope"),
    "email a number": _with(email=5),
    "email 1 MB": _with(email="a" * 1_000_000 + "@example.com"),
    "name empty": _with(name=""),
    "name blank": _with(name="   "),
    "name 1 MB": _with(name="n" * 1_000_000),
    "address 1 MB": _with(address="a" * 1_000_000),
    "name a list": _with(name=["Ada"]),
    "lines empty": _with(lines=[]),
    "lines an object": _with(lines={"sku": "MUG-001", "quantity": 1}),
    "lines of strings": _with(lines=["MUG-001"]),
    "too many lines": _with(lines=[{"sku": "MUG-001", "quantity": 1}] * 51),
    "quantity 0": _line(quantity=0),
    "quantity negative": _line(quantity=-3),
    "quantity 101": _line(quantity=101),
    "quantity 10**20": _line(quantity=10**20),
    "quantity float": _line(quantity=1.5),
    "quantity string": _line(quantity="2"),
    "quantity bool": _line(quantity=True),
    "quantity null": _line(quantity=None),
    "sku missing": _with(lines=[{"quantity": 1}]),
    "sku unknown": _line(sku="NOPE-999"),
    "sku empty": _line(sku=""),
    "sku 1 MB": _line(sku="S" * 1_000_000),
    "sku a number": _line(sku=123),
    "unknown field": _with(coupon="FREE"),
    "unknown line field": _line(price="0.01"),
}


@pytest.mark.parametrize("body", BAD_BODIES.values(), ids=BAD_BODIES.keys())
def test_bad_bodies_get_field_errors_never_a_500(client, products, body):
    response = post_json(client, "/api/orders", body)
    assert 400 <= response.status_code < 500, response.content[:500]
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert isinstance(detail, list) and detail and all("loc" in e and "msg" in e for e in detail)
    assert not Order.objects.using("shop").exists()


def test_unknown_sku_error_names_the_lines_field(client, products):
    detail = post_json(client, "/api/orders", _line(sku="NOPE-999")).json()["detail"]
    assert detail[0]["loc"][-1] == "lines" and "NOPE-999" in detail[0]["msg"]


RAW_BAD = {
    "not json": "email=ada",
    "truncated json": '{"email": "ada@',
    "bytes": b"\xff\xfe\x00",
    "empty": "",
    "nan": '{"email": NaN}',
    "deep nesting": "[" * 10_000 + "]" * 10_000,
}


@pytest.mark.parametrize("body", RAW_BAD.values(), ids=RAW_BAD.keys())
def test_non_json_bodies_are_4xx(client, products, body):
    response = post_json(client, "/api/orders", body)
    assert 400 <= response.status_code < 500, response.content[:500]
    assert not Order.objects.using("shop").exists()


def test_a_body_over_the_upload_limit_is_4xx(client, products):
    response = post_json(client, "/api/orders", _with(address="a" * 3_000_000))
    assert 400 <= response.status_code < 500


def test_form_encoded_body_is_4xx(client, products):
    response = client.post("/api/orders", {"email": "ada@example.com"})
    assert 400 <= response.status_code < 500


def test_openapi_document(client):
    response = client.get("/api/openapi.json")
    assert response.status_code == 200
    document = json.loads(response.content)
    assert document["openapi"].startswith("3.")
    paths = document["paths"]
    assert {"/api/products", "/api/orders", "/api/orders/{order_id}", "/api/orders/{order_id}/cancel"} <= set(paths)
    assert "post" in paths["/api/orders"] and "201" in paths["/api/orders"]["post"]["responses"]
    assert {"202", "409"} <= set(paths["/api/orders/{order_id}/cancel"]["post"]["responses"])


def test_docs_page(client):
    assert client.get("/api/docs").status_code == 200


def idempotent(client, body, key):
    return post_json(client, "/api/orders", body, HTTP_IDEMPOTENCY_KEY=key)


def test_the_same_idempotency_key_and_body_return_the_first_order(client, products):
    key = str(uuid.uuid4())
    first = idempotent(client, GOOD, key)
    again = idempotent(Client(), GOOD, key)  # a retry, from anywhere
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()  # the same order and the same token
    assert again["Idempotent-Replayed"] == "true" and "Idempotent-Replayed" not in first
    assert Order.objects.using("shop").count() == 1 and OutboxMessage.objects.using("shop").count() == 1
    token = again.json()["token"]
    assert client.get(f"/api/orders/{first.json()['id']}", **bearer(token)).status_code == 200


def test_the_same_idempotency_key_with_another_body_is_422_and_places_nothing(client, products):
    key = str(uuid.uuid4())
    assert idempotent(client, GOOD, key).status_code == 201
    other = idempotent(client, {**GOOD, "lines": [{"sku": "MUG-001", "quantity": 3}]}, key)
    assert other.status_code == 422
    assert "Idempotency-Key" in other.json()["detail"]
    assert Order.objects.using("shop").count() == 1


def test_other_keys_or_no_key_place_new_orders(client, products):
    idempotent(client, GOOD, "key-1")
    idempotent(client, GOOD, "key-2")
    post_json(client, "/api/orders", GOOD)
    post_json(client, "/api/orders", GOOD)
    assert Order.objects.using("shop").count() == 4


def test_a_key_older_than_its_window_is_forgotten(client, products, settings):
    from datetime import timedelta

    from django.utils import timezone

    from shop.models import IdempotencyKey
    from shop.services import prune_idempotency_keys

    first = idempotent(client, GOOD, "old-key").json()
    IdempotencyKey.objects.using("shop").update(
        created_at=timezone.now() - timedelta(hours=settings.IDEMPOTENCY_KEY_HOURS + 1)
    )
    again = idempotent(client, GOOD, "old-key").json()
    assert again["id"] != first["id"]  # a new order: the key had expired
    IdempotencyKey.objects.using("shop").update(
        created_at=timezone.now() - timedelta(hours=settings.IDEMPOTENCY_KEY_HOURS + 1)
    )
    assert prune_idempotency_keys() == 1
    assert Order.objects.using("shop").count() == 2  # pruning forgets keys, never orders


def test_a_too_long_idempotency_key_is_422(client, products):
    response = idempotent(client, GOOD, "k" * 256)
    assert response.status_code == 422 and Order.objects.using("shop").count() == 0


def test_the_openapi_document_describes_the_idempotency_key(client):
    operation = client.get("/api/openapi.json").json()["paths"]["/api/orders"]["post"]
    [header] = [p for p in operation["parameters"] if p["name"] == "Idempotency-Key"]
    assert header["in"] == "header" and "422" in header["description"]
