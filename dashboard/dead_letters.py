"""What staff do about dead letters: replay (the original record back on its original topic, through the
dashboard's outbox) or discard. Both are recorded with who and when, and pushed to every open dashboard."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from eventbus.outbox import publish_raw
from eventbus.unit_of_work import after_commit

from . import live_feed, read_model
from .models import DeadLetter, OperatorLog

DB = "dashboard"


def replay(ids, user) -> list[DeadLetter]:
    """Put each dead letter's original value, key and headers (without dlt_*) back on its original topic."""
    done = []
    with transaction.atomic(using=DB):
        for letter in DeadLetter.objects.using(DB).select_for_update().filter(pk__in=list(ids)).order_by("seq"):
            if letter.status == DeadLetter.Status.DISCARDED or not letter.original_topic:
                continue
            publish_raw(
                "dashboard",
                topic=letter.original_topic,
                key=bytes(letter.key) if letter.key is not None else None,
                value=bytes(letter.value or b""),
                headers={k: v for k, v in letter.headers.items() if not k.startswith("dlt_")},
            )
            _mark(letter, DeadLetter.Status.REPLAYED, user)
            letter.replays += 1
            letter.save(using=DB)
            done.append(letter)
        if done:
            OperatorLog.objects.using(DB).create(
                username=done[0].status_by,
                action="replay-dead-letters",
                target=", ".join(sorted({d.original_topic for d in done})),
                detail={
                    "dead_letters": [d.pk for d in done],
                    "records": [[d.original_topic, d.original_partition, d.original_offset] for d in done],
                },
            )
        for letter in done:
            after_commit(DB, _push, letter)
    return done


def discard(ids, user) -> list[DeadLetter]:
    done = []
    with transaction.atomic(using=DB):
        for letter in DeadLetter.objects.using(DB).select_for_update().filter(pk__in=list(ids)):
            if letter.status != DeadLetter.Status.NEW:
                continue
            _mark(letter, DeadLetter.Status.DISCARDED, user)
            letter.save(using=DB)
            done.append(letter)
        for letter in done:
            after_commit(DB, _push, letter)
    return done


def _mark(letter: DeadLetter, status: str, user) -> None:
    letter.status = status
    letter.status_by = getattr(user, "get_username", lambda: str(user))() or ""
    letter.status_at = timezone.now()


def _push(letters: list[DeadLetter]) -> None:
    if letters:
        live_feed.send_frame({"kind": "dead_letters", "dead_letters": [read_model.dead_letter_row(d) for d in letters]})
