"""What a consumer does when Kafka no longer has the offset it committed (retention deleted records it had
not read yet), and when a partition has no committed offset at all (a new group).

A new group starts from the earliest record, as always. A lost offset is never skipped silently: by default
the consumer stops with an error saying what was lost and what to do (`conveyor_offsets_out_of_range_total`
counts it); with KAFKA_OFFSET_RESET=earliest-with-marker it goes on from the earliest record still there and
dead-letters a marker record (dlt_reason "offsets-skipped", dlt_skipped = how many offsets it never read).
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

from django.conf import settings
from kafka.errors import KafkaError, KafkaTimeoutError

from . import metrics

log = logging.getLogger("eventbus.consumer")
FAIL, EARLIEST_WITH_MARKER = "fail", "earliest-with-marker"


class OffsetsLost(RuntimeError):
    """The consumer stops: it would otherwise skip records it never read."""


def _partitions(exc) -> dict:
    """{TopicPartition: offset or None} from kafka-python's error (a dict of fetch offsets, or a set)."""
    found = exc.args[0] if exc.args else {}
    return dict(found) if isinstance(found, dict) else dict.fromkeys(found)


def start_from_earliest(runner, exc) -> None:
    assigned = runner.consumer.assignment()
    partitions = [tp for tp in _partitions(exc) if tp in assigned]
    if partitions:
        what = _fmt(partitions)
        log.info("%s: no committed offset yet for %s; starting from the earliest", runner.service.name, what)
        runner.consumer.seek_to_beginning(*partitions)


def handle_out_of_range(runner, exc) -> None:
    name, group = runner.service.name, runner.service.group
    assigned = runner.consumer.assignment()
    lost = {tp: offset for tp, offset in _partitions(exc).items() if tp in assigned}
    if not lost:
        return
    try:
        earliest = runner.consumer.beginning_offsets(list(lost))
    except KafkaError as exc:
        if not getattr(exc, "retriable", False) and not isinstance(exc, KafkaTimeoutError):
            raise
        log.warning("%s: offsets out of range, and the earliest offsets are not readable yet (%s)", name, exc)
        return  # the next poll meets the same error and tries again
    for tp in lost:
        metrics.offsets_out_of_range.labels(group, tp.topic).inc()
    described = ", ".join(
        f"{tp.topic}[{tp.partition}] at {offset} (the earliest left is {earliest.get(tp)})"
        for tp, offset in lost.items()
    )
    if settings.KAFKA_OFFSET_RESET != EARLIEST_WITH_MARKER:
        message = (
            f"{name}: group {group} committed offsets that Kafka no longer has: {described}. Retention deleted "
            "records this group never read, so it stops instead of skipping them. To go on from the earliest record "
            "and dead-letter a marker saying how many offsets were skipped, start it with "
            "KAFKA_OFFSET_RESET=earliest-with-marker; to recover the records, restore them from the producers' "
            "outboxes or a backup first. Longer topic retention (retention.ms) prevents this."
        )
        log.error(message)
        raise OffsetsLost(message)
    for tp, offset in lost.items():
        start = earliest.get(tp) or 0
        skipped = max(0, start - offset) if offset is not None else 0
        _send_marker(runner, tp, offset, start, skipped)
        metrics.offsets_skipped.labels(group, tp.topic).inc(skipped)
        log.error(
            "%s: %s[%s]: committed offset %s is gone; skipped %s offsets, going on from %s (marker on %s.dlt)",
            name,
            tp.topic,
            tp.partition,
            offset,
            skipped,
            start,
            tp.topic,
        )
        runner.consumer.seek(tp, start)


def _send_marker(runner, tp, offset, start, skipped) -> None:
    from . import kafka_io

    if runner.dlt_producer is None:
        runner.dlt_producer = kafka_io.make_producer(f"{runner.service.name}-dlt")
    group = runner.service.group
    value = {"skipped": skipped, "from_offset": offset, "to_offset": start, "group": group}
    headers = [
        ("dlt_reason", b"offsets-skipped"),
        ("dlt_error", f"retention deleted offsets {offset}..{start - 1} before group {group} read them".encode()),
        ("dlt_topic", tp.topic.encode()),
        ("dlt_partition", str(tp.partition).encode()),
        ("dlt_offset", str(offset).encode()),
        ("dlt_skipped", str(skipped).encode()),
        ("dlt_group", group.encode()),
        ("dlt_time", datetime.now(UTC).isoformat().encode()),
    ]
    # Sent and awaited before the seek: if the broker refuses it, the error stops the consumer (nothing skipped).
    future = runner.dlt_producer.send(tp.topic + ".dlt", key=None, value=json.dumps(value).encode(), headers=headers)
    future.get(timeout=30)


def _fmt(partitions) -> str:
    return ", ".join(sorted(f"{tp.topic}[{tp.partition}]" for tp in partitions))
