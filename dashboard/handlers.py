"""The dashboard's consumer group reads every topic, dead-letter topics included, into the read model.

Handlers run inside the batch's transaction on the "dashboard" database. They are idempotent by the
record's (topic, partition, offset), so a redelivered batch changes nothing, while a dead letter or a
replay (same `ce_id`, another record) is still recorded. What they write is handed to the live feed only
when the transaction commits.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

import orjson
from django.db import IntegrityError, transaction
from django.utils import timezone

from eventbus import strict_json
from eventbus.dispatch import Record, is_dead_letter_topic
from eventbus.envelope import Envelope, Poison
from eventbus.rows import add_to_rows, insert_rows, locked_rows, present_keys, present_values, update_rows
from eventbus.service import ALL_EVENTS
from eventbus.unit_of_work import after_commit

from . import live_feed
from .models import DeadLetter, EventLog, OrderCard, StageCount, TypeCounter
from .stages import fact_for, should_move, stage_for, violation

log = logging.getLogger("dashboard")
DB = "dashboard"
POISON_TYPE = "(undecodable)"
CARD_FIELDS = [
    "stage",
    "stage_since",
    "placed_at",
    "total",
    "items",
    "events",
    "last_seq",
    "facts",
    "violation",
    "updated_at",
]


PRETTY = orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS


def pretty(data) -> str:
    """An event's data as the tail shows it: indented, keys sorted. Written by orjson, it is the text of
    `json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False)` for the JSON a decoded event carries
    (strict_json's: string keys, integers within 2**53, no NaN; only a float's exponent is written `1e16`, not
    `1e+16`). The stdlib's indented writer is pure Python: 16 % of the dashboard consumer's busy samples at the
    saga's peak, 11 µs for an order against orjson's 0.3."""
    return orjson.dumps(data, option=PRETTY, default=str).decode()


def pretty_lenient(data) -> str:
    """`pretty` for what the stdlib's reader accepted from an undecodable record (NaN, integers of any size)."""
    return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False, default=str)


def order_id_of(event: Envelope) -> str:
    """The order an event belongs to: its `order_id`, else the correlation id (the order that started it)."""
    data = event.data if isinstance(event.data, dict) else {}
    order_id = data.get("order_id")
    return str(order_id) if order_id else (event.correlation_id or "")


def _position(event: Envelope) -> tuple[str, int, int]:
    return (
        event.topic or "",
        event.partition if event.partition is not None else -1,
        event.offset if event.offset is not None else -1,
    )


def _entry(event: Envelope) -> EventLog:
    topic, partition, offset = _position(event)
    return EventLog(
        topic=topic,
        partition=partition,
        offset=offset,
        kind=EventLog.Kind.DEAD_LETTER if is_dead_letter_topic(topic) else EventLog.Kind.EVENT,
        event_id=event.id,
        event_type=event.type,
        source=event.source,
        subject=event.subject or "",
        order_id=order_id_of(event),
        correlation_id=event.correlation_id or "",
        causation_id=event.causation_id or "",
        time=event.time,
        headers=dict(event.headers),
        payload=pretty(event.data),
    )


def record_events(events: list[Envelope]) -> None:
    """Events into the read model in a handful of statements. Each record is logged once (by topic, partition
    and offset), and each event counted once (by its `ce_id`): a replayed dead letter or a duplicate shows in
    the tail as the record it is, but moves no count and no card a second time."""
    known = present_keys(EventLog, ("topic", "partition", "offset"), map(_position, events), using=DB)
    fresh = []
    for event in events:
        if _position(event) not in known:
            known.add(_position(event))  # the same record twice in one batch counts once
            fresh.append(event)
    if not fresh:
        return
    entries = [_entry(e) for e in fresh]
    counted_before = present_values(
        EventLog, "event_id", [e.event_id for e in entries if e.kind == EventLog.Kind.EVENT], using=DB, kind="event"
    )
    insert_rows(entries, using=DB, learn_pks=True)  # each entry learns its seq
    pairs, counted = list(zip(entries, fresh, strict=True)), []
    for entry, event in pairs:
        if entry.kind == EventLog.Kind.DEAD_LETTER:
            _dead_letter_of(entry, event)
            counted.append((entry, event))
        elif entry.event_id not in counted_before:
            counted_before.add(entry.event_id)
            counted.append((entry, event))
    _count([entry for entry, _ in counted])
    _move_cards([(entry, event) for entry, event in counted if entry.kind != EventLog.Kind.DEAD_LETTER])
    for entry in entries:
        after_commit(DB, live_feed.feed.note, entry)


def _dead_letter_of(entry: EventLog, event: Envelope) -> None:
    # the value on the wire is the JSON data as the bus's writer produced it (the key is the subject)
    key = event.subject.encode() if event.subject else None
    _record_dead_letter(entry, event.headers, key=key, value=strict_json.dumps(event.data))


def record_poison(record: Record, poison: Poison) -> None:
    """Service.on_poison: an undecodable record is shown in the tail (and as a dead letter on a .dlt topic).

    Called in the batch's transaction without a savepoint of its own, so it takes one and never raises.
    """
    try:
        with transaction.atomic(using=DB):
            _record_poison(record, poison)
    except IntegrityError:
        pass  # already recorded (redelivery)
    except Exception:
        log.exception(
            "could not record the undecodable record %s[%s]@%s", record.topic, record.partition, record.offset
        )


def _record_poison(record: Record, poison: Poison) -> None:
    headers = {name: _text(value) for name, value in record.headers or ()}
    dead = is_dead_letter_topic(record.topic)
    if EventLog.objects.using(DB).filter(topic=record.topic, partition=record.partition, offset=record.offset).exists():
        return
    value = record.value or b""
    try:
        payload = pretty_lenient(json.loads(value))
    except ValueError:
        payload = _text(value)
    entry = EventLog.objects.using(DB).create(
        kind=EventLog.Kind.DEAD_LETTER if dead else EventLog.Kind.POISON,
        event_id=headers.get("ce_id", "")[:64],
        event_type=(headers.get("ce_type") or POISON_TYPE)[:200],
        source=headers.get("ce_source", "")[:200],
        subject=(headers.get("ce_subject") or _text(record.key or b""))[:200],
        order_id=headers.get("ce_correlationid", "")[:64],
        correlation_id=headers.get("ce_correlationid", "")[:64],
        causation_id=headers.get("ce_causationid", "")[:64],
        time=_parse_time(headers.get("ce_time")) or _record_time(record),
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        headers={**headers, "dashboard_poison": f"{poison.reason}: {poison.detail}"[:2000]},
        payload=payload,
    )
    _count([entry])
    if dead:
        _record_dead_letter(entry, headers, key=record.key, value=value)
    after_commit(DB, live_feed.feed.note, entry)


def _record_dead_letter(entry: EventLog, headers: dict[str, str], *, key: bytes | None, value: bytes) -> None:
    partition, offset = headers.get("dlt_partition", ""), headers.get("dlt_offset", "")
    DeadLetter.objects.using(DB).create(
        seq=entry.seq,
        dlt_topic=entry.topic,
        reason=headers.get("dlt_reason", "")[:100],
        error=headers.get("dlt_error", ""),
        original_topic=headers.get("dlt_topic") or entry.topic.removesuffix(".dlt"),
        original_partition=int(partition) if partition.lstrip("-").isdigit() else None,
        original_offset=int(offset) if offset.lstrip("-").isdigit() else None,
        group=headers.get("dlt_group", "")[:100],
        dead_at=_parse_time(headers.get("dlt_time")) or timezone.now(),
        event_type=entry.event_type,
        subject=entry.subject,
        key=key,
        value=value,
        headers={k: v for k, v in headers.items() if not k.startswith("dlt_")},
        payload=entry.payload,
    )


def _count(entries: list[EventLog]) -> None:
    """Add a batch's entries to their types' counters: prepared UPDATEs, a row created for a new type."""
    amounts: dict[str, dict[str, int]] = {}  # event type -> counter field -> entries
    last_seen = {}
    for entry in entries:
        field = "dead_letters" if entry.kind == EventLog.Kind.DEAD_LETTER else "count"
        by_field = amounts.setdefault(entry.event_type, {})
        by_field[field] = by_field.get(field, 0) + 1
        last_seen[entry.event_type] = entry.received_at
    for event_type in sorted(amounts):  # in type order, so two consumer copies lock the rows alike
        for field, added in amounts[event_type].items():
            _add_creating_rows(TypeCounter, field, {event_type: added})
    update_rows(
        [TypeCounter(event_type=t, last_seen=at) for t, at in sorted(last_seen.items())], ["last_seen"], using=DB
    )


def _move_cards(moves: list[tuple[EventLog, Envelope]]) -> None:
    """Each order event moves its order's card (creating it at the first stage event); one read, two writes,
    and one UPDATE per stage whose count changed."""
    wanted = {order_id_of(event) for _, event in moves} - {""}
    if not wanted:
        return
    cards = {c.order_id: c for c in locked_rows(OrderCard, wanted, using=DB)}
    existing, created = set(cards), {}
    stage_before = {order_id: card.stage for order_id, card in cards.items()}
    for entry, event in moves:
        order_id, target = order_id_of(event), stage_for(event.type)
        card = cards.get(order_id)
        if not order_id or (card is None and target is None):
            continue  # not an order event (e.g. a stock level), or an order event before the order is known
        if card is None:
            card = cards[order_id] = created[order_id] = OrderCard(
                order_id=order_id, stage=target, stage_since=event.time, events=0, last_seq=entry.seq
            )
        elif target is not None and should_move(card.stage, target):
            card.stage, card.stage_since = target, event.time
        if target == "placed":
            placed = event.data
            card.placed_at = event.time
            card.total = str(placed.get("total", ""))[:32]
            card.items = sum(int(line.get("quantity", 0)) for line in placed.get("lines", []) if isinstance(line, dict))
        card.events += 1
        card.last_seq = max(card.last_seq, entry.seq)
        card.facts |= fact_for(event.type)
        card.violation = card.violation or violation(card.facts)
    insert_rows(created.values(), using=DB)
    update_rows([cards[o] for o in existing], CARD_FIELDS, using=DB)
    moved: dict[str, int] = {}
    for order_id, card in cards.items():
        before = stage_before.get(order_id)
        if card.stage != before:
            moved[card.stage] = moved.get(card.stage, 0) + 1
            if before is not None:
                moved[before] = moved.get(before, 0) - 1
    _add_to_stage_counts(moved)


def _add_to_stage_counts(moved: dict[str, int]) -> None:
    """Apply a batch's moves to the stage counts: one prepared UPDATE per stage that changed, in stage
    order (two consumer copies lock the rows in the same order)."""
    _add_creating_rows(StageCount, "orders", moved)


def _add_creating_rows(model, field: str, amounts: dict[str, int]) -> None:
    """`add_to_rows`, creating the rows that do not exist yet (a new event type, a new database, a table
    emptied by hand); `ignore_conflicts`, as a second consumer copy may create the same row meanwhile."""
    missing = add_to_rows(model, field, amounts, using=DB)
    if missing:
        model.objects.using(DB).bulk_create([model(pk=key) for key in missing], ignore_conflicts=True)
        add_to_rows(model, field, {key: amounts[key] for key in missing}, using=DB)


def _text(raw: bytes) -> str:
    return bytes(raw).decode("utf-8", errors="replace") if isinstance(raw, (bytes, bytearray)) else str(raw)


def _parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _record_time(record: Record) -> datetime:
    if record.timestamp_ms:
        return datetime.fromtimestamp(record.timestamp_ms / 1000, tz=UTC)
    return timezone.now()


HANDLERS = {ALL_EVENTS: record_events}
