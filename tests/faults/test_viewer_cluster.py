"""The event viewer against a three-node KRaft cluster (replication 3, min.insync.replicas 2): the topics
page shows three replicas, three in-sync replicas and a leader per partition; browsing, a time seek and a
search across topics return messages; a group's lag shows; an empty group's offsets can be reset."""

from __future__ import annotations

import itertools
import re
import time
from datetime import UTC, datetime

import pytest

from dashboard.tests.test_viewer_pages import stream
from dashboard.tests.viewer_support import staff_client_with
from eventbus import browse, kafka_io, schemas
from eventbus.tests import kafka_helpers

pytestmark = [pytest.mark.integration, pytest.mark.django_db(databases=["default", "dashboard"])]

_runs = itertools.count(1)
MSG = re.compile(r'data-topic="([^"]+)" data-partition="(\d+)" data-offset="(\d+)"')


@pytest.fixture
def on_cluster(kafka_cluster, settings):
    """This process's viewer (its admin client and pooled consumers) and test producer on the cluster."""
    browse.close()
    kafka_helpers.close()
    settings.KAFKA = {**settings.KAFKA, "bootstrap_servers": kafka_cluster.bootstrap_servers}
    settings.KAFKA_TOPIC_PREFIX = f"viewer3n{next(_runs)}."
    kafka_io.ensure_topics(partitions=3)
    yield kafka_cluster
    browse.close()
    kafka_helpers.close()


@pytest.fixture
def resetter():
    return staff_client_with("ops3", "reset_offsets")


def test_the_viewer_on_three_nodes(on_cluster, resetter):
    started = time.monotonic()
    orders, stock = schemas.topic_name("shop.orders"), schemas.topic_name("inventory.stock")
    first = [kafka_helpers.send_placed("MUG-001") for _ in range(4)]
    cut = datetime.now(UTC)
    time.sleep(0.01)  # a record strictly after `cut` (clock resolution), not a wait for a condition
    later = [kafka_helpers.send_placed("MUG-001") for _ in range(2)]
    data = {"sku": "MUG-001", "on_hand": 3, "reserved": 0, "available": 3}
    kafka_helpers.send_event("conveyor.inventory.stock.changed.v1", "inventory", "MUG-001", data)

    # topics: three replicas, all in sync, and a leader among them, for every partition
    page = resetter.get("/dashboard/topics/", {"name": schemas.topic_name("")})
    assert page.status_code == 200
    html = page.content.decode()
    row = html.split(f'<tr data-topic="{orders}"', 1)[1].split("<tr data-topic=", 1)[0]
    assert re.search(r"data-messages>6<", row), row[:400]
    info = browse.topic(orders)
    brokers = {node.node_id for node in on_cluster.nodes}
    assert len(info.partitions) == 3
    for p in info.partitions:
        assert set(p.replicas) == brokers and set(p.isr) == brokers and p.leader in brokers, p
        shown = row.split(f'<tr data-partition="{p.partition}">', 1)[1].split("</tr>", 1)[0]
        cells = re.findall(r"<td[^>]*>([^<]*)", shown)
        assert cells[1] == str(p.leader), cells  # # | leader | replicas | in sync | …
        assert sorted(map(int, cells[2].split(", "))) == sorted(brokers), cells
        assert sorted(map(int, cells[3].split(", "))) == sorted(brokers), cells
    assert "under-replicated" not in row

    # browsing (newest), a time seek and a search, over one topic and over two
    newest = resetter.get(f"/dashboard/topics/{orders}/")
    assert newest.status_code == 200 and len(MSG.findall(newest.content.decode())) == 6
    since = resetter.get(f"/dashboard/topics/{orders}/", {"time": cut.isoformat(), "topic": stock})
    assert since.status_code == 200
    found = MSG.findall(since.content.decode())
    assert len(found) == 3 and {t for t, _, _ in found} == {orders, stock}
    assert all(order in since.content.decode() for order in later)
    search = resetter.get(f"/dashboard/topics/{orders}/search", {"q": first[0], "topic": stock})
    lines = stream(search)
    matches = [line for line in lines if line["kind"] == "match"]
    assert len(matches) == 1 and matches[0]["topic"] == orders and lines[-1]["scanned"] == 7

    # a group's lag, then a reset of the (empty) group to the earliest offsets
    group = f"{orders}.audit"
    consumer = kafka_io.make_consumer(group, "viewer-3n")
    consumer.subscribe([orders])
    got, deadline = 0, time.monotonic() + 30
    while got < 4 and time.monotonic() < deadline:
        got += sum(len(b) for b in consumer.poll(timeout_ms=500, max_records=4 - got).values())
    consumer.commit()
    consumer.close()
    assert got == 4
    groups = resetter.get("/dashboard/groups/", {"name": group}).content.decode()
    assert re.search(r"data-lag>2<", groups.split(f'data-group="{group}"', 1)[1]), "lag 2 not shown"
    done = resetter.post(f"/dashboard/groups/{group}/reset", {"strategy": "earliest", "action": "confirm"})
    assert done.status_code == 200 and 'id="reset-done"' in done.content.decode()
    assert sum(browse.group(group).committed.values()) == 0
    assert time.monotonic() - started < 60
