"""The heart of a consumer, free of Kafka: turn a batch of records into handled events and dead letters.

One database transaction per batch (fast), one savepoint per event (so one bad event rolls back alone),
the inbox checked and filled in the same transaction (a redelivered event changes nothing).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from django.db import DatabaseError, IntegrityError, InterfaceError, OperationalError, transaction

from . import envelope
from .envelope import Envelope, Poison
from .service import Service

log = logging.getLogger("eventbus")

# Errors that say "not now" rather than "never": the batch is retried, never dead-lettered.
TRANSIENT_ERRORS = (OperationalError, InterfaceError)


@dataclass(frozen=True)
class Record:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]]
    timestamp_ms: int = 0


@dataclass(frozen=True)
class DeadLetter:
    record: Record
    reason: str
    error: str


@dataclass
class BatchResult:
    handled: int = 0
    duplicates: int = 0
    ignored: int = 0
    dead: list[DeadLetter] = field(default_factory=list)
    by_type: dict[str, int] = field(default_factory=dict)
    handler_seconds: dict[str, float] = field(default_factory=dict)


def is_dead_letter_topic(topic: str) -> bool:
    return topic.endswith(".dlt")


class Dispatcher:
    def __init__(self, service: Service, max_attempts: int = 3):
        self.service = service
        self.max_attempts = max_attempts

    def decode(self, record: Record) -> Envelope | Poison:
        try:
            return envelope.decode(
                topic=record.topic,
                partition=record.partition,
                offset=record.offset,
                key=record.key,
                value=record.value,
                headers=record.headers,
            )
        except Poison as poison:
            return poison
        except Exception as exc:  # no input may crash a consumer
            return Poison("bad-envelope", f"{type(exc).__name__}: {exc}")

    def handle(self, records: list[Record]) -> BatchResult:
        """Apply a batch. Raises a TRANSIENT_ERRORS exception (nothing applied) when the database is away."""
        result = BatchResult()
        decoded = [(record, self.decode(record)) for record in records]
        ids = [item.id for _, item in decoded if isinstance(item, Envelope)]
        svc = self.service
        dedupe = svc.inbox is not None
        with transaction.atomic(using=svc.database):
            if svc.batch_started:
                svc.batch_started()
            seen = (
                {
                    str(i)
                    for i in svc.inbox.objects.using(svc.database)
                    .filter(group=svc.group, event_id__in=ids)
                    .values_list("event_id", flat=True)
                }
                if dedupe
                else set()
            )
            applied = []
            for record, item in decoded:
                if isinstance(item, Poison):
                    self._poison(record, item, result)
                    continue
                if item.id in seen:
                    result.duplicates += 1
                    continue
                handlers = svc.handlers_for(item.type)
                if not handlers:
                    result.ignored += 1
                    continue
                error = self._apply(item, handlers, result)
                if error is None:
                    if dedupe:
                        seen.add(item.id)
                        applied.append(svc.inbox(event_id=item.id, group=svc.group, event_type=item.type))
                    result.handled += 1
                    result.by_type[item.type] = result.by_type.get(item.type, 0) + 1
                elif not is_dead_letter_topic(record.topic):
                    result.dead.append(DeadLetter(record, "handler-error", error))
            if applied:
                svc.inbox.objects.using(svc.database).bulk_create(applied)
            if svc.before_commit:
                svc.before_commit()
        return result

    def _poison(self, record: Record, poison: Poison, result: BatchResult) -> None:
        if self.service.on_poison is not None:
            self.service.on_poison(record, poison)  # the dashboard records it; it never re-dead-letters
            return
        if is_dead_letter_topic(record.topic):
            result.ignored += 1
            return
        log.warning("dead-lettering %s[%s]@%s: %s", record.topic, record.partition, record.offset, poison)
        result.dead.append(DeadLetter(record, poison.reason, poison.detail))

    def _apply(self, event: Envelope, handlers, result: BatchResult) -> str | None:
        """Run the handlers in a savepoint, retrying a domain error; return the last error or None."""
        error = None
        for attempt in range(1, self.max_attempts + 1):
            started = time.perf_counter()
            try:
                with transaction.atomic(using=self.service.database):
                    for handler in handlers:
                        handler(event)
            except TRANSIENT_ERRORS:
                raise
            except IntegrityError as exc:
                error = f"IntegrityError: {exc}"
            except DatabaseError:
                raise
            except Exception as exc:
                error = f"{type(exc).__name__}: {exc}"
            else:
                elapsed = time.perf_counter() - started
                result.handler_seconds[event.type] = result.handler_seconds.get(event.type, 0.0) + elapsed
                log.info(
                    "handled %s subject=%s correlation=%s event=%s in %.1f ms",
                    event.type,
                    event.subject,
                    event.correlation_id,
                    event.id,
                    elapsed * 1000,
                    extra={
                        "event_type": event.type,
                        "event_id": event.id,
                        "subject": event.subject,
                        "correlation_id": event.correlation_id,
                        "group": self.service.group,
                    },
                )
                return None
            log.warning(
                "handler failed for %s %s (attempt %s/%s): %s", event.type, event.id, attempt, self.max_attempts, error
            )
        return error
