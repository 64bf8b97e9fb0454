"""Order rate limit: a fixed window per client in a real Redis; open when Redis is away."""

import json
import logging
import uuid

import pytest

from shop import ratelimit
from shop.models import Order
from tests.support import free_port

pytestmark = pytest.mark.django_db(databases=["default", "shop"])

BODY = {"email": "ada@example.com", "name": "Ada", "address": "1 Road", "lines": [{"sku": "MUG-001", "quantity": 1}]}
WINDOW_START = 1_800_000_000  # a multiple of 60 and 3600


@pytest.fixture
def limited(settings, redis_url, monkeypatch):
    """3 orders a minute, with the clock frozen 10 s into a window so the test never straddles two."""
    settings.ORDER_RATE_LIMIT = "3/m"
    monkeypatch.setattr(ratelimit, "_now", lambda: WINDOW_START + 10.0)
    return settings


def client_ip() -> str:
    """A fresh client per test, so no test sees another's count in the shared Redis."""
    return f"10.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}"


def place(client, ip):
    return client.post("/api/orders", json.dumps(BODY), content_type="application/json", REMOTE_ADDR=ip)


@pytest.mark.parametrize(("rate", "parsed"), [("30/m", (30, 60)), ("5/s", (5, 1)), (" 100 / h ", (100, 3600))])
def test_parse_rate(rate, parsed):
    assert ratelimit.parse_rate(rate) == parsed


@pytest.mark.parametrize("rate", ["", "  ", None])
def test_empty_rate_is_off(rate):
    assert ratelimit.parse_rate(rate) is None


@pytest.mark.parametrize("rate", ["30", "30/d", "x/m", "-1/m"])
def test_malformed_rate_is_an_error(rate):
    with pytest.raises(ValueError, match="ORDER_RATE_LIMIT"):
        ratelimit.parse_rate(rate)


def test_api_over_the_limit_is_429_with_retry_after(client, products, limited):
    ip = client_ip()
    assert [place(client, ip).status_code for _ in range(3)] == [201, 201, 201]
    refused = place(client, ip)
    assert refused.status_code == 429
    assert refused["Retry-After"] == "50"
    assert "Too many orders" in refused.json()["detail"]
    assert Order.objects.using("shop").count() == 3
    assert place(client, client_ip()).status_code == 201  # per client: another IP still gets through


def test_the_next_window_lets_the_client_in_again(client, products, limited, monkeypatch):
    ip = client_ip()
    for _ in range(3):
        place(client, ip)
    assert place(client, ip).status_code == 429
    monkeypatch.setattr(ratelimit, "_now", lambda: WINDOW_START + 60.5)
    assert place(client, ip).status_code == 201


def test_checkout_over_the_limit_is_429_and_keeps_the_cart(client, products, limited):
    ip = client_ip()
    form = {"email": "ada@example.com", "name": "Ada", "address": "1 Road"}
    statuses = []
    for _ in range(4):
        client.post("/products/MUG-001/", {"quantity": "1"})
        statuses.append(client.post("/checkout/", form, REMOTE_ADDR=ip).status_code)
    assert statuses == [302, 302, 302, 429]
    refused = client.post("/checkout/", form, REMOTE_ADDR=ip)
    assert refused["Retry-After"] == "50" and "Too many orders" in refused.content.decode()
    assert "Kafka Mug" in client.get("/cart/").content.decode()


def test_invalid_checkout_forms_do_not_count(client, products, limited):
    ip = client_ip()
    client.post("/products/MUG-001/", {"quantity": "1"})
    for _ in range(5):
        assert client.post("/checkout/", {"email": "bad"}, REMOTE_ADDR=ip).status_code == 200
    assert (
        client.post("/checkout/", {"email": "a@b.co", "name": "A", "address": "B"}, REMOTE_ADDR=ip).status_code == 302
    )


def test_off_when_the_setting_is_empty(client, products, settings, redis_url):
    settings.ORDER_RATE_LIMIT = ""
    ip = client_ip()
    assert {place(client, ip).status_code for _ in range(5)} == {201}


def test_fails_open_when_redis_is_down(client, products, settings, caplog):
    settings.ORDER_RATE_LIMIT = "1/m"
    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    ip = client_ip()
    with caplog.at_level(logging.WARNING, logger="shop.ratelimit"):
        assert [place(client, ip).status_code for _ in range(3)] == [201, 201, 201]
    assert "Redis unavailable" in caplog.text
    assert Order.objects.using("shop").count() == 3
