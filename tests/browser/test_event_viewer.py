"""The event viewer in Chromium against the real broker: topics with live counts, messages by seek and by a
streamed search, consumer groups with a previewed offset reset. Takes the README's pictures (docs/img/)."""

import re

import pytest
from playwright.sync_api import expect

from eventbus import browse, kafka_io, schemas
from eventbus.tests import kafka_helpers
from tests.browser.helpers import log_in, start
from tests.support import ROOT

pytestmark = [
    pytest.mark.browser,
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True, databases=["default", "shop", "inventory", "shipping", "dashboard"]),
]
SHOTS = ROOT / "docs" / "img"


def shoot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"))


@pytest.fixture(autouse=True)
def _close_browse_clients():
    yield
    browse.close()


def commit_group(group: str, topic: str, records: int) -> None:
    consumer = kafka_io.make_consumer(group, "browser-test")
    consumer.subscribe([topic])
    got = 0
    while got < records:
        got += sum(len(b) for b in consumer.poll(timeout_ms=500, max_records=records - got).values())
    consumer.commit()
    consumer.close()


def test_topics_page_counts_messages_and_follows_new_ones(stack, staff_user, browser):
    base = start(stack, consumers=(), celery=False)
    for _ in range(3):
        kafka_helpers.send_placed("MUG-001")
    orders = schemas.topic_name("shop.orders")
    commit_group(f"{orders}.audit", orders, 3)  # a group reading it (and Kafka's internal offsets topic)
    page = browser.page(base, 1280, 800)
    log_in(page, then="/dashboard/topics/")
    expect(page.locator(f'tr[data-topic="{orders}"]')).to_contain_text(f"{orders}.audit")
    page.fill("input[name=name]", stack.env["KAFKA_TOPIC_PREFIX"])  # only this test's topics (a shared broker)
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("tr[data-topic]")).to_have_count(2 * len(schemas.all_topics()))
    row = page.locator(f'tr[data-topic="{orders}"]')
    expect(row.locator("[data-messages]")).to_have_text("3")
    expect(page.locator(f'tr[data-topic="{orders}.dlt"]')).to_be_visible()
    expect(page.locator('tr[data-topic="__consumer_offsets"]')).to_have_count(0)
    row.locator("summary").click()
    expect(row.locator("table.parts tr[data-partition]")).to_have_count(len(browse.topic(orders).partitions))
    shoot(page, "viewer-topics")
    for _ in range(2):
        kafka_helpers.send_placed("MUG-001")
    expect(row.locator("[data-messages]")).to_have_text("5")  # the page polls the counts, no reload
    page.goto("/dashboard/topics/")
    page.click("#show-internal")
    expect(page.locator('tr[data-topic="__consumer_offsets"]')).to_have_count(1)


def test_messages_seek_and_search(stack, staff_user, browser):
    base = start(stack, consumers=(), celery=False)
    for _ in range(6):
        kafka_helpers.send_placed("MUG-001")
    lamps = [kafka_helpers.send_placed("RARE-LAMP") for _ in range(2)]
    orders = schemas.topic_name("shop.orders")
    busiest = max(browse.topic(orders).partitions, key=lambda p: p.messages)
    page = browser.page(base, 1280, 800)
    log_in(page, then="/dashboard/topics/")
    page.click(f'tr[data-topic="{orders}"] a[href="/dashboard/topics/{orders}/"]')
    expect(page.locator("#messages [data-offset]")).to_have_count(8)

    # seek: one partition from offset 1 (the form writes the URL, so the view is shareable)
    form = page.locator("#browse")
    form.locator(f'input[name=partition][value="{busiest.partition}"]').check()
    form.locator("select[name=seek]").select_option("offset")
    form.locator("input[name=offset]").fill("1")
    form.locator("button[type=submit]").click()
    expect(page).to_have_url(re.compile(rf"partition={busiest.partition}.*offset=1"))
    first = page.locator("#messages [data-offset]").first
    expect(first).to_have_attribute("data-partition", str(busiest.partition))
    expect(first).to_have_attribute("data-offset", "1")
    expect(page.locator("#messages [data-offset]")).to_have_count(busiest.messages - 1)

    # search on the broker, streamed in, with its progress and end
    page.goto(f"/dashboard/topics/{orders}/?q=rare-lamp")
    expect(page.locator("#search-status")).to_have_attribute("data-state", "done")
    matches = page.locator("#messages [data-offset]")
    expect(matches).to_have_count(2)
    expect(page.locator("#search-status")).to_contain_text("2 matches in 8 messages scanned")
    shoot(page, "viewer-search")
    matches.first.locator("summary").click()
    expect(matches.first).to_contain_text("ce_type")
    expect(matches.first.locator('[data-validity="valid"]')).to_be_visible()
    href = matches.first.locator("a.journey").get_attribute("href")
    assert href.split("order=")[1] in lamps

    # a malformed filter is refused with a message that says how to write it
    page.goto(f"/dashboard/topics/{orders}/?field=nonsense")
    expect(page.locator("#viewer-error")).to_contain_text("path=value")


def test_several_topics_at_once(stack, staff_user, browser):
    base = start(stack, consumers=(), celery=False)
    for _ in range(3):
        kafka_helpers.send_placed("MUG-001")
    for n in range(2):
        data = {"sku": "MUG-001", "on_hand": 5 + n, "reserved": 0, "available": 5 + n}
        kafka_helpers.send_event("conveyor.inventory.stock.changed.v1", "inventory", "MUG-001", data)
    orders, stock = schemas.topic_name("shop.orders"), schemas.topic_name("inventory.stock")
    page = browser.page(base, 1280, 800)
    log_in(page, then=f"/dashboard/topics/{orders}/")
    expect(page.locator("#messages [data-offset]")).to_have_count(3)
    page.locator("#topic-picker").select_option([stock])  # the multi-select of the other topics
    page.locator("#browse button[type=submit]").click()
    expect(page).to_have_url(re.compile(rf"topic={re.escape(stock)}"))
    expect(page.locator(f'#messages [data-topic="{orders}"]')).to_have_count(3)
    expect(page.locator(f'#messages [data-topic="{stock}"]')).to_have_count(2)
    first = page.locator("#messages [data-offset]").first  # newest first: the last stock change
    expect(first).to_have_attribute("data-topic", stock)
    shoot(page, "viewer-many-topics")

    # a search streams matches from both topics; seeking by offset across topics says why it cannot
    page.goto(f"/dashboard/topics/{orders}/?topic={stock}&q=mug-001")
    expect(page.locator("#search-status")).to_have_attribute("data-state", "done")
    expect(page.locator("#messages [data-offset]")).to_have_count(5)
    page.goto(f"/dashboard/topics/{orders}/?topic={stock}&offset=0")
    expect(page.locator("#viewer-error")).to_contain_text("several topics are chosen")


def test_groups_page_and_an_offset_reset(stack, staff_user, browser):
    base = start(stack, consumers=(), celery=False)
    for _ in range(5):
        kafka_helpers.send_placed("MUG-001")
    orders = schemas.topic_name("shop.orders")
    group = f"{orders}.audit"
    commit_group(group, orders, 5)
    for _ in range(2):
        kafka_helpers.send_placed("MUG-001")
    page = browser.page(base, 1280, 800)
    log_in(page, then="/dashboard/groups/")
    page.fill("input[name=name]", stack.env["KAFKA_TOPIC_PREFIX"])  # only this test's groups (a shared broker)
    page.get_by_role("button", name="Filter").click()
    row = page.locator(f'tr[data-group="{group}"]')
    expect(row.locator("[data-lag]")).to_have_text("2")
    expect(row).to_contain_text("Empty")
    shoot(page, "viewer-groups")

    row.get_by_role("link", name="Reset…").click()
    page.locator('input[name=strategy][value="earliest"]').check()
    page.get_by_role("button", name="Preview").click()
    preview = page.locator("#reset-preview tbody tr")
    expect(preview).to_have_count(len(browse.topic(orders).partitions))
    assert sum(browse.group(group).committed.values()) == 5  # the preview changed nothing
    page.get_by_role("button", name="Confirm the reset").click()
    expect(page.locator("#reset-done")).to_be_visible()
    assert sum(browse.group(group).committed.values()) == 0
    page.goto("/dashboard/groups/")
    expect(page.locator(f'tr[data-group="{group}"] [data-lag]')).to_have_text("7")
    expect(page.locator('#operator-log tr[data-action="reset-offsets"]')).to_contain_text(group)


def test_service_map_shows_services_and_live_rates(stack, staff_user, browser):
    base = start(stack, consumers=("inventory", "shipping", "shop", "dashboard"), celery=True, step_seconds="0")
    from tests.browser.helpers import demo_catalog

    demo_catalog()
    page = browser.page(base, 1280, 720)
    log_in(page, then="/dashboard/map/")
    for app in ("shop", "inventory", "shipping", "dashboard"):
        expect(page.locator(f'[data-service="{app}"]')).to_be_visible()
    orders = schemas.topic_name("shop.orders")
    edge = page.locator(f'[data-edge="{orders}:inventory"]')
    expect(page.locator('[data-service="inventory"] [data-members]')).to_have_text("1 consumer")
    expect(edge.locator("[data-rate]")).to_have_text("0.0 ev/s")  # two readings taken, before any order
    for _ in range(5):
        kafka_helpers.send_placed("MUG-001")
    expect(edge.locator("[data-rate]")).not_to_have_text("0.0 ev/s")  # the next reading sees them move
    expect(edge.locator("[data-edge-lag]")).to_have_text("0", timeout=60_000)  # inventory caught up
    shoot(page, "viewer-map")
    edge.locator(".edge-topic").click()
    expect(page).to_have_url(re.compile(rf"/dashboard/topics/{re.escape(orders)}/$"))


def test_time_travel_scrubber_under_the_live_board(stack, staff_user, browser):
    from datetime import datetime
    from urllib.parse import quote

    from dashboard.models import EventLog
    from dashboard.stages import should_move, stage_for
    from tests.browser.helpers import open_dashboard, product
    from tests.support import http_json

    sku = product("TT-MUG", 20)
    base = start(stack, step_seconds="1")

    def place() -> str:
        body = {"email": "t@example.com", "name": "T", "address": "1 Road", "lines": [{"sku": sku, "quantity": 1}]}
        status, placed = http_json("POST", f"{base}/api/orders", body)
        assert status == 201, placed
        return placed["id"]

    def delivered(order: str):
        return page.locator(f'[data-stage="delivered"] [data-order-id="{order}"]')

    page = browser.page(base, 1280, 900)
    log_in(page, then="/dashboard/")
    open_dashboard(page)
    orders = [place(), place()]
    for order in orders:
        expect(delivered(order)).to_have_count(1, timeout=60_000)
    board, scrubber = page.locator("#board"), page.locator("#scrubber")

    # back to before they were placed (the left end: 15 minutes ago): not on the board, which says it replays
    scrubber.fill("0")
    expect(page.locator("#tt-status")).to_have_attribute("data-state", "ready")
    expect(board).to_have_attribute("data-replaying", re.compile(r"^\d\d:\d\d:\d\d$"))
    expect(page.locator("#replay-badge")).to_contain_text("replaying")
    for order in orders:
        expect(page.locator(f'[data-order-id="{order}"]')).to_have_count(0)
    # live frames keep coming (a third order crosses the saga) but do not repaint the past board
    third = place()
    page.wait_for_function(
        "id => window.conveyorDashboard.state.cards.get(id)?.stage === 'delivered'", arg=third, timeout=60_000
    )
    expect(page.locator(f'[data-order-id="{third}"]')).to_have_count(0)

    # forward to the moment the first order's reservation arrived: each order in its stage at that moment
    log = EventLog.objects.using("dashboard").filter(kind=EventLog.Kind.EVENT, order_id__in=orders)

    def ms(t):  # the page's precision: JavaScript dates keep milliseconds
        return t.replace(microsecond=t.microsecond // 1000 * 1000)

    moves = sorted((ms(e.received_at), e.seq, e.order_id, stage_for(e.event_type)) for e in log)
    moment = next(at for at, _, order, stage in moves if order == orders[0] and stage == "reserved")
    expected: dict[str, str] = {}
    for at, _, order, stage in moves:
        if at <= moment and stage and should_move(expected.get(order), stage):
            expected[order] = stage
    since = datetime.fromisoformat(page.locator("#time-travel").get_attribute("data-since"))
    scrubber.fill(str(int((moment - since).total_seconds() * 1000)))
    assert expected[orders[0]] == "reserved"
    for order, stage in expected.items():
        expect(page.locator(f'[data-stage="{stage}"] [data-order-id="{order}"]')).to_have_count(1)
    expect(board.locator("[data-order-id]")).to_have_count(len(expected))  # and no other card
    shoot(page, "viewer-time-travel")

    # play forward at ×60 from the start: the window's end has both delivered
    page.get_by_role("button", name="×60").click()
    scrubber.fill("0")
    page.locator("#tt-play").click()
    for order in orders:
        expect(delivered(order)).to_have_count(1, timeout=30_000)

    # back to live: the current board, the third order included, and no replay mark
    page.get_by_role("button", name="Back to live").click()
    expect(board).not_to_have_attribute("data-replaying", re.compile(".*"))
    expect(page.locator("#replay-badge")).to_be_hidden()
    for order in [*orders, third]:
        expect(delivered(order)).to_have_count(1)

    # a link to a moment opens the board as it was then
    page.goto(f"/dashboard/?at={quote(moment.isoformat())}")
    expect(board).to_have_attribute("data-replaying", re.compile(r"^\d\d:\d\d:\d\d$"))
    for order, stage in expected.items():
        expect(page.locator(f'[data-stage="{stage}"] [data-order-id="{order}"]')).to_have_count(1)
    expect(board.locator("[data-order-id]")).to_have_count(len(expected))
