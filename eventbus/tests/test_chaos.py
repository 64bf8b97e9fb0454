"""Chaos switches through their control channel (a real Redis) and a consumer that obeys them: a `fail`
switch dead-letters exactly the next N events of its type, shared by every copy; a `pause` switch stops a
real consumer on the real broker without leaving its group; every switch ends itself; Redis away means no
switch, never a stopped consumer."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import uuid

import pytest
from django.test import override_settings

from eventbus import chaos, envelope, kafka_io, schemas
from eventbus.dispatch import Dispatcher, Record
from eventbus.runner import ConsumerRunner
from eventbus.service import service
from eventbus.tests.test_dispatch import CHANGED, RELEASED, Calls, inventory_service, record
from tests.support import free_port, wait_for


@pytest.fixture
def prefix(redis_url, settings):
    """A key prefix of the test's own, so that switches never leak between tests."""
    settings.KAFKA_TOPIC_PREFIX = f"chaos-{uuid.uuid4().hex[:8]}."
    return settings.KAFKA_TOPIC_PREFIX


def switch(kind: str, seconds: float = 60, **params) -> chaos.Switch:
    return chaos.Switch(service="inventory", kind=kind, until=time.time() + seconds, by="ada", **params)


def failing(count: int) -> chaos.Control:
    """Inventory's control, having read a switch that fails the next `count` stock-changed events."""
    chaos.turn_on(switch("fail", event_type=CHANGED, count=count))
    control = chaos.Control("inventory")
    control.refresh()
    return control


def test_a_switch_is_on_until_turned_off(prefix):
    assert chaos.switches(["inventory"]) == []
    chaos.turn_on(switch("pause"))
    chaos.turn_on(switch("slow", delay_ms=250))
    assert sorted((s.kind, s.delay_ms, s.by) for s in chaos.switches(["inventory", "shop"])) == [
        ("pause", 0, "ada"),
        ("slow", 250, "ada"),
    ]
    assert chaos.turn_off(service="inventory", kind="pause") is True
    assert chaos.turn_off(service="inventory", kind="pause") is False
    assert [s.kind for s in chaos.switches(["inventory"])] == ["slow"]


def test_a_switch_ends_itself_when_its_time_is_up(prefix):
    chaos.turn_on(switch("fail", seconds=0.5, event_type=CHANGED, count=3))
    assert [s.left for s in chaos.switches(["inventory"])] == [3]
    wait_for(lambda: chaos.switches(["inventory"]) == [], 10, "the switch to end itself")


@pytest.mark.django_db(databases=["default", "inventory"])
def test_a_fail_switch_dooms_exactly_the_next_n_events_of_its_type_and_every_retry_of_them(prefix):
    calls = Calls()
    result = Dispatcher(inventory_service({CHANGED: calls.changed, RELEASED: calls.released}), chaos=failing(2)).handle(
        [record(0, sku="A"), record(1, RELEASED), record(2, sku="B"), record(3, sku="C")]
    )
    assert [(d.record.offset, d.reason) for d in result.dead] == [(0, "handler-error"), (2, "handler-error")]
    assert all("chaos switch: the next 2 " + CHANGED in d.error for d in result.dead)
    assert [subjects for name, subjects in calls.log if name == "changed"] == [["C"]]
    assert result.handled == 2  # the released event and C
    [fail] = chaos.switches(["inventory"])
    assert fail.left == 0 and fail.describe() == f"failing the next 0 of 2 {CHANGED}"


def test_the_count_is_shared_by_every_copy_of_the_service(prefix):
    chaos.turn_on(switch("fail", event_type=CHANGED, count=3))
    copies = [chaos.Control("inventory"), chaos.Control("inventory")]
    doomed = 0
    for i in range(10):
        control = copies[i % 2]
        control.refresh()
        try:
            control.check([envelope_of(CHANGED)])
        except chaos.ChaosFailure:
            doomed += 1
    assert doomed == 3


def test_without_a_switch_nothing_fails_and_no_redis_call_is_made(prefix):
    control = chaos.Control("inventory")
    control.refresh()
    control._client = None  # a call now would fail with AttributeError
    control.check([envelope_of(CHANGED)] * 5)
    assert control.delay_seconds(100) == 0.0 and not control.paused


def test_slow_waits_per_event_but_never_past_the_switch_s_end(prefix):
    chaos.turn_on(switch("slow", seconds=5, delay_ms=300))
    control = chaos.Control("inventory")
    control.refresh()
    assert control.delay_seconds(2) == pytest.approx(0.6)
    assert 4 < control.delay_seconds(1000) <= 5


def test_a_key_that_is_not_a_switch_is_ignored_not_obeyed_and_not_fatal(prefix):
    client = chaos._client()
    client.set(chaos._key("inventory", "pause"), b"not json", ex=60)
    client.set(chaos._key("inventory", "slow"), b'{"kind": "slow", "until": 9e12, "speed": "warp"}', ex=60)
    control = chaos.Control("inventory")
    control.refresh()
    assert control.on == {} and chaos.switches(["inventory"]) == []


def test_redis_away_means_no_switch_said_once_never_an_error(prefix, settings, caplog):
    chaos.turn_on(switch("pause"))
    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"
    control = chaos.Control("inventory")
    with caplog.at_level(logging.WARNING, logger="eventbus.chaos"):
        control.refresh()
        control._read_at = 0
        control.refresh()
    assert not control.paused
    assert caplog.text.count("cannot read the chaos switches") == 1
    assert "obeying none until Redis at REDIS_URL answers" in caplog.text


def envelope_of(event_type: str) -> envelope.Envelope:
    message = envelope.encode(
        event_type=event_type,
        source_app="inventory",
        subject="MUG",
        data={"sku": "MUG", "on_hand": 5, "reserved": 0, "available": 5},
    )
    headers = [(k, v.encode()) for k, v in message.headers.items()]
    return envelope.decode(
        topic=schemas.topic_name(message.topic),
        partition=0,
        offset=0,
        key=message.key,
        value=message.value,
        headers=headers,
    )


@contextlib.contextmanager
def shop_consumer(stopping: threading.Event | None = None):
    """A real shop consumer with chaos on, running in a thread on the real broker until the block ends."""
    with override_settings(CHAOS_ENABLED=True):
        kafka_io.ensure_topics()
        shop = ConsumerRunner(service("shop"), relay=False)
    if stopping is not None:
        shop.stopping = stopping
    thread = threading.Thread(target=shop.run, daemon=True)
    thread.start()
    try:
        wait_for(lambda: shop.consumer is not None and shop.listener.assigned, 60, "the shop consumer's partitions")
        yield shop
    finally:
        shop.stopping.set()
        thread.join(30)


def send_garbage(count: int) -> None:
    """Records the shop consumer reads (and dead-letters), all to one partition."""
    producer = kafka_io.make_producer("chaos-test")
    for _ in range(count):
        producer.send(service("shop").topics()[0], key=b"same-partition", value=b"not an event")
    producer.flush(30)
    producer.close()


@pytest.mark.django_db(transaction=True, databases=["default", "shop"])
def test_a_paused_consumer_keeps_its_partitions_and_handles_nothing_until_resumed(prefix, kafka_bootstrap):
    """While paused it keeps polling (so it stays in its group) and reads nothing; turned off, it reads
    what waited."""
    with shop_consumer() as shop:
        polls = []
        poll = shop._poll
        shop._poll = lambda timeout_ms: polls.append(1) or poll(timeout_ms)
        chaos.turn_on(chaos.Switch(service="shop", kind="pause", until=time.time() + 60, by="ada"))
        wait_for(lambda: shop.consumer.paused() == shop.consumer.assignment(), 10, "every partition paused")
        send_garbage(1)
        polls.clear()
        wait_for(lambda: len(polls) >= 10, 30, "ten polls while paused")
        assert shop._next_offsets == {}, "a paused consumer read a record"
        chaos.turn_off(service="shop", kind="pause")
        wait_for(lambda: shop._next_offsets, 30, "the record that waited to be read")
        assert shop.consumer.paused() == set()


@pytest.mark.django_db(databases=["default", "inventory"])
def test_a_dead_letter_replayed_once_the_count_is_spent_is_handled(prefix):
    calls = Calls()
    dispatcher = Dispatcher(inventory_service({CHANGED: calls.changed}), chaos=failing(1))
    doomed = record(0, sku="A")
    assert [d.record.offset for d in dispatcher.handle([doomed]).dead] == [0]
    replayed = Record(doomed.topic, 0, 7, doomed.key, doomed.value, doomed.headers)  # same event, new offset
    result = dispatcher.handle([replayed])
    assert (result.handled, result.dead) == (1, [])
    assert calls.log == [("changed", ["A"])]


class _Waits(threading.Event):
    """The runner's stop event, noting how long each wait was asked to last."""

    def __init__(self):
        super().__init__()
        self.asked: list[float] = []

    def wait(self, timeout=None):
        self.asked.append(timeout)
        return super().wait(timeout)


@pytest.mark.django_db(transaction=True, databases=["default", "shop"])
def test_a_slowed_consumer_waits_after_each_batch_for_its_events(prefix, kafka_bootstrap):
    with shop_consumer(stopping=_Waits()) as shop:
        chaos.turn_on(chaos.Switch(service="shop", kind="slow", delay_ms=700, until=time.time() + 60, by="ada"))
        wait_for(lambda: "slow" in shop.chaos.on, 10, "the consumer to read the switch")
        send_garbage(2)
        wait_for(lambda: shop._next_offsets, 30, "the records to be read")
        per_batch = {0.7, 1.4}  # 0.7 s per event, the two in one batch or in two
        waited = lambda: [t for t in shop.stopping.asked if t and any(abs(t - w) < 0.05 for w in per_batch)]  # noqa: E731
        wait_for(waited, 10, "a wait of 0.7 s per event")
