"""Reading the dashboard's read model: what a browser gets on (re)connect and on a click.

A browser remembers the last `seq` it saw; `catch_up(since)` returns everything after it (the events, the
cards they touched) or, when it is too far behind or new, a whole snapshot that replaces its state.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta

from django.db.models import Count, Max, Q
from django.db.models.functions import TruncSecond
from django.utils import timezone

from .models import (
    MAIN_PATH,
    STAGES,
    TERMINAL,
    DeadLetter,
    EventLog,
    GroupLag,
    OrderCard,
    StageCount,
    TypeCounter,
)

DB = "dashboard"
CATCHUP_LIMIT = 1000  # further behind than this, a browser gets a snapshot instead of every missed event
SNAPSHOT_EVENTS = 200
SNAPSHOT_ACTIVE_CARDS = 2000
SNAPSHOT_DONE_CARDS = 60  # per final stage: the newest ones (the counts say how many there are)
DEAD_LETTERS_SHOWN = 200
VIOLATIONS_SHOWN = 200
THROUGHPUT_SECONDS = 60
TAIL_FIELDS = (
    "seq",
    "kind",
    "event_id",
    "event_type",
    "source",
    "subject",
    "order_id",
    "correlation_id",
    "causation_id",
    "time",
    "topic",
    "partition",
    "offset",
    "received_at",
)


def iso(value) -> str | None:
    return value.isoformat() if value else None


def app_of(source: str, topic: str) -> str:
    """`/conveyor/inventory` → inventory (undecodable records: the topic's first word)."""
    if source.startswith("/conveyor/"):
        return source.removeprefix("/conveyor/").split("/")[0]
    return topic.rsplit(".", 2)[0].split(".")[-1] if topic else ""


def event_row(entry) -> dict:
    """An EventLog row for the tail (no headers or payload: a click fetches those)."""
    get = entry.get if isinstance(entry, dict) else lambda name: getattr(entry, name)
    return {
        "seq": get("seq"),
        "kind": get("kind"),
        "id": get("event_id"),
        "type": get("event_type"),
        "app": app_of(get("source"), get("topic")),
        "source": get("source"),
        "subject": get("subject"),
        "order": get("order_id"),
        "corr": get("correlation_id"),
        "cause": get("causation_id"),
        "time": iso(get("time")),
        "topic": get("topic"),
        "partition": get("partition"),
        "offset": get("offset"),
        "received": iso(get("received_at")),
    }


def event_detail(seq: int) -> dict | None:
    entry = EventLog.objects.using(DB).filter(seq=seq).first()
    if entry is None:
        return None
    return {**event_row(entry), "headers": entry.headers, "payload": entry.payload}


def card_row(card: OrderCard) -> dict:
    return {
        "id": card.order_id,
        "stage": card.stage,
        "since": iso(card.stage_since),
        "placed": iso(card.placed_at),
        "total": card.total,
        "items": card.items,
        "events": card.events,
        "seq": card.last_seq,
        "violation": card.violation,
    }


def dead_letter_row(letter: DeadLetter) -> dict:
    return {
        "id": letter.pk,
        "seq": letter.seq,
        "reason": letter.reason,
        "error": letter.error[:1000],
        "topic": letter.original_topic,
        "partition": letter.original_partition,
        "offset": letter.original_offset,
        "group": letter.group,
        "dead_at": iso(letter.dead_at),
        "type": letter.event_type,
        "subject": letter.subject,
        "payload": letter.payload[:4000],
        "status": letter.status,
        "by": letter.status_by,
        "at": iso(letter.status_at),
        "replays": letter.replays,
    }


def lag_row(row: GroupLag) -> dict:
    return {
        "group": row.group,
        "lag": row.lag,
        "seconds_behind": round(row.seconds_behind, 1),
        "partitions": row.partitions,
        "history": row.history,
        "sampled_at": iso(row.sampled_at),
    }


def stage_counts() -> dict[str, int]:
    """Orders per stage, as the consumer keeps them (`StageCount`): seven rows, whatever the number of orders."""
    return dict.fromkeys(STAGES, 0) | dict(StageCount.objects.using(DB).values_list("stage", "orders"))


def counters(types=None) -> dict[str, dict]:
    rows = TypeCounter.objects.using(DB).all()
    rows = rows if types is None else rows.filter(pk__in=list(types))
    return {r.event_type: {"count": r.count, "dead": r.dead_letters} for r in rows}


def cards_for(order_ids) -> list[dict]:
    return [card_row(c) for c in OrderCard.objects.using(DB).filter(pk__in=list(order_ids)).order_by("pk")]


def dead_letters(ids=None) -> list[dict]:
    rows = DeadLetter.objects.using(DB).all()
    rows = rows.filter(pk__in=list(ids)) if ids is not None else rows.order_by("-seq")[:DEAD_LETTERS_SHOWN]
    return [dead_letter_row(d) for d in rows]


def lags() -> list[dict]:
    return [lag_row(r) for r in GroupLag.objects.using(DB).order_by("group")]


def max_seq() -> int:
    return EventLog.objects.using(DB).aggregate(m=Max("seq"))["m"] or 0


def throughput_history(seconds: int = THROUGHPUT_SECONDS) -> dict:
    """Events per second and type over the last minute, as seen by the dashboard consumer."""
    now = timezone.now().replace(microsecond=0)
    start = now - timedelta(seconds=seconds)
    series: dict[str, list[int]] = defaultdict(lambda: [0] * seconds)
    rows = (
        EventLog.objects.using(DB)
        .filter(received_at__gte=start, received_at__lt=now, kind=EventLog.Kind.EVENT)
        .annotate(second=TruncSecond("received_at"))
        .values("event_type", "second")
        .annotate(n=Count("seq"))
    )
    for row in rows:
        index = int((row["second"] - start).total_seconds())
        if 0 <= index < seconds:
            series[row["event_type"]][index] += row["n"]
    return {"start": int(start.timestamp()), "series": dict(series)}


def catch_up(since: int | None) -> dict:
    """Everything a browser needs after `since` (None: it knows nothing yet)."""
    top = max_seq()
    common = {
        "to_seq": top,
        "now": timezone.now().isoformat(),
        "stage_counts": stage_counts(),
        "counters": counters(),
        "dead_letters": dead_letters(),
        "lag": lags(),
    }
    if since is not None and 0 <= top - since <= CATCHUP_LIMIT:
        events = EventLog.objects.using(DB).filter(seq__gt=since).order_by("seq").values(*TAIL_FIELDS)
        cards = OrderCard.objects.using(DB).filter(last_seq__gt=since)
        return {
            "kind": "catchup",
            "since": since,
            "events": [event_row(e) for e in events],
            "cards": [card_row(c) for c in cards],
            **common,
        }
    recent = EventLog.objects.using(DB).order_by("-seq").values(*TAIL_FIELDS)[:SNAPSHOT_EVENTS]
    cards = newest_cards(MAIN_PATH[:-1], SNAPSHOT_ACTIVE_CARDS)
    for stage in sorted(TERMINAL):
        cards += newest_cards([stage], SNAPSHOT_DONE_CARDS)
    shown = {card.order_id for card in cards}
    cards += [card for card in violations() if card.order_id not in shown]
    return {
        "kind": "snapshot",
        "events": [event_row(e) for e in reversed(recent)],
        "cards": [card_row(c) for c in cards],
        "throughput": throughput_history(),
        **common,
    }


def newest_cards(stages, limit: int) -> list[OrderCard]:
    """The `limit` most recently moved cards in `stages`. One query per stage, each along the (stage,
    last_seq) index, then merged: one `stage IN (...) ORDER BY last_seq` query made SQLite walk every card
    by last_seq looking for the few active ones (180 ms at a million cards, for each new browser)."""
    cards: list[OrderCard] = []
    for stage in stages:
        cards += OrderCard.objects.using(DB).filter(stage=stage).order_by("-last_seq")[:limit]
    return sorted(cards, key=lambda card: card.last_seq, reverse=True)[:limit]


def violations(limit: int = VIOLATIONS_SHOWN) -> list[OrderCard]:
    """The newest cards whose events contradict the saga (dashboard/stages.py CONTRADICTIONS)."""
    return list(OrderCard.objects.using(DB).exclude(violation="").order_by("-last_seq")[:limit])


def journey(order_id: str) -> dict:
    """Every event of one order, oldest first: the saga as the dashboard saw it."""
    rows = (
        EventLog.objects.using(DB)
        .filter(Q(order_id=order_id) | Q(correlation_id=order_id) | Q(subject=order_id))
        .order_by("time", "seq")
        .values(*TAIL_FIELDS)[:500]
    )
    card = OrderCard.objects.using(DB).filter(order_id=order_id).first()
    return {"order": card_row(card) if card else None, "events": [event_row(r) for r in rows]}
