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


@pytest.fixture
def resetter_client():
    user = User.objects.create_user("resetter", password="pw", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="reset_offsets", content_type__app_label="dashboard"))
    client = Client()
    client.force_login(user)
    return client


def placed(n: int, sku: str = "MUG") -> list[str]:
    return [kafka_helpers.send_placed(sku) for _ in range(n)]


def commit_group(group: str, topic: str, records: int, keep_open: bool = False):
    """A real consumer group that read `records` records of `topic` and committed; closed unless keep_open."""
    import time

    consumer = kafka_io.make_consumer(group, "viewer-test")
    consumer.subscribe([topic])
    got = 0
    deadline = time.monotonic() + 60
    while got < records and time.monotonic() < deadline:
        got += sum(len(batch) for batch in consumer.poll(timeout_ms=500, max_records=records - got).values())
    assert got == records, f"{group} read {got} of {records} records of {topic}"
    consumer.commit()
    if keep_open:
        return consumer
    consumer.close()
    return None


def topic_row(html: str, topic: str) -> str:
    """The HTML of one topic's row on the topics page."""
    return html.split(f'<tr data-topic="{topic}"', 1)[1].split("<tr data-topic=", 1)[0]
