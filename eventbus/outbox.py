"""`publish()`: write an event to the owning app's outbox, inside the caller's transaction."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connections

from . import envelope, schemas
from .envelope import Envelope
from .events import Event
from .rows import insert_rows
from .service import service
from .unit_of_work import after_commit

_wakers: dict[str, threading.Event] = {}


class _Claims(threading.local):
    def __init__(self) -> None:
        self.woken: dict[str, list] = {}  # service name -> a list that gets an item per wake-up


_claims = _Claims()


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
    after_commit(owner.database, wake_relays, owner.name)
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


def register_waker(service_name: str, flag: threading.Event) -> None:
    _wakers[service_name] = flag


@contextmanager
def claim_wakeups(service_name: str) -> Iterator[list]:
    """Within the block, this thread's commits to the service's outbox do not wake its relay: the thread
    relays them itself after the block. Yields a list that is not empty once such a commit happened."""
    woken: list = []
    _claims.woken[service_name] = woken
    try:
        yield woken
    finally:
        del _claims.woken[service_name]


def wake_relays(service_names: list[str]) -> None:
    """The services' relays send at once instead of waiting for their next poll (in this process or another)."""
    for service_name in service_names:
        claimed = _claims.woken.get(service_name)
        if claimed is not None:
            claimed.append(True)
            continue
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
    after_commit(owner.database, wake_relays, owner.name)


RAW_TOPIC_PREFIX = "raw:"  # the relay sends these to the physical topic as is


def physical_topic(outbox_topic: str) -> str:
    """Where the relay sends an outbox row: a catalogue topic with the run's prefix, or a raw one as is."""
    if outbox_topic.startswith(RAW_TOPIC_PREFIX):
        return outbox_topic.removeprefix(RAW_TOPIC_PREFIX)
    return schemas.topic_name(outbox_topic)
