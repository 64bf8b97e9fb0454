"""A consumer's thread relays what its batch committed right after the commit (Relay.sending_after), on the
real broker and the test database: no wake-up of the relay's thread, the rows marked sent by the next
batch's transaction (or by the relay's thread once they are old), never sent twice while the process
lives, and kept for the next try when that transaction rolls back."""

from __future__ import annotations

import pytest
from django.db import transaction
from kafka.structs import TopicPartition

from eventbus import kafka_io, schemas
from eventbus import relay as relay_module
from eventbus.outbox import publish_raw
from eventbus.relay import Relay
from eventbus.service import service
from eventbus.tests.kafka_helpers import read_topic

pytestmark = [
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True, databases=["default", "shop"]),
]


class Rollback(Exception):
    pass


def commit_rows(svc, topic: str, count: int) -> None:
    with transaction.atomic(using=svc.database):
        for i in range(count):
            publish_raw(svc.name, topic=topic, key=b"order-1", value=b'{"n": %d}' % i, headers={"ce_id": f"id-{i}"})


def on_topic(topic: str) -> int:
    """How many records the topic holds (the sum of its partitions' end offsets)."""
    consumer = kafka_io.make_consumer(None, "count")
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)]
        return sum(consumer.end_offsets(partitions).values())
    finally:
        consumer.close()


def unsent(svc) -> list[int]:
    rows = svc.outbox.objects.using(svc.database).filter(sent_at__isnull=True).order_by("position")
    return list(rows.values_list("position", flat=True))


@pytest.fixture
def shop(stack):  # `stack`: topics of this test's own, created
    svc = service("shop")
    relay = Relay(svc)
    yield svc, relay
    if relay.producer is not None:
        relay.producer.close(timeout=5)
    relay.release_lease()


def test_the_consumer_thread_sends_its_commits_and_the_next_batch_marks_them(shop, monkeypatch):
    svc, relay = shop
    monkeypatch.setattr(relay_module, "MARK_LATER_SECONDS", 60.0)  # the next batch comes first
    topic = schemas.topic_name("shop.orders")
    with relay.sending_after(svc):
        commit_rows(svc, topic, 3)  # a batch's transaction
    assert not relay.wake.is_set()  # the relay's thread was not woken: this thread sent them
    records = read_topic(topic, 3)
    assert [r.value for r in records] == [b'{"n": 0}', b'{"n": 1}', b'{"n": 2}']  # in publish order
    sent = unsent(svc)
    assert len(sent) == 3 and set(relay.unmarked["shop"]) == set(sent)  # on Kafka, not yet marked

    assert relay.relay_once(svc) == 0  # the relay's thread skips them: nothing is sent twice
    with pytest.raises(Rollback), transaction.atomic(using=svc.database):
        relay.mark_sent(svc)  # the next batch's transaction rolls back...
        raise Rollback
    assert unsent(svc) == sent and set(relay.unmarked["shop"]) == set(sent)  # ...so the marks wait

    with transaction.atomic(using=svc.database):
        relay.mark_sent(svc)  # the next batch's transaction
    assert unsent(svc) == [] and relay.unmarked["shop"] == {}
    stamps = set(svc.outbox.objects.using(svc.database).values_list("sent_at", flat=True))
    assert len(stamps) == 1 and None not in stamps  # sent_at is when the broker acknowledged them
    assert on_topic(topic) == 3


def test_rows_no_batch_marks_are_marked_by_the_relay_thread_once_old(shop, monkeypatch):
    svc, relay = shop
    topic = schemas.topic_name("shop.orders")
    monkeypatch.setattr(relay_module, "MARK_LATER_SECONDS", 0.0)
    with relay.sending_after(svc):
        commit_rows(svc, topic, 2)
    assert len(unsent(svc)) == 2
    commit_rows(svc, topic, 1)  # another process's commit (the web), found by the relay's poll
    assert relay.relay_once(svc) == 1  # sends the new row only, and marks all three
    assert unsent(svc) == [] and relay.unmarked["shop"] == {}
    read_topic(topic, 3)
    assert on_topic(topic) == 3


def test_a_batch_that_commits_nothing_to_the_outbox_sends_nothing(shop):
    svc, relay = shop
    topic = schemas.topic_name("shop.orders")
    commit_rows(svc, topic, 1)  # committed outside the block: the relay's thread's job
    with relay.sending_after(svc), transaction.atomic(using=svc.database):
        pass
    assert unsent(svc) != [] and relay.producer is None
