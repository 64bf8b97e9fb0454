"""Retention: inbox rows are pruned after INBOX_RETENTION_DAYS (never inside it, so a redelivered event is
still skipped), and personal data leaves the dashboard's stored events after PERSONAL_DATA_RETENTION_DAYS
while the events themselves stay."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone

from dashboard.models import DeadLetter, EventLog
from dashboard.retention import SCRUBBED
from dashboard.tests.factories import dead_lettered, new_order_id, record
from eventbus.dispatch import Dispatcher
from eventbus.service import Service, service
from eventbus.tasks import prune_inboxes
from shop.models import InboxMessage, OutboxMessage, RelayLease

pytestmark = pytest.mark.django_db(databases=["default", "shop", "inventory", "shipping", "dashboard"])
PLACED = "conveyor.shop.order.placed.v1"


def _counting_service(applied: list) -> Service:
    """A consumer group with the shop's inbox whose handler counts what it applies."""
    return Service(
        name="retention-test",
        database="shop",
        outbox=OutboxMessage,
        inbox=InboxMessage,
        lease=RelayLease,
        handlers={PLACED: lambda events: applied.extend(event.id for event in events)},
    )


def _age_inbox(days: float) -> None:
    InboxMessage.objects.using("shop").update(handled_at=timezone.now() - timedelta(days=days))


def test_inbox_rows_inside_the_window_stay_and_a_redelivery_is_still_skipped(settings):
    settings.INBOX_RETENTION_DAYS = 30
    applied = []
    svc = _counting_service(applied)
    placed = record("placed", new_order_id())
    assert Dispatcher(svc).handle([placed]).handled == 1
    _age_inbox(29)
    assert prune_inboxes() == 0
    again = Dispatcher(svc).handle([placed])  # Kafka redelivers it (a crash before the offset commit)
    assert again.duplicates == 1 and again.handled == 0 and len(applied) == 1


def test_inbox_rows_older_than_the_window_are_pruned(settings):
    settings.INBOX_RETENTION_DAYS = 30
    svc = _counting_service([])
    old, recent = record("placed", new_order_id()), record("placed", new_order_id())
    Dispatcher(svc).handle([old])
    _age_inbox(31)
    Dispatcher(svc).handle([recent])
    assert prune_inboxes() == 1
    assert InboxMessage.objects.using("shop").count() == 1


def test_an_inbox_window_not_longer_than_kafka_retention_is_refused(monkeypatch):
    import importlib

    import config.settings

    monkeypatch.setenv("INBOX_RETENTION_DAYS", "7")
    with pytest.raises(ImproperlyConfigured, match="must be longer than Kafka's retention"):
        importlib.reload(config.settings)
    monkeypatch.delenv("INBOX_RETENTION_DAYS")
    importlib.reload(config.settings)


def test_personal_data_leaves_old_events_and_dead_letters_and_the_events_stay(settings):
    from dashboard.retention import scrub_personal_data

    settings.PERSONAL_DATA_RETENTION_DAYS = 30
    dashboard = Dispatcher(service("dashboard"))
    old_order, new_order = new_order_id(), new_order_id()
    old = record("placed", old_order)  # email a@example.com, name Ada, address 1 Loop
    dashboard.handle([old, dead_lettered(old)])
    EventLog.objects.using("dashboard").update(received_at=timezone.now() - timedelta(days=31))
    DeadLetter.objects.using("dashboard").update(created_at=timezone.now() - timedelta(days=31))
    dashboard.handle([record("placed", new_order)])

    assert scrub_personal_data() == 3  # two old events (the record and its dead letter) and the dead letter
    events = {e.order_id + e.kind: e for e in EventLog.objects.using("dashboard").all()}
    assert len(events) == 3  # every event is still there
    kept = json.loads(events[old_order + "event"].payload)
    assert kept["order_id"] == old_order and kept["lines"]
    assert not {"email", "name", "address"} & set(kept)
    old_payloads = events[old_order + "event"].payload + events[old_order + "dead-letter"].payload
    assert "a@example.com" not in old_payloads and "1 Loop" not in old_payloads
    assert "a@example.com" in events[new_order + "event"].payload  # inside the window: untouched
    letter = DeadLetter.objects.using("dashboard").get()
    assert letter.payload == SCRUBBED and letter.value is None
    assert letter.status == "discarded" and letter.status_by == "retention"
    assert scrub_personal_data() == 0  # nothing left to scrub
