"""`publish()`: write an event to the owning app's outbox, inside the caller's transaction."""

from __future__ import annotations

import threading

from django.db import connections, transaction

from . import envelope
from .envelope import Envelope
from .events import Event
from .rows import insert_rows
from .service import service

_wakers: dict[str, threading.Event] = {}


def publish(
    event: Event,
    *,
    caused_by: Envelope | None = None,
    correlation_id: str | None = None,
    causation_id: str | None = None,
) -> Envelope:
    """Validate `event`, add it to its app's outbox and return the envelope it will travel in.

    Must run inside `transaction.atomic(using=<the app's database>)`: the event is committed with the
    write that caused it, or not at all.
    """
    owner = service(event.SOURCE)
    if not connections[owner.database].in_atomic_block:
        raise RuntimeError(
            f"publish({type(event).__name__}) must run inside transaction.atomic(using={owner.database!r}) "
            "so the event commits with the write that caused it"
        )
    data = event.to_data()
    message = envelope.encode(
        event_type=event.TYPE,
        source_app=event.SOURCE,
        subject=event.subject,
        data=data,
        correlation_id=correlation_id or (caused_by.correlation_id if caused_by else None),
        causation_id=caused_by.id if caused_by else causation_id,
    )
    row = owner.outbox(
        event_id=message.headers["ce_id"],
        event_type=event.TYPE,
        topic=message.topic,
        key=event.subject,
        headers=message.headers,
        value=message.value,
    )
    insert_rows([row], using=owner.database)
    _wake_after_commit(owner.name, owner.database)
    return Envelope(
        id=message.headers["ce_id"],
        type=event.TYPE,
        source=message.headers["ce_source"],
        subject=event.subject,
        time=None,
        data=data,
        correlation_id=message.headers["ce_correlationid"],
        causation_id=message.headers.get("ce_causationid"),
    )


class _Waker:
    """One callable per service, so a transaction that publishes many events wakes the relay once."""

    def __init__(self, service_name: str):
        self.service_name = service_name

    def __call__(self) -> None:
        wake_relays(self.service_name)


_after_commit: dict[str, _Waker] = {}


def _wake_after_commit(service_name: str, database: str) -> None:
    on_commit_once(_after_commit.setdefault(service_name, _Waker(service_name)), using=database)


def on_commit_once(callback, using: str) -> None:
    """`transaction.on_commit(callback)` unless this transaction already holds that very callback: a batch
    that publishes (or announces) many times runs it once. A savepoint that rolls back takes its
    registration with it, and the next call registers again."""
    if not any(entry[1] is callback for entry in connections[using].run_on_commit):
        transaction.on_commit(callback, using=using)


def register_waker(service_name: str, flag: threading.Event) -> None:
    _wakers[service_name] = flag


def wake_relays(service_name: str) -> None:
    """The service's relay sends at once instead of waiting for its next poll (in this process or another)."""
    flag = _wakers.get(service_name)
    if flag is not None:
        flag.set()
    else:
        from . import wakeup

        wakeup.notify(service_name)


def publish_raw(service_name: str, *, topic: str, key: bytes | None, value: bytes, headers: dict[str, str]) -> None:
    """Put an already-encoded message (e.g. a dead letter being replayed) in a service's outbox.

    `topic` is the physical topic. Must run inside that service's database transaction.
    """
    from .ids import uuid7

    owner = service(service_name)
    if not connections[owner.database].in_atomic_block:
        raise RuntimeError(f"publish_raw() must run inside transaction.atomic(using={owner.database!r})")
    owner.outbox.objects.using(owner.database).create(
        event_id=uuid7(),  # the outbox row's id; the message keeps its own ce_id
        event_type=headers.get("ce_type", "raw"),
        topic=RAW_TOPIC_PREFIX + topic,
        key=(key or b"").decode(errors="replace"),
        headers=headers,
        value=value,
    )
    _wake_after_commit(owner.name, owner.database)


RAW_TOPIC_PREFIX = "raw:"  # the relay sends these to the physical topic as is
