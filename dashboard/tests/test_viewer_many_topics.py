"""Browsing several topics at once against the real broker: messages merged by timestamp, each carrying
its topic; paging across the merged view; a time seek over every chosen topic; a search over all of them;
and the answers to what cannot work across topics."""

import re
import time
from datetime import UTC, datetime

import pytest

from eventbus.tests import kafka_helpers

from .test_viewer_pages import stream
from .viewer_support import placed

pytestmark = [pytest.mark.integration, pytest.mark.django_db(databases=["default", "dashboard"])]

MSG = re.compile(r'data-topic="([^"]+)" data-partition="(\d+)" data-offset="(\d+)"')
WHEN = re.compile(r'<time datetime="([^"]+)"')


def shown(response) -> list[tuple[str, int, int]]:
    return [(t, int(p), int(o)) for t, p, o in MSG.findall(response.content.decode())]


def moments(response) -> list[datetime]:
    return [datetime.fromisoformat(raw) for raw in WHEN.findall(response.content.decode())]


def stock_changed(n: int, sku: str = "MUG-001") -> None:
    for i in range(n):
        data = {"sku": sku, "on_hand": 10 + i, "reserved": 0, "available": 10 + i}
        kafka_helpers.send_event("conveyor.inventory.stock.changed.v1", "inventory", sku, data)


def link(html: str, rel_id: str) -> str | None:
    found = re.search(rf'href="\?([^"]+)" id="{rel_id}"', html)
    return found.group(1).replace("&amp;", "&") if found else None


def test_two_topics_merge_newest_first_and_page_both_ways(staff_client, topics):
    placed(3)
    stock_changed(2)
    placed(2)
    orders, stock = topics("shop.orders"), topics("inventory.stock")
    url = f"/dashboard/topics/{orders}/"
    first = staff_client.get(url, {"topic": stock, "limit": "2"})
    assert first.status_code == 200
    assert {t for t, _, _ in shown(first)} <= {orders, stock} and len(shown(first)) == 2
    html = first.content.decode()
    assert f'data-chosen-topic="{stock}"' in html and f'<option value="{stock}" selected>' in html

    seen, stamps, page = shown(first), moments(first), first
    while (older := link(page.content.decode(), "older")) is not None:
        assert f"topic={stock}" in older  # the shareable URL keeps the chosen topics
        page = staff_client.get(f"{url}?{older}")
        assert page.status_code == 200
        seen += shown(page)
        stamps += moments(page)
    assert len(seen) == 7 and len(set(seen)) == 7
    assert sum(1 for t, _, _ in seen if t == stock) == 2
    assert stamps == sorted(stamps, reverse=True)  # newest first across both topics, page after page

    oldest_page, back = shown(page), []
    while (newer := link(page.content.decode(), "newer")) is not None:
        page = staff_client.get(f"{url}?{newer}")
        back += shown(page)
    assert len(back) == len(set(back)) and set(back) == set(seen) - set(oldest_page)  # forwards to the newest


def test_a_time_seek_applies_to_every_chosen_topic_oldest_first(staff_client, topics):
    placed(2)
    stock_changed(1)
    cut = datetime.now(UTC)
    time.sleep(0.01)  # a record strictly after `cut` (clock resolution), not a wait for a condition
    later = placed(1)
    stock_changed(2)
    orders, stock = topics("shop.orders"), topics("inventory.stock")
    response = staff_client.get(f"/dashboard/topics/{orders}/", {"topic": stock, "time": cut.isoformat()})
    assert response.status_code == 200
    found = shown(response)
    assert len(found) == 3 and sum(1 for t, _, _ in found if t == stock) == 2
    assert later[0] in response.content.decode()
    assert moments(response) == sorted(moments(response))  # read forward from the time: oldest first


def test_partitions_apply_to_each_chosen_topic(staff_client, topics):
    placed(6)
    stock_changed(3)
    orders, stock = topics("shop.orders"), topics("inventory.stock")
    response = staff_client.get(f"/dashboard/topics/{orders}/", {"topic": stock, "partition": "0"})
    assert response.status_code == 200 and {p for _, p, _ in shown(response)} == {0}
    assert all((t, p) in {(orders, 0), (stock, 0)} for t, p, _ in shown(response))


def test_a_search_covers_every_chosen_topic_and_resumes_across_them(staff_client, topics):
    placed(3, sku="MUG-001")
    stock_changed(2, sku="MUG-001")
    placed(2, sku="LAMP")
    orders, stock = topics("shop.orders"), topics("inventory.stock")
    search = f"/dashboard/topics/{orders}/search"
    lines = stream(staff_client.get(search, {"topic": stock, "q": "mug-001"}))
    assert lines[0]["total"] == 7
    matches = [line for line in lines if line["kind"] == "match"]
    assert sorted(m["topic"] for m in matches) == sorted([orders] * 3 + [stock] * 2)
    assert all(f'data-topic="{m["topic"]}"' in m["html"] for m in matches)
    assert lines[-1]["reason"] == "end" and lines[-1]["scanned"] == 7

    part = stream(staff_client.get(search, {"topic": stock, "q": "mug-001", "seek": "oldest", "max_messages": "4"}))
    assert part[-1]["reason"] == "messages" and re.fullmatch(r"([\w.-]+:\d+:\d+,?)+", part[-1]["resume"])
    rest = stream(
        staff_client.get(search, {"topic": stock, "q": "mug-001", "cursor": part[-1]["resume"], "dir": "next"})
    )
    assert rest[-1]["reason"] == "end" and part[-1]["scanned"] + rest[-1]["scanned"] == 7
    both = [line for line in part + rest if line["kind"] == "match"]
    assert len(both) == 5 and len({(m["topic"], m["partition"], m["offset"]) for m in both}) == 5


@pytest.mark.parametrize(
    ("extra", "query", "status", "says"),
    [
        (["inventory.stock"], {"offset": "0"}, 400, "several topics are chosen"),
        (["no.such.topic"], {}, 400, "There is no topic named &#x27;no.such.topic&#x27;"),
        ([f"t{i}" for i in range(25)], {}, 400, "at most 20 topics"),
        (["bad name!"], {}, 400, "is not a topic name"),
        (["inventory.stock"], {"partition": "9"}, 400, "no chosen topic has it"),
        (["inventory.stock"], {"cursor": "nope:0:1"}, 400, "cursor: it names partitions not chosen"),
        (["inventory.stock"], {"seek": "time", "time": "yesterday"}, 400, "is not an RFC 3339 time"),
    ],
)
def test_what_cannot_work_across_topics_is_refused(staff_client, topics, extra, query, status, says):
    placed(1)
    orders = topics("shop.orders")
    names = [topics(t) if t == "inventory.stock" else t for t in extra]
    response = staff_client.get(f"/dashboard/topics/{orders}/", {"topic": names, **query})
    html = response.content.decode()
    assert response.status_code == status and 'id="viewer-error"' in html
    assert says in html, html.split('id="viewer-error"')[1][:300]
    if "inventory.stock" in extra:  # the picker keeps the choice, so the user mends the query, not starts over
        assert f'<option value="{names[0]}" selected>' in html
    search = staff_client.get(f"/dashboard/topics/{orders}/search", {"topic": names, "q": "x", **query})
    assert search.status_code in (400, 404) and search.json()["error"]


def test_one_topic_urls_and_cursors_keep_their_form():
    from django.http import QueryDict

    from dashboard.viewer.params import parse_query
    from dashboard.viewer.selectors import cursor_text

    assert cursor_text({("a", 0): 4, ("a", 2): 9}) == "0:4,2:9"
    assert cursor_text({("a", 0): 4, ("b.c", 1): 9}) == "a:0:4,b.c:1:9"
    query = parse_query(QueryDict("topic=b.c&topic=d,e&cursor=a:0:4,b.c:1:9"))
    assert query.topics == ("b.c", "d", "e")
    assert query.cursor == {("a", 0): 4, ("b.c", 1): 9}
    assert parse_query(QueryDict("cursor=0:4")).cursor == {(None, 0): 4}
