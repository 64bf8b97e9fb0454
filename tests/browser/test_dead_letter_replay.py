"""A poison record is dead-lettered by a real consumer, shown on the dashboard, and replayed from the page
onto its original topic (ISSUE 5: "a dead letter is replayed from the page")."""

import json
import uuid

import pytest
from playwright.sync_api import expect

from eventbus import envelope, schemas
from eventbus.tests import kafka_helpers
from tests.browser.helpers import STAFF_USERNAME, log_in, open_dashboard, start

pytestmark = [
    pytest.mark.browser,
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True, databases=["default", "shop", "inventory", "shipping", "dashboard"]),
]


def poison_order_placed() -> tuple[str, bytes]:
    """An OrderPlaced with correct CloudEvents headers whose body breaks its schema; returns (ce_id, value)."""
    order_id = str(uuid.uuid4())
    good = envelope.encode(
        event_type="conveyor.shop.order.placed.v1",
        source_app="shop",
        subject=order_id,
        data=kafka_helpers.placed_data(order_id, "GHOST-SKU"),
    )
    value = json.dumps({"order_id": order_id, "lines": "three mugs, please"}).encode()
    kafka_helpers.send_raw(good.topic, value, [(k, v.encode()) for k, v in good.headers.items()], good.key)
    return good.headers["ce_id"], value


def test_a_dead_letter_is_replayed_from_the_page(stack, staff_user, browser):
    # inventory reads shop.orders and dead-letters what it cannot decode; the dashboard shows dead letters
    base = start(stack, consumers=("inventory", "dashboard"), celery=False)
    page = browser.page(base, 1440, 900)
    log_in(page, then="/dashboard/")
    open_dashboard(page)
    page.on("dialog", lambda dialog: dialog.accept())  # if the page asks "are you sure?", staff say yes

    event_id, value = poison_order_placed()
    orders_topic = schemas.topic_name("shop.orders")
    rows = page.locator("#dead-letters [data-dead-letter-id]")
    expect(rows).to_have_count(1, timeout=60_000)
    row = rows.first
    expect(row).to_have_attribute("data-status", "new")
    expect(row).to_contain_text(orders_topic)  # where it came from
    expect(row).to_contain_text("inventory")  # which consumer group gave up on it
    expect(row).to_contain_text("three mugs, please")  # its payload
    expect(page.locator("#dl-count")).to_have_text("1")
    letter_id = row.get_attribute("data-dead-letter-id")

    row.get_by_role("button", name="Replay", exact=True).click()

    replayed = page.locator(f'#dead-letters [data-dead-letter-id="{letter_id}"]')
    expect(replayed).to_have_attribute("data-status", "replayed")
    expect(replayed).to_contain_text(f"replayed by {STAFF_USERNAME}")
    expect(replayed.get_by_role("button", name="Replay again")).to_be_enabled()
    expect(page.locator("#dl-status")).to_have_text("Replayed 1 of 1.")

    # The original record is back on its original topic: same value, same event id, no dlt_* headers.
    records = kafka_helpers.read_topic(orders_topic, expected=2)
    assert len(records) == 2, records
    again = max(records, key=lambda r: r.offset)
    headers = {k: v.decode() for k, v in again.headers}
    assert again.value == value and headers["ce_id"] == event_id, headers
    assert not any(k.startswith("dlt_") for k in headers), headers
    # ... where inventory reads it again, fails again, and the page shows the new dead letter live.
    expect(rows).to_have_count(2, timeout=60_000)
    expect(page.locator('#dead-letters [data-dead-letter-id][data-status="new"]')).to_have_count(1)
    expect(page.locator("#dl-count")).to_have_text("1")
