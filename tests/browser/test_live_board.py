"""Staff watch an order placed in the storefront cross the live board, and the customer watches it on the
order page: both without a reload (ISSUE 5, "Tests")."""

import json
import re

import pytest
from playwright.sync_api import expect

from tests.browser.helpers import (
    LIFECYCLE,
    buy,
    card_stages,
    log_in,
    not_reloaded,
    open_dashboard,
    product,
    start,
    watch_cards,
    watch_order_status,
)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True, databases=["default", "shop", "inventory", "shipping", "dashboard"]),
]


def test_an_order_card_crosses_the_board_to_delivered_and_the_order_page_follows(stack, staff_user, browser):
    sku = product("LIVE-MUG", 10, "Live Mug", "12.50")
    base = start(stack)

    staff = browser.page(base, 1440, 900)
    log_in(staff, then="/dashboard/")
    open_dashboard(staff)
    watch_cards(staff)

    customer = browser.page(base)
    order_id = buy(customer, sku, 2)
    watch_order_status(customer)

    card = staff.locator(f'[data-order-id="{order_id}"]')
    expect(staff.locator(f'[data-stage="delivered"] [data-order-id="{order_id}"]')).to_be_visible(timeout=60_000)
    expect(card).to_have_count(1)  # one card per order, in the column of its stage
    stages = card_stages(staff, order_id)
    assert stages[-1] == "delivered", stages
    assert len(set(stages)) >= 3, f"the card was seen in {stages}: fewer than three columns"
    assert stages == sorted(stages, key=LIFECYCLE.index), f"the card went backwards: {stages}"
    assert not_reloaded(staff), "the dashboard reloaded"

    status = customer.locator("[data-order-status]")
    expect(status).to_have_attribute("data-order-status", "delivered", timeout=60_000)
    expect(status).to_have_text("Delivered")
    statuses = customer.evaluate("() => window.__statuses")
    assert statuses[-1] == "delivered" and len(statuses) >= 2, f"the page never changed live: {statuses}"
    assert statuses == sorted(statuses, key=LIFECYCLE.index), statuses
    expect(customer.locator("[data-history-status]")).to_have_count(5)
    assert not_reloaded(customer), "the order page reloaded"


def test_the_tail_says_how_many_events_were_too_fast_to_show(stack, staff_user, browser):
    """Under heavy traffic a batch frame carries only the newest events; the page says how many it skipped."""
    sku = product("SKIP-MUG", 10, "Skip Mug", "3.00")
    base = start(stack)
    staff = browser.page(base, 1440, 900)

    def as_if_busy(ws):
        server = ws.connect_to_server()

        def forward(message):
            frame = json.loads(message) if isinstance(message, str) else None
            if frame and frame.get("kind") == "batch":
                message = json.dumps(frame | {"dropped": 7})
            ws.send(message)

        server.on_message(forward)

    staff.route_web_socket(re.compile(r".*/ws/dashboard/$"), as_if_busy)
    log_in(staff, then="/dashboard/")
    open_dashboard(staff)
    expect(staff.locator("#tail-skipped")).to_be_hidden()
    buy(browser.page(base), sku, 1)
    note = staff.locator("#tail-skipped")
    expect(note).to_contain_text("events were too fast for the tail", timeout=60_000)
    expect(note.get_by_role("link", name="Topics")).to_have_attribute("href", "/dashboard/topics/")
