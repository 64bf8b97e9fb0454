"""Relay wake-ups across processes (eventbus/wakeup.py), through the real Redis: a commit in a process
without a relay reaches the relay's listener, and the commit itself never waits for Redis."""

from __future__ import annotations

import threading

import pytest

from eventbus import wakeup
from tests.support import wait_for


@pytest.fixture
def listening(redis_url, monkeypatch):
    # This session's Redis, whatever an earlier test left in the process's client or its quiet period.
    monkeypatch.setattr(wakeup, "_client", None)
    monkeypatch.setattr(wakeup, "_quiet_until", 0.0)
    flag, stopping = threading.Event(), threading.Event()
    thread = wakeup.listen("shop", flag, stopping)
    # The listener subscribes in its own thread: wake it until it has, so the test starts subscribed.
    wait_for(lambda: (wakeup.notify("shop"), flag.wait(0.1))[1], timeout=10, message="the listener to subscribe")
    flag.clear()
    yield flag
    stopping.set()
    thread.join(5)


def test_a_notify_wakes_the_services_listener(listening):
    wakeup.notify("shop")
    assert listening.wait(5), "the relay's listener was not woken within 5 s"


def test_a_burst_of_commits_shares_publishes(listening, redis_url):
    import redis

    subscriber = redis.Redis.from_url(redis_url).pubsub(ignore_subscribe_messages=True)
    subscriber.subscribe(wakeup.channel("shop"))
    wait_for(lambda: subscriber.get_message(timeout=0.05) is None, timeout=5, message="the subscription")
    for _ in range(1000):
        wakeup.notify("shop")
    assert listening.wait(5)
    received = 0
    while subscriber.get_message(timeout=0.5) is not None:  # until the publishes stop
        received += 1
    subscriber.close()
    # One publish per commit would be 1000 Redis round trips, each one in a request's time.
    assert 1 <= received < 1000


def test_another_services_notify_does_not_wake_it(listening):
    wakeup.notify("inventory")
    assert not listening.wait(0.5)
