"""Shared set-up of the event viewer's tests: a topic prefix of the test's own, staff clients, records."""

from __future__ import annotations

import itertools

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client

from eventbus import browse, kafka_io, schemas
from eventbus.tests import kafka_helpers

_runs = itertools.count(1)


@pytest.fixture
def topics(kafka_bootstrap, settings):
    """Catalogue topics (and their .dlt) under a prefix of this test's own, on the session's real broker."""
    settings.KAFKA_TOPIC_PREFIX = f"viewer{next(_runs)}."
    kafka_io.ensure_topics(partitions=3)
    yield schemas.topic_name
    browse.close()


@pytest.fixture
def staff_client():
    client = Client()
    client.force_login(User.objects.create_user("ops", password="pw", is_staff=True))
    return client


def staff_client_with(username: str, *permissions: str) -> Client:
    """A logged-in client of a staff user who holds these dashboard permissions (codenames)."""
    user = User.objects.create_user(username, password="pw", is_staff=True)
    for codename in permissions:
        user.user_permissions.add(Permission.objects.get(codename=codename, content_type__app_label="dashboard"))
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def resetter_client():
    return staff_client_with("resetter", "reset_offsets")


def placed(n: int, sku: str = "MUG") -> list[str]:
    return [kafka_helpers.send_placed(sku) for _ in range(n)]


def commit_group(group: str, topic: str, records: int, keep_open: bool = False):
    """A consumer group that has read `records` records of `topic` and committed. With keep_open, a real
    consumer that joined the group and stays a member (returned); otherwise the offsets are committed for
    a group without members, partition after partition, which needs no join (a join's rebalance could take
    a whole minute on a loaded machine)."""
    if not keep_open:
        new, left = {}, records
        for p in browse.topic(topic).partitions:
            new[(topic, p.partition)] = p.start + min(left, p.end - p.start)
            left -= new[(topic, p.partition)] - p.start
        assert left == 0, f"{topic} holds fewer than {records} records"
        kafka_helpers.commit_offsets(group, new)
        return None
    import time

    consumer = kafka_io.make_consumer(group, "viewer-test")
    consumer.subscribe([topic])
    got = 0
    deadline = time.monotonic() + 60
    while got < records and time.monotonic() < deadline:
        got += sum(len(batch) for batch in consumer.poll(timeout_ms=500, max_records=records - got).values())
    assert got == records, f"{group} read {got} of {records} records of {topic}"
    consumer.commit()
    return consumer


def topic_row(html: str, topic: str) -> str:
    """The HTML of one topic's row on the topics page."""
    return html.split(f'<tr data-topic="{topic}"', 1)[1].split("<tr data-topic=", 1)[0]
