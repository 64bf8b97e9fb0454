"""More copies of a consumer than partitions: the extra copies wait without rebalancing the group.

Three `run_consumer shipping` on topics of one partition each: one copy reads, two sit idle. The joins
settle in about one rebalance per copy, and over two minutes after them (four of the idle copies' 30 s
checks) no copy logs a new assignment, i.e. no rebalance happened."""

import time

import pytest

from eventbus import kafka_io
from eventbus.service import service
from tests.support import wait_for

pytestmark = [
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True, databases=["default", "shop", "inventory", "shipping", "dashboard"]),
]
COPIES = ("shipping-1", "shipping-2", "shipping-3")
WINDOW_SECONDS = 120
QUIET_SECONDS = 15  # well under the 30 s after which an idle copy used to re-subscribe
MAX_ASSIGNMENTS_TO_SETTLE = 1 + 2 + 3 + 3


def _story(stack) -> str:
    return "\n".join(
        line for n in COPIES for line in stack.log(n).splitlines() if "partitions" in line or "subscrib" in line
    )


def _assignments(stack) -> int:
    return sum(stack.log(name).count("partitions assigned") for name in COPIES)


def _describe(group: str) -> dict:
    admin = kafka_io.make_admin()
    try:
        return admin.describe_groups([group])[group]
    finally:
        admin.close()


def test_idle_copies_do_not_rebalance_the_group(stack, settings):
    prefix = settings.KAFKA_TOPIC_PREFIX + "one."
    settings.KAFKA_TOPIC_PREFIX = prefix
    stack.env.update(KAFKA_TOPIC_PREFIX=prefix, KAFKA_TOPIC_PARTITIONS="1")
    kafka_io.ensure_topics(partitions=1)
    group = service("shipping").group
    for name in COPIES:
        stack.consumer("shipping", name=name)

    def settled():
        described = _describe(group)
        members = described.get("members") or []
        counts = [kafka_io.assigned_partition_count(m.get("member_assignment")) for m in members]
        return described.get("group_state") == "Stable" and len(members) == 3 and counts.count(0) == 2

    wait_for(settled, 90, "a stable group of three with two idle copies")
    wait_for(lambda: all("partitions assigned" in stack.log(n) for n in COPIES), 30, "every copy to log its join")
    # The copies join one after another, each join a rebalance in which every member then in the group is
    # assigned: 1 + 2 + 3 assignments, or fewer when two copies join in one rebalance. A copy that joins
    # again by itself rebalances the whole group once more; allow one such round, not a loop.
    joined = _assignments(stack)
    assert joined <= MAX_ASSIGNMENTS_TO_SETTLE, f"{joined} assignments before the group settled:\n" + _story(stack)
    quiet = {"count": joined, "since": time.monotonic()}

    def quiet_for(seconds: float) -> bool:
        count = _assignments(stack)
        if count != quiet["count"]:
            quiet.update(count=count, since=time.monotonic())
        return settled() and time.monotonic() - quiet["since"] >= seconds

    wait_for(lambda: quiet_for(QUIET_SECONDS), 120, f"no new assignment for {QUIET_SECONDS} s after the joins")
    before = _assignments(stack)

    deadline = time.monotonic() + WINDOW_SECONDS
    while time.monotonic() < deadline:
        assert all(stack.processes[n].poll() is None for n in COPIES), "a copy died"
        assert _assignments(stack) == before, "the group rebalanced:\n" + _story(stack)
        time.sleep(1)
    assert settled()
    assert sum("waiting" in stack.log(n) for n in COPIES) == 2  # the idle copies said why they wait
