"""run_consumer outlives a retriable error raised out of kafka-python's poll(), and still stops on any
other error. kafka-python 3.0 raised a refused connection out of poll() while a group coordinator moved to
another node (tests/faults/test_cluster.py, which kills the coordinator's node; two of three consumers
died of it in one run). The consumer here is a real one on the real broker whose next poll raises that
error, as kafka-python did."""

from __future__ import annotations

import logging
import uuid

import pytest
from kafka import KafkaConsumer
from kafka.errors import IllegalStateError, KafkaConnectionError

from eventbus import kafka_io, runner
from eventbus.runner import ConsumerRunner
from eventbus.service import service


class _NextPollRaises(KafkaConsumer):
    def __init__(self, error: Exception, **options):
        super().__init__(**options)
        self.error = error

    def poll(self, *args, **kwargs):
        if self.error is not None:
            error, self.error = self.error, None
            raise error
        return super().poll(*args, **kwargs)


@pytest.fixture
def shop_runner(kafka_bootstrap, monkeypatch):
    monkeypatch.setattr(runner, "POLL_RETRY_SECONDS", 0.1)
    consumers = []

    def make(error: Exception) -> ConsumerRunner:
        consumer = _NextPollRaises(error, **kafka_io.client_options(), group_id=f"poll-test-{uuid.uuid4().hex}")
        consumer.subscribe(service("shop").topics())
        consumers.append(consumer)
        shop = ConsumerRunner(service("shop"), relay=False)
        shop.consumer = consumer
        return shop

    yield make
    for consumer in consumers:
        consumer.close(autocommit=False)


def test_a_retriable_poll_error_is_an_empty_poll_with_a_warning_and_the_next_poll_runs(shop_runner, caplog):
    shop = shop_runner(KafkaConnectionError("111 ECONNREFUSED"))
    with caplog.at_level(logging.WARNING, logger="eventbus.consumer"):
        assert shop._poll(50) == {}
    assert "shop: a poll failed (KafkaConnectionError" in caplog.text
    assert "check that the brokers at" in caplog.text
    assert shop.consumer.error is None
    assert isinstance(shop._poll(50), dict)  # the real poll, on the real broker


def test_any_other_kafka_error_still_stops_the_consumer(shop_runner):
    shop = shop_runner(IllegalStateError("not retriable"))
    with pytest.raises(IllegalStateError):
        shop._poll(50)
