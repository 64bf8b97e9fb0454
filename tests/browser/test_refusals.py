"""Who may not see what: anonymous users are sent to log in, anonymous sockets are closed without a frame,
and one customer cannot open another's order (ISSUE 5, "Tests"; ARCHITECTURE 6)."""

import re

import pytest
from playwright.sync_api import expect

from tests.browser.helpers import buy, open_socket, product, start
from tests.support import http_json

pytestmark = [
    pytest.mark.browser,
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True, databases=["default", "shop", "inventory", "shipping", "dashboard"]),
]
CLOSE_FORBIDDEN = 4403


def test_anonymous_users_and_sockets_are_refused_and_orders_stay_private(stack, browser):
    sku = product("PRIVATE-PEN", 20, "Private Pen", "3.20")
    base = start(stack, consumers=(), celery=False)  # refusals need only the web process
    status, theirs = http_json(
        "POST",
        f"{base}/api/orders",
        {"email": "ada@example.com", "name": "Ada", "address": "12 Row", "lines": [{"sku": sku, "quantity": 1}]},
    )
    assert status == 201, theirs

    page = browser.page(base)
    page.goto("/dashboard/")
    expect(page).to_have_url(re.compile(r"/admin/login/\?next=/dashboard/$"))
    expect(page.locator("input[name=password]")).to_be_visible()
    api = page.request.get("/dashboard/api/state", max_redirects=0)
    assert api.status == 302 and "/admin/login/" in api.headers["location"], api.status

    refused = open_socket(page, "/ws/dashboard/")
    assert refused["frames"] == 0 and not refused["open"], refused
    assert refused["code"] == CLOSE_FORBIDDEN, refused

    # This browser's own order is visible to it, over HTTP and its socket; another customer's is not.
    own = buy(page, sku, 1)
    own_socket = open_socket(page, f"/ws/orders/{own}/")
    assert own_socket["open"] and own in own_socket["first"], own_socket
    response = page.goto(f"/orders/{theirs['id']}/")
    assert response.status == 404
    expect(page.locator("[data-order-status]")).to_have_count(0)
    refused = open_socket(page, f"/ws/orders/{theirs['id']}/")
    assert refused["frames"] == 0 and refused["code"] == CLOSE_FORBIDDEN, refused
    # ... unless they were given its private link (the API's token): the 404 above is a refusal, not a bug
    response = page.goto(f"/orders/{theirs['id']}/?token={theirs['token']}")
    assert response.status == 200
    expect(page.locator("[data-order-status]")).to_have_attribute("data-order-status", "placed")
