"""Chaos switches end to end, with real processes: a switch set on the service map reaches the consumers
through the control channel. `fail` dead-letters exactly the next order's reservation after its retries,
the dashboard records the dead letter, and a replay once the count is spent lets the order go on; `pause`
holds shipping's consumer (its lag grows) until the switch is turned off."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client

from dashboard.models import DeadLetter
from eventbus import browse, chaos, schemas
from eventbus.service import service
from tests.support import wait_for
from tests.test_saga_e2e import order, place, product, reach, start_all

pytestmark = [
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True, databases=["default", "shop", "inventory", "shipping", "dashboard"]),
]
PLACED = "conveyor.shop.order.placed.v1"


@pytest.fixture
def operator(settings):
    settings.CHAOS_ENABLED = True  # the processes run with DJANGO_DEBUG=1, which turns it on there
    user = User.objects.create_user("ops", password="pw", is_staff=True)
    for codename, app in (("use_chaos", "dashboard"), ("change_deadletter", "dashboard")):
        user.user_permissions.add(Permission.objects.get(codename=codename, content_type__app_label=app))
    client = Client()
    client.force_login(user)
    return client


def obeyed(stack, name: str, text: str) -> bool:
    return text in (stack.logdir / f"{name}.log").read_text(errors="replace")


def shipping_lag(topic: str) -> int:
    group = browse.group(service("shipping").group)
    info = browse.topic(topic)
    return sum(p.end - group.committed.get((topic, p.partition), 0) for p in info.partitions)


def test_fail_dead_letters_the_next_order_and_pause_holds_shipping_until_turned_off(stack, operator):
    sku = product("CHAOS-MUG", 10)
    base = start_all(stack)
    stack.consumer("dashboard")

    form = {"action": "on", "service": "inventory", "kind": "fail", "event_type": PLACED, "count": "1"}
    assert operator.post("/dashboard/map/chaos", form).status_code == 302
    wait_for(lambda: obeyed(stack, "inventory-0", "chaos switch on: failing the next 1 of 1"), 30, "inventory to obey")
    orders = {placed["id"]: placed for _, placed in (place(base, sku, 1), place(base, sku, 1))}
    # "The next" is in the order inventory reads them, which across partitions is not the order they were placed
    letter = wait_for(
        lambda: DeadLetter.objects.using("dashboard").filter(subject__in=orders).first(), 60, "a dead letter"
    )
    doomed = orders.pop(letter.subject)
    [spared] = orders.values()
    reach(base, spared, "delivered")
    assert letter.reason == "handler-error" and "chaos switch: the next 1 " + PLACED in letter.error
    assert order(base, doomed)["status"] == "placed"
    assert obeyed(stack, "inventory-0", "(attempt 3/3)")  # retried before it was dead-lettered
    assert [s.left for s in chaos.switches(["inventory"])] == [0]

    pause = {"action": "on", "service": "shipping", "kind": "pause"}
    assert operator.post("/dashboard/map/chaos", pause).status_code == 302
    wait_for(lambda: obeyed(stack, "shipping", "chaos switch on: paused"), 30, "shipping to obey")
    replayed = operator.post("/dashboard/api/dead-letters/replay", {"ids": [letter.pk]})
    assert replayed.status_code == 200, replayed.content
    reach(base, doomed, "reserved")
    reservations = schemas.topic_name(schemas.spec("conveyor.inventory.stock.reserved.v1").topic)
    wait_for(lambda: shipping_lag(reservations) >= 1, 30, "shipping's lag to grow while it is paused")
    assert order(base, doomed)["status"] == "reserved"

    off = {"action": "off", "service": "shipping", "kind": "pause"}
    assert operator.post("/dashboard/map/chaos", off).status_code == 302
    reach(base, doomed, "delivered")
