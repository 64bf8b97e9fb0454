"""The live feed: frames cover seqs and coalesce per order; lag estimates; throughput points."""

import asyncio
import time
from types import SimpleNamespace

import pytest

from dashboard import live_feed
from eventbus.dispatch import Dispatcher
from eventbus.service import service

from .factories import new_order_id, record


@pytest.fixture
def feed(monkeypatch):
    sent = []
    feed = live_feed.LiveFeed()
    monkeypatch.setattr(feed.sender, "send", lambda frame: sent.append(frame) or True)
    monkeypatch.setattr(live_feed, "feed", feed)
    feed.sent = sent
    return feed


@pytest.mark.django_db(databases=["default", "dashboard"], transaction=True)
def test_a_frame_covers_its_seqs_and_carries_one_card_per_order(feed):
    order, other = new_order_id(), new_order_id()
    Dispatcher(service("dashboard")).handle(
        [record("placed", order), record("reserved", order, seconds=1), record("placed", other, seconds=1)]
    )
    assert feed.pending == []  # noted when the batch committed, and sent on at once (a frame was due)
    [frame] = feed.sent
    assert frame["kind"] == "batch"
    assert frame["to_seq"] - frame["from_seq"] == 2 and frame["count"] == 3
    assert [e["seq"] for e in frame["events"]] == list(range(frame["from_seq"], frame["to_seq"] + 1))
    assert {c["id"]: c["stage"] for c in frame["cards"]} == {order: "reserved", other: "placed"}
    assert frame["stage_counts"]["placed"] == 1 and frame["stage_counts"]["reserved"] == 1
    assert frame["counters"]["conveyor.shop.order.placed.v1"]["count"] == 2
    assert feed.flush() is None  # nothing new


@pytest.mark.django_db(databases=["default", "dashboard"], transaction=True)
def test_a_frame_holds_the_newest_events_and_says_how_many_it_left_out_but_every_card(feed, monkeypatch):
    monkeypatch.setattr(live_feed, "MAX_EVENTS_PER_FRAME", 2)
    orders = [new_order_id() for _ in range(3)]
    Dispatcher(service("dashboard")).handle([record("placed", order, seconds=k) for k, order in enumerate(orders)])
    [frame] = feed.sent
    assert frame["count"] == 3 and frame["dropped"] == 1
    assert [e["seq"] for e in frame["events"]] == [frame["to_seq"] - 1, frame["to_seq"]]  # the newest
    assert {c["id"] for c in frame["cards"]} == set(orders)


@pytest.mark.django_db(databases=["default", "dashboard"])
def test_nothing_is_noted_for_a_batch_that_rolls_back(feed):
    Dispatcher(service("dashboard")).handle([record("placed", new_order_id())])
    assert feed.pending == []  # inside the test's transaction: never committed, never pushed


def test_throughput_points_per_second(feed, monkeypatch):
    now = int(time.time())
    feed.rate_emitted = now - 3
    feed.rates[now - 2]["a"] = 4
    feed.rates[now - 1]["a"] = 1
    feed.rates[now - 1]["b"] = 2
    feed.rates[now]["a"] = 9  # the current second is not complete yet
    monkeypatch.setattr(live_feed.time, "time", lambda: now + 0.5)
    frame = feed.push_metrics()
    assert frame == {"kind": "metrics", "points": [[now - 2, {"a": 4}], [now - 1, {"a": 1, "b": 2}]]}
    assert feed.rates[now]["a"] == 9


def lag(group, committed, end, partition=0):
    return SimpleNamespace(
        group=group, topic="t", partition=partition, committed=committed, end=end, lag=end - committed
    )


def test_seconds_behind_is_lag_over_the_recent_commit_rate():
    sampler = live_feed.LagSampler(["g", "idle"])
    first = sampler.estimate([lag("g", 100, 200), lag("idle", 5, 5)], now=1000.0)
    assert {s["group"]: s["lag"] for s in first} == {"g": 100, "idle": 0}
    second = sampler.estimate([lag("g", 120, 200), lag("idle", 5, 5)], now=1002.0)  # 10 offsets/s, 80 behind
    by_group = {s["group"]: s for s in second}
    assert by_group["g"]["seconds_behind"] == 8.0
    assert by_group["idle"]["seconds_behind"] == 0
    assert by_group["g"]["partitions"] == [["t", 0, 120, 200]]
    # stalled while lagging: the time since it last moved
    third = sampler.estimate([lag("g", 120, 250)], now=1010.0)
    stalled = sampler.estimate([lag("g", 120, 260)], now=1020.0)
    assert third[0]["seconds_behind"] > 0
    assert stalled[0]["seconds_behind"] > third[0]["seconds_behind"]


def test_after_dropping_events_the_sender_asks_the_browsers_to_resync_once_it_can_push_again(monkeypatch):
    sender = live_feed.FrameSender()
    submitted = []
    monkeypatch.setattr(sender.pusher, "submit", lambda send: submitted.append(send) or True)
    sender._down_until = time.monotonic() + 60  # a push failed: Redis is away
    assert sender.send({"kind": "metrics", "points": []}) is False
    sender._down_until = 0.0
    sender.tell_of_losses()
    assert submitted == []  # a lost metrics frame leaves no browser behind
    sender._down_until = time.monotonic() + 60
    assert sender.send({"kind": "batch", "from_seq": 7, "to_seq": 7}) is False
    sender.tell_of_losses()
    assert submitted == []  # not while Redis may still be away
    sender._down_until = 0.0
    sender.tell_of_losses()
    sender.tell_of_losses()
    assert len(submitted) == 1  # one resync for the loss, however many ticks follow
    assert sender.events_lost is False

    pushed = []

    class Layer:
        async def group_send(self, group, message):
            pushed.append((group, message["kind"]))

    monkeypatch.setattr(live_feed, "get_channel_layer", Layer)
    asyncio.run(submitted[0]())
    assert pushed == [("dashboard", "resync")]


def test_a_sender_never_blocks_and_drops_when_full(monkeypatch):
    sender = live_feed.FrameSender()
    sender.pusher.pending = sender.MAX_QUEUED  # as if Redis had stalled with that many frames queued
    assert sender.send({"kind": "x"}) is False
    assert sender.dropped == 1
