"""Chaos switches from the service map: on and off through the real control channel (Redis), shown on the
map while on, each in the operator log; refused with a clear message, changing nothing, when chaos is off,
without the permission, or for bad input."""

import json

import pytest
from django.test import Client

from dashboard.models import OperatorLog
from eventbus import chaos

from .viewer_support import staff_client_with

pytestmark = [pytest.mark.integration, pytest.mark.django_db(databases=["default", "dashboard"])]
PLACED = "conveyor.shop.order.placed.v1"


@pytest.fixture
def chaos_on(settings, redis_url, topics):
    settings.CHAOS_ENABLED = True


@pytest.fixture
def chaos_client():
    return staff_client_with("chaos", "use_chaos")


def node(html: str, service: str) -> str:
    return html.split(f'data-service="{service}"', 1)[1].split("</a>", 1)[0]


def on(client, **form):
    return client.post("/dashboard/map/chaos", {"action": "on", **form})


def test_a_switch_turned_on_shows_on_the_map_and_in_the_log_until_turned_off(chaos_on, chaos_client):
    response = on(chaos_client, service="inventory", kind="fail", event_type=PLACED, count="2", minutes="3")
    assert response.status_code == 302 and response.url == "/dashboard/map/"
    [switch] = chaos.switches(["inventory"])
    assert (switch.kind, switch.event_type, switch.count, switch.left, switch.by) == ("fail", PLACED, 2, 2, "chaos")
    assert 170 < switch.seconds_left <= 180
    assert on(chaos_client, service="shipping", kind="pause").status_code == 302
    assert on(chaos_client, service="shop", kind="slow", delay_ms="250").status_code == 302

    page = chaos_client.get("/dashboard/map/")
    html = page.content.decode()
    assert f"⚡ failing the next 2 of 2 {PLACED}" in node(html, "inventory")
    assert "⚡ paused" in node(html, "shipping") and "chaos-on" in html.split('data-service="shipping"')[0][-60:]
    assert "⚡ slowed by 250 ms per event" in node(html, "shop")
    assert "⚡" not in node(html, "dashboard")
    assert 'data-chaos-switch="shipping:pause"' in html and 'id="chaos-form"' in html
    data = json.loads(chaos_client.get("/dashboard/api/map").content)
    assert {(s["service"], s["kind"]) for s in data["chaos"]} == {
        ("inventory", "fail"),
        ("shipping", "pause"),
        ("shop", "slow"),
    }

    off = chaos_client.post("/dashboard/map/chaos", {"action": "off", "service": "shipping", "kind": "pause"})
    assert off.status_code == 302
    assert "⚡" not in node(chaos_client.get("/dashboard/map/").content.decode(), "shipping")
    log = list(OperatorLog.objects.using("dashboard").order_by("at").values_list("action", "target", "username"))
    assert log == [
        ("chaos-on", "inventory", "chaos"),
        ("chaos-on", "shipping", "chaos"),
        ("chaos-on", "shop", "chaos"),
        ("chaos-off", "shipping", "chaos"),
    ]
    entry = OperatorLog.objects.using("dashboard").filter(action="chaos-on", target="inventory").get()
    assert entry.detail == {"kind": "fail", "minutes": 3, "event_type": PLACED, "count": 2}


def test_chaos_off_refuses_with_how_to_turn_it_on_and_changes_nothing(settings, redis_url, topics, chaos_client):
    settings.CHAOS_ENABLED = False
    response = on(chaos_client, service="shipping", kind="pause")
    assert response.status_code == 403
    assert "start the stack with DJANGO_DEBUG=1 or CONVEYOR_CHAOS=1" in response.content.decode()
    settings.CHAOS_ENABLED = True
    assert chaos.switches(["shipping"]) == []
    assert not OperatorLog.objects.using("dashboard").exists()
    settings.CHAOS_ENABLED = False
    assert "data-chaos-off" in chaos_client.get("/dashboard/map/").content.decode()


def test_staff_without_the_permission_see_the_switches_but_cannot_touch_them(chaos_on, chaos_client, staff_client):
    on(chaos_client, service="shipping", kind="pause")
    html = staff_client.get("/dashboard/map/").content.decode()
    assert "⚡ paused" in node(html, "shipping")
    assert 'id="chaos-form"' not in html and "dashboard.use_chaos" in html
    refused = staff_client.post("/dashboard/map/chaos", {"action": "off", "service": "shipping", "kind": "pause"})
    assert refused.status_code == 403 and "dashboard.use_chaos" in refused.content.decode()
    assert [s.kind for s in chaos.switches(["shipping"])] == ["pause"]
    assert Client().post("/dashboard/map/chaos", {"service": "shipping", "kind": "pause"}).status_code == 302  # login


@pytest.mark.parametrize(
    ("form", "says"),
    [
        ({"service": "nowhere", "kind": "pause"}, "service: choose one of shop, inventory, shipping, dashboard"),
        ({"service": "shop", "kind": "explode"}, "kind: choose one of pause, slow, fail"),
        ({"service": "shop", "kind": "pause", "minutes": "0"}, "minutes: give a whole number from 1 to 30"),
        ({"service": "shop", "kind": "pause", "minutes": "ten"}, "minutes: give a whole number from 1 to 30"),
        ({"service": "shop", "kind": "slow"}, "delay_ms: give a whole number from 1 to 10000"),
        ({"service": "shop", "kind": "slow", "delay_ms": "60000"}, "delay_ms: give a whole number from 1 to 10000"),
        ({"service": "shop", "kind": "fail", "event_type": PLACED, "count": "2"}, f"{PLACED}' is not one of them"),
        ({"service": "inventory", "kind": "fail", "event_type": PLACED, "count": "0"}, "count: give a whole number"),
    ],
)
def test_bad_input_gets_a_clear_message_and_changes_nothing(chaos_on, chaos_client, form, says):
    response = on(chaos_client, **form)
    assert response.status_code == 400
    assert says in response.content.decode().replace("&#x27;", "'")
    assert chaos.switches(["shop", "inventory", "shipping", "dashboard"]) == []
    assert not OperatorLog.objects.using("dashboard").exists()


def test_redis_away_is_a_503_that_says_what_to_do(chaos_on, chaos_client, settings):
    from tests.support import free_port

    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"
    response = on(chaos_client, service="shop", kind="pause")
    assert response.status_code == 503
    assert "check that it runs at REDIS_URL" in response.content.decode()
    assert not OperatorLog.objects.using("dashboard").exists()
