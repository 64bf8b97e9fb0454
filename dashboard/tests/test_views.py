"""The page and its JSON API: staff only, CSRF on every POST."""

import re

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client

from dashboard.models import STAGES, DeadLetter, OutboxMessage
from eventbus.dispatch import Dispatcher
from eventbus.service import service

from .factories import dead_lettered, new_order_id, record

pytestmark = pytest.mark.django_db(databases=["default", "dashboard"])


@pytest.fixture
def staff_client():
    """Staff with the dead-letter permissions an operator is given (replay and discard need them)."""
    client = Client(enforce_csrf_checks=True)
    user = User.objects.create_user("ops", password="pw", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=["view_deadletter", "change_deadletter"]))
    client.force_login(user)
    return client


def test_staff_get_the_board_with_seven_stage_columns(staff_client):
    response = staff_client.get("/dashboard/")
    assert response.status_code == 200
    html = response.content.decode()
    assert re.findall(r'data-stage="([a-z]+)"', html) == list(STAGES)
    assert 'src="/static/dashboard/main.js"' in html and 'type="module"' in html
    assert "csrfmiddlewaretoken" in html
    assert "<title>Live dashboard" in html  # extends base.html's blocks


@pytest.mark.parametrize("is_staff", [None, False])
def test_others_are_sent_to_log_in(is_staff):
    client = Client()
    if is_staff is not None:
        client.force_login(User.objects.create_user("customer", password="pw", is_staff=is_staff))
    for url in ("/dashboard/", "/dashboard/api/state", "/dashboard/api/events/1"):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith("/admin/login/?next=")
    assert client.post("/dashboard/api/dead-letters/replay", {"ids": [1]}).status_code in (302, 403)


def test_state_event_and_journey_endpoints(staff_client):
    order = new_order_id()
    Dispatcher(service("dashboard")).handle([record("placed", order), record("reserved", order, seconds=1)])
    state = staff_client.get("/dashboard/api/state").json()
    assert state["kind"] == "snapshot" and state["to_seq"] >= 2
    assert [c["stage"] for c in state["cards"]] == ["reserved"]
    since = state["to_seq"] - 1
    catchup = staff_client.get(f"/dashboard/api/state?since={since}").json()
    assert catchup["kind"] == "catchup" and [e["seq"] for e in catchup["events"]] == [state["to_seq"]]
    assert staff_client.get("/dashboard/api/state?since=x").status_code == 400
    detail = staff_client.get(f"/dashboard/api/events/{state['to_seq']}").json()
    assert detail["headers"]["ce_type"] == "conveyor.inventory.stock.reserved.v1"
    assert order in detail["payload"]
    assert staff_client.get("/dashboard/api/events/999999").status_code == 404
    journey = staff_client.get(f"/dashboard/api/orders/{order}").json()
    assert len(journey["events"]) == 2


def test_replay_and_discard_need_csrf_and_record_the_user(staff_client):
    original = record("placed", new_order_id())
    Dispatcher(service("dashboard")).handle([original])
    Dispatcher(service("dashboard")).handle([dead_lettered(original)])
    letter = DeadLetter.objects.using("dashboard").get()
    url = "/dashboard/api/dead-letters/replay"
    assert staff_client.post(url, {"ids": [letter.pk]}, content_type="application/json").status_code == 403
    staff_client.get("/dashboard/")  # sets the CSRF cookie
    token = staff_client.cookies["csrftoken"].value
    response = staff_client.post(url, {"ids": [letter.pk]}, content_type="application/json", HTTP_X_CSRFTOKEN=token)
    assert response.status_code == 200
    assert response.json()["replayed"] == [letter.pk]
    assert response.json()["dead_letters"][0]["by"] == "ops"
    assert OutboxMessage.objects.using("dashboard").count() == 1
    bad = staff_client.post(url, {"ids": []}, content_type="application/json", HTTP_X_CSRFTOKEN=token)
    assert bad.status_code == 400
    response = staff_client.post(
        "/dashboard/api/dead-letters/discard",
        {"ids": [letter.pk]},
        content_type="application/json",
        HTTP_X_CSRFTOKEN=token,
    )
    assert response.json()["discarded"] == []  # a replayed letter is no longer "new"


def test_admin_lists_dead_letters_and_replays_them(staff_client):
    User.objects.filter(username="ops").update(is_superuser=True)
    original = record("placed", new_order_id())
    Dispatcher(service("dashboard")).handle([original])
    Dispatcher(service("dashboard")).handle([dead_lettered(original)])
    letter = DeadLetter.objects.using("dashboard").get()
    client = Client()
    client.force_login(User.objects.get(username="ops"))
    assert client.get("/admin/dashboard/deadletter/").status_code == 200
    assert client.get("/admin/dashboard/eventlog/").status_code == 200
    assert client.get("/admin/dashboard/ordercard/").status_code == 200
    assert client.get("/admin/dashboard/outboxmessage/").status_code == 200
    response = client.post(
        "/admin/dashboard/deadletter/", {"action": "replay", "_selected_action": [letter.pk]}, follow=True
    )
    assert response.status_code == 200
    letter.refresh_from_db()
    assert letter.status == "replayed" and letter.status_by == "ops"
    assert client.get("/admin/dashboard/eventlog/add/").status_code == 403
