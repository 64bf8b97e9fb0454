"""The dashboard socket against the real ASGI application and a real Redis channel layer."""

from __future__ import annotations

import asyncio
import time

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import User
from django.test import Client

from config.asgi import application
from dashboard import fanout, frames, live_feed, read_model
from dashboard.sockets import DashboardConsumer
from eventbus.dispatch import Dispatcher
from eventbus.service import service

from .factories import new_order_id, record

pytestmark = pytest.mark.django_db(databases=["default", "dashboard"], transaction=True)
ORIGIN = (b"origin", b"http://testserver")


def run(scenario):
    async_to_sync(scenario)()


def headers_for(user: User | None, origin=ORIGIN) -> list[tuple[bytes, bytes]]:
    headers = [origin]
    if user is not None:
        client = Client()
        client.force_login(user)
        headers.append((b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode()))
    return headers


@pytest.fixture
def staff(redis_url):
    return User.objects.create_user("ops", password="pw", is_staff=True)


@pytest.fixture
def staff_headers(staff):
    return headers_for(staff)


@pytest.fixture(autouse=True)
def fresh_feed():
    live_feed.feed.reset()
    yield
    # What a test pushed reaches the layer now, not into the next test's browser (a flake under load).
    assert live_feed.feed.sender.pusher.wait_idle(), "the dashboard's pushes did not drain"
    live_feed.feed.reset()


async def receive(comm, kind: str, timeout: float = 10) -> dict:
    """The next frame of `kind`, skipping the others (metrics, lag) that may come in between."""
    deadline = time.monotonic() + timeout
    while True:
        frame = await comm.receive_json_from(timeout=max(0.1, deadline - time.monotonic()))
        if frame.get("kind") == kind:
            return frame


async def synced_browsers(headers, count: int) -> list[WebsocketCommunicator]:
    """`count` staff browsers on /ws/dashboard/, each holding its snapshot."""
    comms = [WebsocketCommunicator(application, "/ws/dashboard/", headers=headers) for _ in range(count)]
    for comm in comms:
        assert (await comm.connect())[0]
        await comm.send_json_to({"type": "catchup", "since": None})
        await receive(comm, "snapshot")
    return comms


async def until(condition, timeout: float = 10, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


def handle_and_flush(*records) -> dict | None:
    live_feed.feed.last_flush = time.monotonic()  # no frame due when the batch commits: this flushes it, and says what
    Dispatcher(service("dashboard")).handle(list(records))
    return live_feed.feed.flush()


def test_staff_are_accepted_and_get_a_snapshot(staff_headers):
    order = new_order_id()
    Dispatcher(service("dashboard")).handle([record("placed", order)])
    top = read_model.max_seq()
    assert top > 0

    async def scenario():
        comm = WebsocketCommunicator(application, "/ws/dashboard/", headers=staff_headers)
        connected, _ = await comm.connect()
        assert connected
        assert (await receive(comm, "hello"))["queue"] == DashboardConsumer.queue_size
        await comm.send_json_to({"type": "catchup", "since": None})
        snapshot = await receive(comm, "snapshot")
        assert [c["id"] for c in snapshot["cards"]] == [order]
        assert snapshot["to_seq"] == top and snapshot["stage_counts"]["placed"] == 1
        await comm.disconnect()

    run(scenario)


@pytest.mark.parametrize("who", ["anonymous", "customer", "inactive staff"])
def test_others_are_closed_with_4403(redis_url, who):
    user = None
    if who != "anonymous":
        user = User.objects.create_user("x", password="pw", is_staff=who != "customer", is_active=True)

    headers = headers_for(user)

    async def scenario():
        if who == "inactive staff":
            await sync_to_async(User.objects.filter(pk=user.pk).update)(is_active=False)
        comm = WebsocketCommunicator(application, "/ws/dashboard/", headers=headers)
        await comm.connect()
        closed = await comm.receive_output(timeout=5)
        assert closed == {"type": "websocket.close", "code": 4403}
        await comm.wait()

    run(scenario)


def test_a_foreign_origin_is_refused(staff):
    foreign = headers_for(staff, origin=(b"origin", b"http://evil.example"))

    async def scenario():
        comm = WebsocketCommunicator(application, "/ws/dashboard/", headers=foreign)
        connected, _ = await comm.connect()
        assert not connected
        await comm.wait()

    run(scenario)


def test_frames_arrive_after_events_are_handled_and_coalesce_per_order(staff_headers):
    order = new_order_id()

    async def scenario():
        comm = WebsocketCommunicator(application, "/ws/dashboard/", headers=staff_headers)
        assert (await comm.connect())[0]
        await comm.send_json_to({"type": "catchup", "since": None})
        snapshot = await receive(comm, "snapshot")
        assert snapshot["to_seq"] == 0 and snapshot["cards"] == []
        sent = await sync_to_async(handle_and_flush)(
            record("placed", order), record("reserved", order, seconds=1), record("packed", order, seconds=2)
        )
        frame = await receive(comm, "batch")
        assert frame == sent
        assert frame["from_seq"] > snapshot["to_seq"] and frame["to_seq"] == frame["from_seq"] + 2
        assert [c["stage"] for c in frame["cards"]] == ["packed"]  # one card per order: its latest stage
        assert [e["type"].split(".")[3] for e in frame["events"]] == ["placed", "reserved", "packed"]
        await comm.disconnect()

    run(scenario)


def test_a_reconnecting_client_catches_up_from_its_last_seq(staff_headers):
    first, second = new_order_id(), new_order_id()

    async def scenario():
        await sync_to_async(handle_and_flush)(record("placed", first))
        last_seen = await sync_to_async(read_model.max_seq)()
        # while the browser is away:
        await sync_to_async(handle_and_flush)(record("reserved", first, seconds=1), record("placed", second, seconds=1))
        comm = WebsocketCommunicator(application, "/ws/dashboard/", headers=staff_headers)
        assert (await comm.connect())[0]
        await comm.send_json_to({"type": "catchup", "since": last_seen})
        answer = await receive(comm, "catchup")
        assert [e["seq"] for e in answer["events"]] == [last_seen + 1, last_seen + 2]
        assert {c["id"]: c["stage"] for c in answer["cards"]} == {first: "reserved", second: "placed"}
        assert answer["to_seq"] == last_seen + 2
        await comm.disconnect()

    run(scenario)


def test_an_overflowing_client_is_told_to_resync(staff_headers, monkeypatch):
    monkeypatch.setattr(DashboardConsumer, "queue_size", 3)
    transmit = DashboardConsumer.transmit
    instances: list[DashboardConsumer] = []

    async def scenario():
        gate = asyncio.Event()

        async def stalled_browser(self, frame):
            if isinstance(frame, dict) and frame["kind"] == "hello":
                instances.append(self)
            else:
                await gate.wait()
            await transmit(self, frame)

        monkeypatch.setattr(DashboardConsumer, "transmit", stalled_browser)
        comm = WebsocketCommunicator(application, "/ws/dashboard/", headers=staff_headers)
        assert (await comm.connect())[0]
        await receive(comm, "hello")
        await comm.send_json_to({"type": "catchup", "since": None})  # its answer is stuck at the browser
        await until(lambda: instances[0].synced, what="the catch-up to be answered")
        layer = get_channel_layer()
        for seq in range(1, 21):
            frame = {"kind": "batch", "from_seq": seq, "to_seq": seq, "events": [], "cards": []}
            await layer.group_send(frames.GROUP, frames.message_for(frame))
        await layer.group_send(frames.GROUP, frames.message_for({"kind": "metrics", "points": []}))
        await until(lambda: instances and instances[0].overflows >= 1, what="the queue to overflow")
        await until(lambda: instances[0].queue.qsize() == 2, what="the marker frame")
        gate.set()
        kinds = [(await comm.receive_json_from(timeout=5))["kind"] for _ in range(3)]
        assert kinds == ["snapshot", "resync", "metrics"]  # the batches were dropped, not queued
        await comm.send_json_to({"type": "catchup", "since": 0})
        assert (await receive(comm, "catchup"))["to_seq"] == 0
        await comm.disconnect()

    run(scenario)


def test_a_frame_pushed_while_the_catch_up_is_read_follows_the_answer(staff_headers, monkeypatch):
    """A frame that reaches the socket while its catch-up is read is held and goes out after the answer: no
    gap."""
    order = new_order_id()
    read = read_model.catch_up
    deliver = DashboardConsumer.deliver
    delivered = []

    def noting_deliver(self, frame):
        deliver(self, frame)
        delivered.append(frame.kind)

    def catch_up_while_the_dashboard_commits(since):
        answer = read(since)  # what the database held when it was read...
        late = handle_and_flush(record("placed", order))  # ...and a batch committed and pushed just after,
        assert late is not None and late["from_seq"] > answer["to_seq"]
        deadline = time.monotonic() + 10
        while "batch" not in delivered:  # which reaches the socket before the answer is sent
            assert time.monotonic() < deadline, "the frame never reached the socket"
            time.sleep(0.01)
        return answer

    monkeypatch.setattr(DashboardConsumer, "deliver", noting_deliver)
    monkeypatch.setattr(read_model, "catch_up", catch_up_while_the_dashboard_commits)

    async def scenario():
        comm = WebsocketCommunicator(application, "/ws/dashboard/", headers=staff_headers)
        assert (await comm.connect())[0]
        await comm.send_json_to({"type": "catchup", "since": None})
        answer = await receive(comm, "snapshot")
        frame = await receive(comm, "batch")
        assert frame["from_seq"] > answer["to_seq"] and order not in {c["id"] for c in answer["cards"]}
        assert [c["id"] for c in frame["cards"]] == [order]  # it came after the answer, not dropped
        await comm.disconnect()

    run(scenario)


def big_batch(seq: int) -> dict:
    events = [{"seq": seq, "kind": "event", "type": "conveyor.shop.order.placed.v1", "pad": "x" * 200}] * 40
    return {"kind": "batch", "from_seq": seq, "to_seq": seq, "count": 1, "events": events, "cards": []}


def test_a_frame_crosses_the_channel_layer_once_per_process_for_all_its_browsers(staff_headers, monkeypatch):
    layer = get_channel_layer()
    read = layer.receive
    received = []

    async def counting_receive(channel):
        message = await read(channel)
        received.append((channel, message.get("type")))
        return message

    async def scenario():
        comms = await synced_browsers(staff_headers, 3)
        frame = big_batch(await sync_to_async(read_model.max_seq)() + 1)
        await layer.group_send(frames.GROUP, frames.message_for(frame))
        for comm in comms:
            assert await receive(comm, "batch") == frame
            await comm.disconnect()

    # a spy on the real Redis layer: every message still goes through it
    monkeypatch.setattr(layer, "receive", counting_receive)
    run(scenario)
    assert [kind for _, kind in received if kind == frames.FRAME_TYPE] == [frames.FRAME_TYPE]


def test_frames_resume_after_the_layer_fails_and_browsers_are_told_to_resync(staff_headers, monkeypatch):
    """Redis away for a moment: the process's fan-out keeps its sockets open, joins the group again, and asks
    every browser to catch up since frames may have been lost meanwhile."""
    layer = get_channel_layer()
    read = layer.receive
    failures = []
    synced = {}

    async def failing_once(channel):
        if channel == fanout.for_this_loop().channel and not failures:
            await synced["event"].wait()  # the browser holds its snapshot when Redis goes
            failures.append(channel)
            raise ConnectionError("Redis went away")
        return await read(channel)

    async def scenario():
        synced["event"] = asyncio.Event()
        comm = WebsocketCommunicator(application, "/ws/dashboard/", headers=staff_headers)
        assert (await comm.connect())[0]
        await comm.send_json_to({"type": "catchup", "since": None})
        snapshot = await receive(comm, "snapshot")
        synced["event"].set()
        assert (await receive(comm, "resync"))["reason"] == "frames-lost"
        await comm.send_json_to({"type": "catchup", "since": snapshot["to_seq"]})
        assert (await receive(comm, "catchup"))["since"] == snapshot["to_seq"]
        seq = snapshot["to_seq"] + 1
        frame = {"kind": "batch", "from_seq": seq, "to_seq": seq, "events": [], "cards": []}
        await layer.group_send(frames.GROUP, frames.message_for(frame))
        assert await receive(comm, "batch") == frame  # the process is in the group again
        await comm.disconnect()

    monkeypatch.setattr(layer, "receive", failing_once)
    run(scenario)
    assert failures


def test_a_browser_that_acknowledges_frames_is_paced_and_one_that_does_not_is_not(staff_headers, monkeypatch):
    monkeypatch.setattr(DashboardConsumer, "window_bytes", 1)  # one unacknowledged frame at a time

    async def scenario():
        pacing = WebsocketCommunicator(application, "/ws/dashboard/", headers=staff_headers)
        silent = WebsocketCommunicator(application, "/ws/dashboard/", headers=staff_headers)
        for comm in (pacing, silent):
            assert (await comm.connect())[0]
            await receive(comm, "hello")
            await comm.send_json_to({"type": "catchup", "since": None})
            await receive(comm, "snapshot")
        await pacing.send_json_to({"type": "ack", "frames": 2})  # hello and snapshot handled
        layer = get_channel_layer()
        for seq in range(1, 4):
            frame = {"kind": "batch", "from_seq": seq, "to_seq": seq, "events": [], "cards": []}
            await layer.group_send(frames.GROUP, frames.message_for(frame))

        assert [(await receive(silent, "batch"))["from_seq"] for _ in range(3)] == [1, 2, 3]  # not paced
        assert (await receive(pacing, "batch"))["from_seq"] == 1
        assert await pacing.receive_nothing(timeout=0.5)  # the next waits for the ack of the first
        for handled, seq in ((3, 2), (4, 3)):
            await pacing.send_json_to({"type": "ack", "frames": handled})
            assert (await receive(pacing, "batch"))["from_seq"] == seq
        for comm in (pacing, silent):
            await comm.disconnect()

    run(scenario)


def test_a_resync_the_dashboard_consumer_sends_after_dropping_frames_reaches_every_browser(staff_headers):
    """The consumer dropped frames of events while Redis was away, and no later frame may come to show the
    gap in seqs: its "resync" frame makes every browser of the process catch up from the read model."""
    layer = get_channel_layer()

    async def scenario():
        comms = await synced_browsers(staff_headers, 2)
        await layer.group_send(frames.GROUP, frames.message_for({"kind": "resync", "reason": "frames-lost"}))
        for comm in comms:
            assert (await receive(comm, "resync"))["reason"] == "frames-lost"
            await comm.disconnect()

    run(scenario)
