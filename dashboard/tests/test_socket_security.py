"""Websocket security: staff re-checked on a live dashboard socket, a full Origin check (scheme, host,
port), and a bound on public sockets per client."""

from __future__ import annotations

import asyncio

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import User
from django.contrib.sessions.models import Session

from config.asgi import application

from .test_websocket import headers_for, receive

pytestmark = pytest.mark.django_db(databases=["default", "dashboard", "shop"], transaction=True)


def run(scenario):
    async_to_sync(scenario)()


@pytest.fixture
def staff(redis_url):
    return User.objects.create_user("ops", password="pw", is_staff=True)


@pytest.mark.parametrize("revoke", ["not staff", "inactive", "logged out"])
def test_a_live_dashboard_socket_closes_once_staff_is_revoked(staff, settings, revoke):
    settings.DASHBOARD_STAFF_RECHECK_SECONDS = 0.2
    headers = headers_for(staff)

    async def scenario():
        comm = WebsocketCommunicator(application, "/ws/dashboard/", headers=headers)
        connected, _ = await comm.connect()
        assert connected
        await receive(comm, "hello")
        if revoke == "not staff":
            await sync_to_async(User.objects.filter(pk=staff.pk).update)(is_staff=False)
        elif revoke == "inactive":
            await sync_to_async(User.objects.filter(pk=staff.pk).update)(is_active=False)
        else:
            await sync_to_async(Session.objects.all().delete)()
        while True:  # frames already queued may come first; the close must follow within a few rechecks
            message = await comm.receive_output(timeout=5)
            if message["type"] == "websocket.close":
                break
        assert message["code"] == 4403
        await comm.wait()

    run(scenario)


def test_staff_who_stays_staff_keeps_the_socket(staff, settings):
    settings.DASHBOARD_STAFF_RECHECK_SECONDS = 0.1
    headers = headers_for(staff)

    async def scenario():
        comm = WebsocketCommunicator(application, "/ws/dashboard/", headers=headers)
        assert (await comm.connect())[0]
        await receive(comm, "hello")
        await comm.send_json_to({"type": "ping"})
        await receive(comm, "pong", timeout=5)  # still open after several rechecks
        await comm.disconnect()

    run(scenario)


@pytest.mark.parametrize(
    ("origin", "host", "scheme", "allowed"),
    [
        ("http://testserver", "testserver", "ws", True),
        ("http://testserver:8000", "testserver:8000", "ws", True),
        ("https://testserver", "testserver", "wss", True),
        ("https://testserver", "testserver", "ws", False),  # scheme differs
        ("http://testserver", "testserver", "wss", False),
        ("http://testserver:9999", "testserver:8000", "ws", False),  # port differs
        ("http://testserver:8000", "testserver", "ws", False),
        ("http://evil.example", "testserver", "ws", False),
        ("http://evil.example", "evil.example", "ws", False),  # same as Host, but not an allowed host
        ("null", "testserver", "ws", False),
    ],
)
def test_the_origin_must_match_scheme_host_and_port(redis_url, origin, host, scheme, allowed):
    from config.websocket_security import same_origin

    scope = {"type": "websocket", "scheme": scheme, "headers": [(b"origin", origin.encode()), (b"host", host.encode())]}
    assert same_origin(scope) is allowed


def test_public_sockets_are_bounded_per_client(settings):
    """The limit in front of a stand-in socket application that stays open until told to close."""
    from config.websocket_security import ConnectionLimit

    settings.WS_CONNECTIONS_PER_CLIENT = 3

    async def held_open(scope, receive, send):
        await receive()  # websocket.connect
        await send({"type": "websocket.accept"})
        await receive()  # until the test says disconnect

    limit = ConnectionLimit(held_open, ("/ws/stock/",))

    async def scenario():
        async def connect(client, path="/ws/stock/"):
            inbox, sent = asyncio.Queue(), []

            async def send(message):
                sent.append(message["type"])

            await inbox.put({"type": "websocket.connect"})
            task = asyncio.ensure_future(
                limit({"type": "websocket", "path": path, "client": [client, 1]}, inbox.get, send)
            )
            for _ in range(100):
                if sent:
                    break
                await asyncio.sleep(0.01)
            return sent, inbox, task

        held = [await connect("203.0.113.1") for _ in range(3)]
        assert all(s == ["websocket.accept"] for s, _, _ in held)
        refused, _, _ = await connect("203.0.113.1")
        assert refused == ["websocket.close"]
        other, other_inbox, _ = await connect("198.51.100.2")  # another client is not affected
        assert other == ["websocket.accept"]
        private, _, _ = await connect("203.0.113.1", path="/ws/dashboard/")  # only the public paths count
        assert private == ["websocket.accept"]
        _, inbox, task = held.pop()
        await inbox.put({"type": "websocket.disconnect"})  # a closed socket frees its place
        await task
        again, _, _ = await connect("203.0.113.1")
        assert again == ["websocket.accept"]

    run(scenario)
