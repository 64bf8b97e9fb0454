"""A consumer whose committed offset was deleted by retention never skips ahead silently: it stops with an
error and a metric, or (KAFKA_OFFSET_RESET=earliest-with-marker) goes on from the earliest record and
dead-letters a marker with the number of offsets skipped. A partition the group never committed on still
starts from the earliest record. On the real broker, records deleted with the admin API's delete_records."""

from __future__ import annotations

import json
import threading

import pytest
from kafka import TopicPartition
from kafka.structs import OffsetAndMetadata
from prometheus_client import REGISTRY

from eventbus import kafka_io, schemas
from eventbus.lag import LagReader
from eventbus.offset_loss import OffsetsLost
from eventbus.runner import ConsumerRunner
from eventbus.service import service
from eventbus.tests.kafka_helpers import producer, read_topic
from tests.support import wait_for

pytestmark = [
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True, databases=["default", "inventory"]),
]


def _lose_offsets(group: str, topic: str) -> TopicPartition:
    """Ten records on partition 0, the group committed at 3, records below 7 deleted: offsets 3..6 are lost."""
    tp = TopicPartition(topic, 0)
    for i in range(10):
        producer().send(topic, partition=0, key=f"k{i}".encode(), value=b"not an event").get(timeout=30)
    consumer = kafka_io.make_consumer(group, "offset-loss-test")
    consumer.assign([tp])
    consumer.commit({tp: OffsetAndMetadata(3, "", -1)})
    consumer.close(autocommit=False)
    admin = kafka_io.make_admin()
    try:
        admin.delete_records({tp: 7})
    finally:
        admin.close()
    return tp


def _committed(group: str) -> dict:
    reader = LagReader()
    try:
        found = reader.admin.list_group_offsets([group])[group]
    finally:
        reader.close()
    return {tp.partition: meta.offset for tp, meta in found.items()}


def _counter(name: str, group: str, topic: str) -> float:
    return REGISTRY.get_sample_value(name, {"group": group, "topic": topic}) or 0.0


def test_a_lost_offset_stops_the_consumer_with_an_error_and_a_metric(stack, settings):
    settings.KAFKA_OFFSET_RESET = "fail"
    inventory = service("inventory")
    topic = schemas.topic_name("shop.orders")
    _lose_offsets(inventory.group, topic)
    before = _counter("conveyor_offsets_out_of_range_total", inventory.group, topic)

    runner, raised = ConsumerRunner(inventory, relay=False), []

    def run():
        try:
            runner.run()
        except Exception as exc:
            raised.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(60)
    if thread.is_alive():
        runner.stopping.set()
        thread.join(30)
        pytest.fail("the consumer went on past offsets it never read")
    assert len(raised) == 1 and isinstance(raised[0], OffsetsLost), raised
    assert "KAFKA_OFFSET_RESET=earliest-with-marker" in str(raised[0])
    assert f"{topic}[0] at 3 (the earliest left is 7)" in str(raised[0])
    assert _counter("conveyor_offsets_out_of_range_total", inventory.group, topic) == before + 1
    assert _committed(inventory.group).get(0) == 3  # nothing moved on


def test_with_the_setting_it_resets_to_the_earliest_and_dead_letters_a_marker(stack, settings):
    settings.KAFKA_OFFSET_RESET = "earliest-with-marker"
    inventory = service("inventory")
    topic = schemas.topic_name("shop.orders")
    _lose_offsets(inventory.group, topic)
    # partition 1 has never been committed on by this group: it starts from its earliest record, as before
    producer().send(topic, partition=1, key=b"new", value=b"not an event either").get(timeout=30)

    runner = ConsumerRunner(inventory, relay=False)
    thread = threading.Thread(target=runner.run, daemon=True)
    thread.start()
    try:
        wait_for(lambda: _committed(inventory.group).get(0) == 10, 60, "the group to read partition 0 from 7 to 10")
        wait_for(lambda: _committed(inventory.group).get(1) == 1, 30, "the group to read partition 1 from 0")
    finally:
        runner.stopping.set()
        thread.join(30)
    dead = read_topic(topic + ".dlt", 1 + 3 + 1)  # the marker and the three (poison) records 7..9 and one more
    markers = [r for r in dead if dict(r.headers).get("dlt_reason") == b"offsets-skipped"]
    assert len(markers) == 1, [dict(r.headers) for r in dead]
    headers = dict(markers[0].headers)
    assert headers["dlt_skipped"] == b"4" and headers["dlt_offset"] == b"3" and headers["dlt_partition"] == b"0"
    assert json.loads(markers[0].value) == {"skipped": 4, "from_offset": 3, "to_offset": 7, "group": inventory.group}
    assert _counter("conveyor_offsets_skipped_total", inventory.group, topic) >= 4
