"""Consumer groups, offset resets and the schema catalogue against the real broker."""

import re

import pytest
from django.contrib.auth.models import User
from django.test import Client

from dashboard.models import OperatorLog
from eventbus import browse, schemas

from .viewer_support import commit_group, placed

pytestmark = [pytest.mark.integration, pytest.mark.django_db(databases=["default", "dashboard"])]


def lag_of(html: str, group: str) -> int:
    row = html.split(f'<tr data-group="{group}"', 1)[1].split("<tr data-group=", 1)[0]
    return int(re.search(r"data-lag>(\d+)<", row).group(1))


def test_groups_page_shows_state_offsets_lag_and_time_lag(staff_client, topics):
    placed(6)
    orders = topics("shop.orders")
    group = f"{orders}.g"
    commit_group(group, orders, 6)
    placed(3)
    response = staff_client.get("/dashboard/groups/")
    assert response.status_code == 200
    html = response.content.decode()
    assert lag_of(html, group) == 3
    row = html.split(f'<tr data-group="{group}"', 1)[1].split("<tr data-group=", 1)[0]
    assert "Empty" in row and row.count("data-partition=") == 3
    assert re.search(r"\d+\.\d s", row)  # a time lag for the lagging partitions
    assert "/reset" not in row  # staff without the permission get no reset link
    filtered = staff_client.get("/dashboard/groups/", {"name": "nothing-like-it"}).content.decode()
    assert f'data-group="{group}"' not in filtered
    assert "dashboard.reset_offsets" in html


def test_reset_previews_then_commits_and_logs(resetter_client, topics):
    placed(5)
    orders = topics("shop.orders")
    group = f"{orders}.g"
    commit_group(group, orders, 5)
    url = f"/dashboard/groups/{group}/reset"
    assert resetter_client.get(url).status_code == 200
    preview = resetter_client.post(url, {"strategy": "earliest", "action": "preview"})
    assert preview.status_code == 200 and 'id="reset-preview"' in preview.content.decode()
    before = browse.group(group).committed
    assert sum(before.values()) == 5  # a preview changed nothing
    done = resetter_client.post(url, {"strategy": "earliest", "action": "confirm"})
    assert done.status_code == 200 and 'id="reset-done"' in done.content.decode()
    assert sum(browse.group(group).committed.values()) == 0
    entry = OperatorLog.objects.using("dashboard").get(action="reset-offsets")
    assert entry.username == "resetter" and entry.target == group and entry.detail["strategy"] == "earliest"
    assert 'data-action="reset-offsets"' in resetter_client.get("/dashboard/groups/").content.decode()

    info = browse.topic(orders)
    explicit = {f"offset:{orders}:{p.partition}": str(p.end) for p in info.partitions}
    resetter_client.post(url, {"strategy": "offsets", "action": "confirm", **explicit})
    assert sum(browse.group(group).committed.values()) == 5
    past = {**explicit, f"offset:{orders}:0": "999"}
    refused = resetter_client.post(url, {"strategy": "offsets", "action": "preview", **past})
    assert refused.status_code == 400 and "outside what the partition holds" in refused.content.decode()
    bad_time = resetter_client.post(url, {"strategy": "time", "time": "soon", "action": "preview"})
    assert bad_time.status_code == 400 and "RFC 3339" in bad_time.content.decode()


def test_a_group_with_members_is_not_reset(resetter_client, topics):
    placed(4)
    orders = topics("shop.orders")
    group = f"{orders}.busy"
    consumer = commit_group(group, orders, 4, keep_open=True)
    try:
        url = f"/dashboard/groups/{group}/reset"
        page = resetter_client.get(url)
        assert page.status_code == 409 and "active member" in page.content.decode()
        refused = resetter_client.post(url, {"strategy": "earliest", "action": "confirm"})
        assert refused.status_code == 409 and "stop its consumers" in refused.content.decode()
        assert sum(browse.group(group).committed.values()) == 4  # nothing changed
        assert not OperatorLog.objects.using("dashboard").exists()
    finally:
        consumer.close()


def test_resetting_needs_its_own_permission(staff_client, topics):
    orders = topics("shop.orders")
    placed(1)
    group = f"{orders}.g"
    commit_group(group, orders, 1)
    response = staff_client.post(f"/dashboard/groups/{group}/reset", {"strategy": "earliest", "action": "confirm"})
    assert response.status_code == 403 and "dashboard.reset_offsets" in response.content.decode()
    assert sum(browse.group(group).committed.values()) == 1


def test_unknown_group_is_a_404(resetter_client, topics):
    response = resetter_client.get("/dashboard/groups/no-such-group/reset")
    assert response.status_code == 404 and "no consumer group" in response.content.decode()


def test_schemas_page_shows_every_type_with_topic_publisher_consumers_and_a_valid_example(staff_client):
    html = staff_client.get("/dashboard/schemas/").content.decode()
    for event_type, spec in schemas.catalogue().items():
        section = html.split(f'data-event-type="{event_type}"', 1)[1].split("data-event-type=", 1)[0]
        assert spec.topic in section
        assert f"<strong data-publisher>{event_type.split('.')[1]}</strong>" in section
    placed_section = html.split('data-event-type="conveyor.shop.order.placed.v1"', 1)[1].split("data-event-type=")[0]
    assert "inventory" in placed_section.split("data-consumers>")[1].split("<")[0]
    from dashboard.viewer.selectors import example

    for event_type, spec in schemas.catalogue().items():
        schemas.validate(event_type, example(spec.schema))  # every example fits its schema


def test_non_staff_cannot_reset(topics):
    client = Client()
    client.force_login(User.objects.create_user("customer", password="pw"))
    response = client.post("/dashboard/groups/any/reset", {"strategy": "earliest", "action": "confirm"})
    assert response.status_code == 302


def test_service_map_draws_services_and_topics_with_lag_and_dead_letters(staff_client, topics):
    from eventbus.service import service
    from eventbus.tests import kafka_helpers

    placed(3)
    orders = topics("shop.orders")
    commit_group(service("inventory").group, orders, 1)  # inventory's group read 1 of 3
    kafka_helpers.send_raw("shop.orders.dlt", b"{}", [], b"k")
    html = staff_client.get("/dashboard/map/").content.decode()
    for app in ("shop", "inventory", "shipping", "dashboard"):
        assert f'data-service="{app}"' in html
    edge = html.split(f'data-edge="{orders}:inventory"', 1)[1].split("</a>", 1)[0]
    assert "data-edge-lag>2<" in edge and "☠ 1 dead" in edge
    data = staff_client.get("/dashboard/api/map").json()
    inventory = next(e for e in data["edges"] if e["topic"] == orders and e["to"] == "inventory")
    assert inventory == {**inventory, "from": "shop", "end": 3, "lag": 2, "dead_letters": 1}
