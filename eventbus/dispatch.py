"""The heart of a consumer, free of Kafka: turn a batch of records into handled events and dead letters.

One database transaction per batch (fast), one savepoint per event (so one bad event rolls back alone),
the inbox checked and filled in the same transaction (a redelivered event changes nothing). A run of
consecutive new events that share a handler goes to it in a single call and savepoint, and only if that
fails are those events applied one by one, with the guarantees above.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from django.db import DatabaseError, DataError, IntegrityError, InterfaceError, OperationalError, transaction

from . import envelope
from .chaos import Control
from .envelope import Envelope, Poison
from .rows import insert_rows, present_values
from .service import Service
from .unit_of_work import unit_of_work

log = logging.getLogger("eventbus")

# Errors that say "not now" rather than "never": the batch is retried, never dead-lettered.
TRANSIENT_ERRORS = (OperationalError, InterfaceError)
OUTAGE_SQLSTATES = {"25006"}  # read_only_sql_transaction: a standby, or a database set read-only


def raise_unless_the_event_is_at_fault(exc: DatabaseError) -> None:
    """Return when the event's own data made the database refuse the write (a value out of range, text it
    cannot store, a broken constraint): like any handler error, the event is retried, then dead-lettered
    with its reason, so it can neither stop the consumer nor come back with every restart. Re-raise anything
    else: an outage (as an OperationalError, which the runner retries) or a fault of ours."""
    if getattr(exc.__cause__, "sqlstate", None) in OUTAGE_SQLSTATES:
        raise OperationalError(f"the database refuses writes: {exc}") from exc
    if not isinstance(exc, (DataError, IntegrityError)):
        raise exc


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


@dataclass
class _Batch:
    seen: set[str]  # event ids applied before or earlier in this batch
    result: BatchResult
    inbox_rows: list = field(default_factory=list)


def is_dead_letter_topic(topic: str) -> bool:
    return topic.endswith(".dlt")


class Dispatcher:
    def __init__(self, service: Service, max_attempts: int = 3, chaos: Control | None = None):
        self.service = service
        self.max_attempts = max_attempts
        self.chaos = chaos  # the chaos switches this consumer obeys (eventbus/chaos.py), or None
        self.before_commit: Callable[[], None] | None = None  # runs at the end of each batch's transaction

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
        if self.chaos is not None:
            self.chaos.begin_batch()
        with unit_of_work(svc.database):
            batch = _Batch(
                seen=(
                    present_values(svc.inbox, "event_id", ids, using=svc.database, group=svc.group)
                    if svc.inbox is not None
                    else set()
                ),
                result=result,
            )
            run: list[tuple[Record, Envelope]] = []  # consecutive new events that share a handler
            run_handler = None
            for record, item in decoded:
                if isinstance(item, Poison):
                    self._apply_run(run_handler, run, batch)
                    run = []
                    self._poison(record, item, result)
                    continue
                if item.id in batch.seen:
                    result.duplicates += 1
                    continue
                if svc.inbox is not None:
                    batch.seen.add(item.id)  # a second copy later in this batch is a duplicate
                handler = svc.handler_for(item.type)
                if handler is None:
                    result.ignored += 1
                    continue
                if handler is not run_handler:
                    self._apply_run(run_handler, run, batch)
                    run, run_handler = [], handler
                run.append((record, item))
            self._apply_run(run_handler, run, batch)
            insert_rows(batch.inbox_rows, using=svc.database)
            if self.before_commit is not None:
                self.before_commit()
        return result

    def _apply_run(self, handler, run: list[tuple[Record, Envelope]], batch: _Batch) -> None:
        """Apply a run of events with their handler in one call and one savepoint; one by one if it fails
        (a run of one goes straight to the one-by-one path, with its retries)."""
        if not run:
            return
        if len(run) == 1:
            self._apply_one(handler, *run[0], batch)
            return
        events = [item for _, item in run]
        started = time.perf_counter()
        try:
            with transaction.atomic(using=self.service.database):
                if self.chaos is not None:
                    self.chaos.check(events)
                handler(events)
        except DatabaseError as exc:
            raise_unless_the_event_is_at_fault(exc)
            error = f"{type(exc).__name__}: {exc}"
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
        else:
            each = (time.perf_counter() - started) / len(events)
            for item in events:
                self._succeeded(item, each, batch)
            return
        log.warning("a run of %s events failed (%s); applying them one by one", len(events), error)
        for record, item in run:
            self._apply_one(handler, record, item, batch)

    def _apply_one(self, handler, record: Record, item: Envelope, batch: _Batch) -> None:
        error = self._apply(item, handler, batch)
        if error is not None and not is_dead_letter_topic(record.topic):
            batch.result.dead.append(DeadLetter(record, "handler-error", error))

    def _succeeded(self, event: Envelope, elapsed: float, batch: _Batch) -> None:
        svc, result = self.service, batch.result
        if svc.inbox is not None:
            batch.inbox_rows.append(svc.inbox(event_id=event.id, group=svc.group, event_type=event.type))
        result.handled += 1
        result.by_type[event.type] = result.by_type.get(event.type, 0) + 1
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
                "group": svc.group,
            },
        )

    def _poison(self, record: Record, poison: Poison, result: BatchResult) -> None:
        if self.service.on_poison is not None:
            self.service.on_poison(record, poison)  # the dashboard records it; it never re-dead-letters
            return
        if is_dead_letter_topic(record.topic):
            result.ignored += 1
            return
        log.warning("dead-lettering %s[%s]@%s: %s", record.topic, record.partition, record.offset, poison)
        result.dead.append(DeadLetter(record, poison.reason, poison.detail))

    def _apply(self, event: Envelope, handler, batch: _Batch) -> str | None:
        """Run the handler on the one event in a savepoint, retrying a domain error; return the last error or
        None."""
        error = None
        for attempt in range(1, self.max_attempts + 1):
            started = time.perf_counter()
            try:
                with transaction.atomic(using=self.service.database):
                    if self.chaos is not None:
                        self.chaos.check([event])
                    handler([event])
            except DatabaseError as exc:
                raise_unless_the_event_is_at_fault(exc)
                error = f"{type(exc).__name__}: {exc}"
            except Exception as exc:
                error = f"{type(exc).__name__}: {exc}"
            else:
                self._succeeded(event, time.perf_counter() - started, batch)
                return None
            log.warning(
                "handler failed for %s %s (attempt %s/%s): %s", event.type, event.id, attempt, self.max_attempts, error
            )
        return error
