"""The event viewer's topics and messages pages against the real broker: counts from offsets, seeking,
paging, searching (streamed), and the answers to bad input."""

import json
import re
import time
from datetime import UTC, datetime, timedelta

import pytest
from asgiref.sync import async_to_sync
from django.contrib.auth.models import User
from django.test import Client

from eventbus import browse

from .viewer_support import commit_group, placed, topic_row

pytestmark = [pytest.mark.integration, pytest.mark.django_db(databases=["default", "dashboard"])]

MSG = re.compile(r'data-partition="(\d+)" data-offset="(\d+)"')


def shown(response) -> list[tuple[int, int]]:
    return [(int(p), int(o)) for p, o in MSG.findall(response.content.decode())]


async def _drain(chunks) -> bytes:
    return b"".join([chunk async for chunk in chunks])


def stream(response) -> list[dict]:
    """The NDJSON lines of a streamed search, read to its end."""
    return [json.loads(line) for line in async_to_sync(_drain)(response.streaming_content).splitlines() if line]


def test_topics_page_lists_every_topic_with_counts_partitions_groups_and_types(staff_client, topics):
    placed(4)
    orders = topics("shop.orders")
    commit_group(f"{orders}.readers", orders, 4)
    response = staff_client.get("/dashboard/topics/")
    assert response.status_code == 200
    html = response.content.decode()
    row = topic_row(html, orders)
    assert re.search(r"data-messages>4<", row)
    assert "conveyor.shop.order.placed.v1" in row and "conveyor.shop.order.cancel_requested.v1" in row
    assert row.count('<tr data-partition="') == 3  # leader, replicas and ISR per partition
    assert "delete, 7 d" in row and "retention.ms=604800000" in row
    assert f"{orders}.readers" in row  # the consumer groups reading it
    assert f'data-topic="{orders}.dlt"' in html  # dead-letter topics are listed
    assert 'data-topic="__consumer_offsets"' not in html  # internal ones only on request
    assert 'data-topic="__consumer_offsets"' in staff_client.get("/dashboard/topics/?internal=1").content.decode()

    counts = staff_client.get("/dashboard/api/topics/counts").json()["topics"]
    assert counts[orders]["messages"] == 4
    placed(1)
    assert staff_client.get("/dashboard/api/topics/counts").json()["topics"][orders]["messages"] == 5


def test_newest_page_then_older_pages_cover_every_message_once(staff_client, topics):
    placed(7)
    orders = topics("shop.orders")
    first = staff_client.get(f"/dashboard/topics/{orders}/?limit=3")
    assert first.status_code == 200
    seen = shown(first)
    assert len(seen) == 3
    html = first.content.decode()
    assert "ce_type" in html and "conveyor.shop.order.placed.v1" in html and 'data-validity="valid"' in html
    assert "/dashboard/?order=" in html and "Copy as JSON" in html
    while (older := re.search(r'href="\?([^"]+)" id="older"', html)) is not None:
        page = staff_client.get(f"/dashboard/topics/{orders}/?" + older.group(1).replace("&amp;", "&"))
        html = page.content.decode()
        seen += shown(page)
    assert len(seen) == 7 and len(set(seen)) == 7


def test_seek_by_partition_offset_and_time(staff_client, topics):
    placed(9)
    orders = topics("shop.orders")
    info = browse.topic(orders)
    busiest = max(info.partitions, key=lambda p: p.messages)
    response = staff_client.get(f"/dashboard/topics/{orders}/?partition={busiest.partition}&offset=1")
    assert shown(response)[0] == (busiest.partition, 1)
    assert {p for p, _ in shown(response)} == {busiest.partition}
    assert staff_client.get(f"/dashboard/topics/{orders}/?seek=oldest&partition={busiest.partition}").status_code == 200

    cut = datetime.now(UTC)
    time.sleep(0.01)  # a record strictly after `cut` (clock resolution), not a wait for a condition
    later = placed(2)
    response = staff_client.get(f"/dashboard/topics/{orders}/", {"time": cut.isoformat()})
    assert response.status_code == 200
    html = response.content.decode()
    assert len(shown(response)) == 2 and all(order in html for order in later)


def test_search_streams_matches_and_progress_within_limits(staff_client, topics):
    placed(5, sku="MUG")
    wanted = placed(2, sku="RARE-LAMP")
    orders = topics("shop.orders")
    response = staff_client.get(f"/dashboard/topics/{orders}/search", {"q": "rare-lamp"})
    assert response.status_code == 200 and response["Content-Type"] == "application/x-ndjson"
    lines = stream(response)
    assert lines[0]["kind"] == "start" and lines[0]["total"] == 7
    matches = [line for line in lines if line["kind"] == "match"]
    assert len(matches) == 2 and all(any(o in m["html"] for o in wanted) for m in matches)
    assert lines[-1] == {**lines[-1], "kind": "done", "scanned": 7, "reason": "end"}

    by_field = stream(staff_client.get(f"/dashboard/topics/{orders}/search", {"field": "lines.0.sku=RARE-LAMP"}))
    assert sum(1 for line in by_field if line["kind"] == "match") == 2
    by_header = stream(staff_client.get(f"/dashboard/topics/{orders}/search", {"header": f"ce_subject:{wanted[0]}"}))
    assert sum(1 for line in by_header if line["kind"] == "match") == 1
    limited = stream(
        staff_client.get(f"/dashboard/topics/{orders}/search", {"q": "lamp", "max_messages": "3", "seek": "oldest"})
    )
    assert limited[-1]["reason"] == "messages" and limited[-1]["scanned"] == 3 and limited[-1]["resume"]
    # from newest (the default) a search covers the newest max_messages messages, however many partitions
    newest = stream(staff_client.get(f"/dashboard/topics/{orders}/search", {"q": "lamp", "max_messages": "2"}))
    assert newest[0]["total"] == 2 and newest[-1]["scanned"] == 2 and newest[-1]["reason"] == "end"
    # the page itself renders the search (its script streams the matches in)
    page = staff_client.get(f"/dashboard/topics/{orders}/", {"q": "rare-lamp"})
    assert page.status_code == 200 and 'id="search"' in page.content.decode()


def test_saved_filters_are_per_user(staff_client, topics):
    orders = topics("shop.orders")
    response = staff_client.post(f"/dashboard/topics/{orders}/filters", {"name": "lamps", "query": "q=lamp"})
    assert response.status_code == 302 and response["Location"].endswith("?q=lamp")
    assert "lamps</a>" in staff_client.get(f"/dashboard/topics/{orders}/").content.decode()
    again = staff_client.post(f"/dashboard/topics/{orders}/filters", {"name": "lamps", "query": "q=x"})
    assert again.status_code == 400 and "already have a filter named" in again.content.decode()
    other = Client()
    other.force_login(User.objects.create_user("other", password="pw", is_staff=True))
    assert "lamps</a>" not in other.get(f"/dashboard/topics/{orders}/").content.decode()


@pytest.mark.parametrize(
    ("query", "status", "says"),
    [
        ({"offset": "999999"}, 400, "past the end of every chosen partition"),
        ({"offset": "-1"}, 400, "offset"),
        ({"time": "2001-01-01T00:00:00Z"}, 400, "before the oldest message kept"),
        ({"time": "yesterday"}, 400, "RFC 3339"),
        ({"partition": "7"}, 400, "has partitions 0 to 2"),
        ({"field": "no-equals-sign"}, 400, "path=value"),
        ({"header": "ce_type"}, 400, "name:value"),
        ({"limit": "100000"}, 400, "per page"),
        ({"max_seconds": "100000"}, 400, "search for 1 to 120 seconds"),
    ],
)
def test_bad_input_gets_a_clear_message(staff_client, topics, query, status, says):
    placed(2)
    orders = topics("shop.orders")
    response = staff_client.get(f"/dashboard/topics/{orders}/", query)
    assert response.status_code == status
    assert says.replace("'", "&#x27;") in response.content.decode() or says in response.content.decode()
    assert 'id="viewer-error"' in response.content.decode()


def test_future_time_and_bad_search_filters(staff_client, topics):
    placed(1)
    orders = topics("shop.orders")
    future = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    after = staff_client.get(f"/dashboard/topics/{orders}/", {"time": future})
    assert after.status_code == 400 and "no message at or after" in after.content.decode()
    bad = staff_client.get(f"/dashboard/topics/{orders}/search", {"field": "=x"})
    assert bad.status_code == 400 and "path=value" in bad.json()["error"]
    empty = staff_client.get(f"/dashboard/topics/{orders}/search")
    assert empty.status_code == 400 and "give something to search for" in empty.json()["error"]


def test_unknown_topic_is_a_404_that_says_so(staff_client, topics):
    response = staff_client.get("/dashboard/topics/no.such.topic/")
    assert response.status_code == 404
    assert "There is no topic named" in response.content.decode()
    assert staff_client.get("/dashboard/topics/no.such.topic/search", {"q": "x"}).status_code == 404


@pytest.mark.parametrize("is_staff", [None, False])
def test_the_viewer_is_for_staff_only(topics, is_staff):
    client = Client()
    if is_staff is not None:
        client.force_login(User.objects.create_user("customer", password="pw", is_staff=False))
    orders = topics("shop.orders")
    for url in (
        "/dashboard/topics/",
        f"/dashboard/topics/{orders}/",
        f"/dashboard/topics/{orders}/search?q=a",
        "/dashboard/groups/",
        "/dashboard/schemas/",
        "/dashboard/api/topics/counts",
    ):
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith("/admin/login/"), url


def test_closing_a_search_response_stops_its_scan(staff_client, topics):
    """What the page's Cancel does: the browser aborts the stream; the scan on the server ends with it and
    gives back its slot (one of MAX_SCANS), so cancelled searches never pile up."""
    placed(60)
    orders = topics("shop.orders")
    response = staff_client.get(f"/dashboard/topics/{orders}/search", {"q": "test@example.com", "max_matches": "1000"})

    async def first_matches_then_close():
        chunks = response.streaming_content
        start = await chunks.__anext__()
        matches = await chunks.__anext__()  # the first chunk of matches: the scan is running
        await chunks.aclose()
        return start, matches

    start, matches = async_to_sync(first_matches_then_close)()
    assert b'"kind":"start"' in start and b'"kind":"match"' in matches
    deadline = time.monotonic() + 10
    while browse._scan_slots._value < browse.MAX_SCANS and time.monotonic() < deadline:
        time.sleep(0.05)  # polling a condition, with a deadline
    assert browse._scan_slots._value == browse.MAX_SCANS, "the scan still holds its slot after the stream closed"


def test_pages_read_the_same_window_again_on_a_pooled_consumer(topics):
    placed(6)
    orders = topics("shop.orders")
    windows = {p.partition: (p.start, p.end) for p in browse.topic(orders).partitions}
    first = browse.read(orders, windows, timeout=10)
    assert len(first) == 6
    assert browse.read(orders, windows, timeout=10) == first  # the consumer back from the pool reads it again


def test_an_unreachable_broker_gets_a_clear_503(staff_client, settings):
    from tests.support import free_port

    browse.close()
    settings.KAFKA = {**settings.KAFKA, "bootstrap_servers": f"127.0.0.1:{free_port()}"}  # nothing listens
    try:
        response = staff_client.get("/dashboard/topics/")
        assert response.status_code == 503 and "Check that the broker runs" in response.content.decode()
        assert staff_client.get("/dashboard/api/topics/counts").status_code == 503
    finally:
        browse.close()


def test_a_message_without_an_order_has_no_journey_link_and_an_invalid_one_says_why(staff_client, topics):
    from eventbus.tests import kafka_helpers

    kafka_helpers.send_event(
        "conveyor.inventory.stock.changed.v1",
        "inventory",
        "MUG-001",
        {"sku": "MUG-001", "on_hand": 3, "reserved": 0, "available": 3},
    )
    kafka_helpers.send_raw(
        "inventory.stock", b'{"sku": 5}', [("ce_type", b"conveyor.inventory.stock.changed.v1")], b"X"
    )
    html = staff_client.get(f"/dashboard/topics/{topics('inventory.stock')}/").content.decode()
    assert len(shown_html := MSG.findall(html)) == 2, shown_html
    assert "/dashboard/?order=" not in html
    assert 'data-validity="valid"' in html and 'data-validity="invalid"' in html
    assert "conveyor.inventory.stock.changed.v1: data must contain" in html


def test_a_newest_search_shares_its_budget_among_partitions():
    from dashboard.viewer.selectors import newest_share

    parts = {
        0: browse.PartitionInfo(0, 1, (1,), (1,), 0, 2),
        1: browse.PartitionInfo(1, 1, (1,), (1,), 10, 110),
        2: browse.PartitionInfo(2, 1, (1,), (1,), 0, 50),
    }
    assert newest_share(parts, 30) == {0: 2, 2: 14, 1: 14}
    assert newest_share(parts, 1000) == {0: 2, 2: 50, 1: 100}
