"""Redis goes away under the dashboard: orders are still taken, the page says it is reconnecting, and
when Redis is back it reconnects and catches up from the read model without a reload (ISSUE 7)."""

import pytest
from playwright.sync_api import expect

from tests.browser.helpers import log_in, open_dashboard, product, start
from tests.support import RedisServer, http_json

pytestmark = [
    pytest.mark.browser,
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True, databases=["default", "shop", "inventory", "shipping", "dashboard"]),
]


@pytest.fixture
def own_redis(stack, tmp_path):
    """A Redis of this test's own, so that stopping it disturbs no other test."""
    server = RedisServer(tmp_path / "redis")
    server.start()
    stack.env["REDIS_URL"] = server.url
    yield server
    server.stop()


def test_the_dashboard_reconnects_and_catches_up_after_a_redis_outage(stack, browser, staff_user, own_redis):
    sku = product("OUTAGE-CUP", 10, "Outage Cup", "11.00")
    base = start(stack, consumers=("shop", "inventory", "dashboard"), celery=False)
    page = browser.page(base)
    log_in(page)
    open_dashboard(page)

    own_redis.stop()
    expect(page.locator("#conn")).not_to_have_attribute("data-state", "live", timeout=60_000)
    status, placed = http_json(
        "POST",
        f"{base}/api/orders",
        {"email": "r@example.com", "name": "R", "address": "1 Down St", "lines": [{"sku": sku, "quantity": 1}]},
    )
    assert status == 201, placed  # orders are still taken without Redis

    own_redis.start()  # same port, empty: every channel-layer group is gone
    expect(page.locator("#conn")).to_have_attribute("data-state", "live", timeout=90_000)
    card = page.locator(f'[data-order-id="{placed["id"]}"]')
    expect(card).to_be_visible(timeout=60_000)  # caught up from the read model
    expect(page.locator(f'[data-stage="reserved"] [data-order-id="{placed["id"]}"]')).to_be_visible(timeout=60_000)
    assert page.evaluate("() => window.__notReloaded === true")
