"""run_consumer knows when its member is in the middle of a join, so it never waits outside poll() then.

kafka-python 3.0 takes a JoinGroup/SyncGroup answer only inside poll(): one that arrives between polls is
dropped, and the next poll joins again, which rebalances every member of the group once more. The
consumers here are real ones on the real broker: the broker holds the second member's JoinGroup until the
first member joins again, which it does only inside its own poll()."""

from __future__ import annotations

import uuid

import pytest

from eventbus import kafka_io
from eventbus.runner import ConsumerRunner
from eventbus.service import service
from tests.support import wait_for


@pytest.fixture
def group_of_one(kafka_bootstrap):
    """A group whose one member holds every partition of the shop's topics and is then left alone."""
    group, topics = f"join-test-{uuid.uuid4().hex}", service("shop").topics()
    first = kafka_io.make_consumer(group, "first")
    first.subscribe(topics)
    wait_for(lambda: first.poll(timeout_ms=100) is not None and first.assignment(), 30, "the first member's join")
    yield group, first
    first.close(autocommit=False)


def test_a_member_waiting_for_its_join_answer_is_joining_until_a_poll_takes_it(group_of_one):
    group, first = group_of_one
    second = ConsumerRunner(service("shop"), relay=False)
    second.consumer = kafka_io.make_consumer(group, "second")
    try:
        assert not second._joining()  # not subscribed yet: no JoinGroup sent
        second.consumer.subscribe(service("shop").topics())
        wait_for(lambda: second.consumer.poll(timeout_ms=20) is not None and second._joining(), 15, "a join sent")
        for _ in range(5):  # the broker keeps it waiting: the first member has not polled since
            assert second.consumer.poll(timeout_ms=20) == {}
            assert second._joining()

        def both_joined() -> bool:
            first.poll(timeout_ms=20)
            second.consumer.poll(timeout_ms=20)
            return not second._joining()

        wait_for(both_joined, 30, "both members to finish the rebalance")
        assert first.assignment() or second.consumer.assignment()
    finally:
        second.consumer.close(autocommit=False)
