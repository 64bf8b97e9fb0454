"""Websockets on the real ASGI application and a real Redis channel layer: who may follow an order,
the snapshot on connect, frames pushed by status and stock changes, and pushes that fail safely."""

import logging
import uuid

import pytest
from asgiref.sync import async_to_sync
from channels.auth import AuthMiddlewareStack
from channels.db import database_sync_to_async
from channels.layers import channel_layers
from channels.routing import URLRouter
from channels.security.websocket import AllowedHostsOriginValidator
from channels.testing import WebsocketCommunicator
from django.contrib.sessions.backends.db import SessionStore
from django.test import Client
from django.utils import timezone

from eventbus.envelope import Envelope
from shop import live, services
from shop.access import remember_order
from shop.routing import websocket_urlpatterns
from tests.support import free_port

LIVE_DB = pytest.mark.django_db(transaction=True, databases=["default", "shop"])
# redis-py 8 reads with a 5 s socket timeout by default, which kills channels_redis's 5 s BZPOPMIN (a
# consumer idle for 5 s dies: django/channels_redis#422). Until the project's CHANNEL_LAYERS sets it,
# these tests use a longer one, so that a slow run cannot fail for that reason.
LAYER_SOCKET_TIMEOUT = 15

# The stack of config.asgi around the shop's routes only (importing config.asgi would pull in the
# dashboard's routes, which the shop may not import).
application = AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns)))
TIMEOUT = 10  # seconds to wait for a frame; a pass takes milliseconds


def owner_cookie(placed) -> str:
    session = SessionStore()
    remember_order(session, placed.order.id, placed.token)
    session.save()
    return f"sessionid={session.session_key}"


def communicator(path: str, cookie: str = "") -> WebsocketCommunicator:
    headers = [(b"origin", b"http://testserver")]
    if cookie:
        headers.append((b"cookie", cookie.encode()))
    return WebsocketCommunicator(application, path, headers=headers)


async def assert_refused(comm: WebsocketCommunicator) -> None:
    connected, _ = await comm.connect(timeout=TIMEOUT)
    assert connected  # accepted only to say why: closed at once with 4403, and no frame before it
    assert await comm.receive_output(timeout=TIMEOUT) == {"type": "websocket.close", "code": 4403}
    await comm.disconnect(timeout=TIMEOUT)


def saga_event(order_id, event_type="conveyor.shipping.shipment.packed.v1") -> Envelope:
    return Envelope(
        id=str(uuid.uuid4()),
        type=event_type,
        source="/conveyor/shipping",
        subject=str(order_id),
        time=timezone.now(),
        data={"order_id": str(order_id)},
        correlation_id=str(order_id),
    )


@pytest.fixture
def layer(redis_url, settings):
    """The real Redis channel layer, with a socket timeout longer than its blocking pop."""
    settings.CHANNEL_LAYERS = {
        "default": {
            **settings.CHANNEL_LAYERS["default"],
            "CONFIG": {"hosts": [{"address": redis_url, "socket_timeout": LAYER_SOCKET_TIMEOUT}]},
        }
    }
    channel_layers.backends.clear()
    yield
    channel_layers.backends.clear()


@LIVE_DB
def test_owner_gets_a_snapshot_then_a_frame_per_status_change(layer, place):
    placed = place()
    order_id = str(placed.order.id)
    cookie = owner_cookie(placed)

    async def scenario():
        comm = communicator(f"/ws/orders/{order_id}/", cookie)
        connected, _ = await comm.connect(timeout=TIMEOUT)
        assert connected
        snapshot = await comm.receive_json_from(timeout=TIMEOUT)
        assert snapshot["type"] == "order"
        assert snapshot["order"]["id"] == order_id and snapshot["order"]["status"] == "placed"
        assert snapshot["order"]["lines"][0]["sku"] == "MUG-001"

        step = services.SagaStep(order_id, "packed", saga_event(order_id))
        await database_sync_to_async(services.follow_saga)([step])
        frame = await comm.receive_json_from(timeout=TIMEOUT)
        assert frame["order"]["status"] == "packed"
        assert [h["status"] for h in frame["order"]["history"]] == ["placed", "reserved", "packed"]

        await database_sync_to_async(services.request_cancel)(order_id=order_id)
        frame = await comm.receive_json_from(timeout=TIMEOUT)
        assert frame["order"]["status"] == "packed" and frame["order"]["cancel"]["state"] == "requested"

        step = services.SagaStep(order_id, "cancelled", saga_event(order_id))  # shipping confirmed
        await database_sync_to_async(services.follow_saga)([step])
        frame = await comm.receive_json_from(timeout=TIMEOUT)
        assert frame["order"]["status"] == "cancelled" and frame["order"]["cancel"]["state"] == "confirmed"
        await comm.disconnect()

    async_to_sync(scenario)()


@LIVE_DB
def test_token_in_the_query_string_is_accepted(layer, place):
    placed = place()

    async def scenario():
        comm = communicator(f"/ws/orders/{placed.order.id}/?token={placed.token}")
        connected, _ = await comm.connect(timeout=TIMEOUT)
        assert connected
        assert (await comm.receive_json_from(timeout=TIMEOUT))["order"]["status"] == "placed"
        await comm.disconnect()

    async_to_sync(scenario)()


@LIVE_DB
def test_staff_is_accepted(layer, place, django_user_model):
    placed = place()
    client = Client()
    client.force_login(django_user_model.objects.create_user("staff", password="pw", is_staff=True))
    cookie = f"sessionid={client.cookies['sessionid'].value}"

    async def scenario():
        comm = communicator(f"/ws/orders/{placed.order.id}/", cookie)
        connected, _ = await comm.connect(timeout=TIMEOUT)
        assert connected
        assert (await comm.receive_json_from(timeout=TIMEOUT))["type"] == "order"
        await comm.disconnect()

    async_to_sync(scenario)()


@LIVE_DB
def test_strangers_are_refused_with_4403(layer, place):
    mine, theirs = place(), place()
    their_cookie = owner_cookie(theirs)
    paths = [
        (f"/ws/orders/{mine.order.id}/", ""),  # anonymous
        (f"/ws/orders/{mine.order.id}/?token=wrong", ""),
        (f"/ws/orders/{mine.order.id}/?token={theirs.token}", ""),  # another order's token
        (f"/ws/orders/{mine.order.id}/", their_cookie),  # another customer's session
        (f"/ws/orders/{uuid.uuid4()}/", ""),  # no such order
    ]

    async def scenario():
        for path, cookie in paths:
            await assert_refused(communicator(path, cookie))

    async_to_sync(scenario)()


@LIVE_DB
def test_a_foreign_origin_is_refused(layer, place):
    placed = place()

    async def scenario():
        comm = WebsocketCommunicator(
            application,
            f"/ws/orders/{placed.order.id}/?token={placed.token}",
            headers=[(b"origin", b"http://evil.test")],
        )
        connected, _ = await comm.connect(timeout=TIMEOUT)
        assert not connected
        await comm.disconnect(timeout=TIMEOUT)

    async_to_sync(scenario)()


@LIVE_DB
def test_stock_snapshot_then_live_availability(layer, products):
    async def scenario():
        comm = communicator("/ws/stock/")
        connected, _ = await comm.connect(timeout=TIMEOUT)
        assert connected
        snapshot = await comm.receive_json_from(timeout=TIMEOUT)
        assert snapshot["type"] == "stock"
        assert {"sku": "LMP-011", "available": 3} in snapshot["products"]

        await database_sync_to_async(services.update_availability)("LMP-011", 2)
        frame = await comm.receive_json_from(timeout=TIMEOUT)
        assert frame == {"type": "stock", "products": [{"sku": "LMP-011", "available": 2}]}
        await comm.disconnect()

    async_to_sync(scenario)()


@pytest.mark.django_db(databases=["default", "shop"], transaction=True)
def test_one_unit_of_work_makes_one_push_with_every_change(place, monkeypatch):
    """A consumer's batch is a unit of work: everything it changed goes out in one channel-layer round."""
    from eventbus.unit_of_work import unit_of_work

    first, second = place(), place()
    sent = []
    monkeypatch.setattr(live, "_send", sent.append)
    with unit_of_work("shop"):
        services.follow_saga([services.SagaStep(str(first.order.id), "reserved", saga_event(first.order.id))])
        rejected = services.SagaStep(str(second.order.id), "rejected", saga_event(second.order.id), rejection=[])
        services.follow_saga([rejected])
        services.update_availability("MUG-001", 7)
    assert len(sent) == 1
    groups = dict(sent[0])
    assert groups[live.order_group(first.order.id)] == {"type": "order.changed", "order_id": str(first.order.id)}
    assert groups[live.order_group(second.order.id)]["order_id"] == str(second.order.id)
    assert groups["stock"]["products"] == [{"sku": "MUG-001", "available": 7}]


@pytest.mark.django_db(databases=["default", "shop"])
def test_nothing_is_pushed_for_a_rolled_back_change(place, monkeypatch, django_capture_on_commit_callbacks):
    placed = place()
    sent = []
    monkeypatch.setattr(live, "_send", sent.append)
    from django.db import transaction

    with django_capture_on_commit_callbacks(using="shop", execute=True) as callbacks:
        try:
            with transaction.atomic(using="shop"):
                services.request_cancel(order_id=placed.order.id)
                raise RuntimeError("roll back")
        except RuntimeError:
            pass
    assert callbacks == [] and sent == []


@pytest.fixture
def redis_down(settings):
    """A channel layer pointing at a port nothing listens on."""
    layers = {
        "default": {**settings.CHANNEL_LAYERS["default"], "CONFIG": {"hosts": [f"redis://127.0.0.1:{free_port()}/0"]}}
    }
    settings.CHANNEL_LAYERS = layers
    channel_layers.backends.clear()
    yield
    channel_layers.backends.clear()


@pytest.mark.django_db(databases=["default", "shop"])
def test_a_failed_push_never_breaks_the_write(place, redis_down, caplog, django_capture_on_commit_callbacks):
    placed = place()
    with (
        caplog.at_level(logging.WARNING, logger="eventbus.push"),
        django_capture_on_commit_callbacks(using="shop", execute=True),
    ):
        requested = services.request_cancel(order_id=placed.order.id)
        services.update_availability("MUG-001", 0)
    with caplog.at_level(logging.WARNING, logger="eventbus.push"):
        assert live.pusher.wait_idle(30), "the pushes never finished"
    assert requested.status == "placed"
    assert requested.history.filter(status="cancel_requested").exists()
    assert "shop-live: a push to the channel layer failed" in caplog.text


def test_a_flush_of_hundreds_of_orders_is_sent_without_exhausting_redis_connections(layer, caplog):
    """More pushes than the Redis pool's 100 connections: sent a few at a time, none refused."""
    orders = [str(uuid.uuid4()) for _ in range(250)]
    with caplog.at_level(logging.WARNING, logger="eventbus.push"):
        live._send([(live.order_group(o), {"type": "order.changed", "order_id": o}) for o in orders])
        assert live.pusher.wait_idle(30), "the pushes never finished"
    assert "failed" not in caplog.text
