"""Personal data in the dashboard's stored events is kept PERSONAL_DATA_RETENTION_DAYS, then scrubbed.

An event older than that keeps its row (type, subject, order, time, topic, offset, and its payload without the
personal fields), so timelines and counts stay whole. A dead letter that old can no longer be replayed as it
was: its record is dropped and it is marked discarded by "retention".
"""

from __future__ import annotations

import json
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from .models import DeadLetter, EventLog

DB = "dashboard"
PERSONAL_FIELDS = ("email", "name", "address")
SCRUBBED = "[removed: personal data kept only PERSONAL_DATA_RETENTION_DAYS]"
BATCH = 500


def scrub_personal_data(*, days: int | None = None, now=None) -> int:
    """Scrub every stored event and dead letter older than `days`; returns how many rows changed."""
    days = days if days is not None else settings.PERSONAL_DATA_RETENTION_DAYS
    cutoff = (now or timezone.now()) - timedelta(days=days)
    return _scrub_events(cutoff) + _scrub_dead_letters(cutoff)


def _mentions_personal_data() -> Q:
    query = Q(kind=EventLog.Kind.POISON) & ~Q(payload=SCRUBBED)
    for field in PERSONAL_FIELDS:
        query |= Q(payload__contains=f'"{field}"')
    return query


def _scrub_events(cutoff) -> int:
    changed, after = 0, 0
    while True:
        rows = list(
            EventLog.objects.using(DB)
            .filter(_mentions_personal_data(), received_at__lt=cutoff, seq__gt=after)
            .order_by("seq")
            .only("seq", "kind", "payload")[:BATCH]
        )
        if not rows:
            return changed
        for row in rows:
            row.payload = SCRUBBED if row.kind == EventLog.Kind.POISON else scrub_text(row.payload)
        with transaction.atomic(using=DB):
            EventLog.objects.using(DB).bulk_update(rows, ["payload"])
        changed += len(rows)
        after = rows[-1].seq


def _scrub_dead_letters(cutoff) -> int:
    letters = DeadLetter.objects.using(DB).filter(created_at__lt=cutoff).exclude(payload=SCRUBBED, value=None)
    changed = 0
    for letter in letters.iterator():
        letter.payload, letter.value = SCRUBBED, None
        update = ["payload", "value"]
        if letter.status == DeadLetter.Status.NEW:
            letter.status, letter.status_by, letter.status_at = DeadLetter.Status.DISCARDED, "retention", timezone.now()
            update += ["status", "status_by", "status_at"]
        letter.save(using=DB, update_fields=update)
        changed += 1
    return changed


def scrub_text(payload: str) -> str:
    """The JSON payload without its personal fields (at any depth); text that is not JSON is removed whole."""
    try:
        data = json.loads(payload)
    except ValueError:
        return SCRUBBED
    return json.dumps(_without_personal(data), indent=2, sort_keys=True)


def _without_personal(value):
    if isinstance(value, dict):
        return {k: _without_personal(v) for k, v in value.items() if k not in PERSONAL_FIELDS}
    if isinstance(value, list):
        return [_without_personal(v) for v in value]
    return value
