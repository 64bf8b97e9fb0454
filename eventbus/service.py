"""A bounded app's wiring: its database, its outbox/inbox tables and the handlers of its consumer group.

Each app builds one `Service` in `<app>/service.py`; `settings.CONVEYOR_SERVICES` names them, so the
event bus finds them without importing any app by name.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache

from django.conf import settings
from django.utils.module_loading import import_string

from . import schemas
from .envelope import Envelope

# A handler takes a list of events (a batch of one is a list of one) and applies them in their order.
Handler = Callable[[list[Envelope]], None]
ALL_EVENTS = "*"  # a handler key that receives every event, dead letters included (the dashboard)


@dataclass
class Service:
    name: str
    database: str
    outbox: type
    inbox: type | None  # None: the service is idempotent by itself (e.g. by topic/partition/offset)
    lease: type
    # Event type (or ALL_EVENTS) -> its handler. A run of consecutive new events that share a handler goes
    # to it in one call and one savepoint; if that call raises, the dispatcher rolls it back and applies
    # the events one at a time, so a bad event is retried and dead-lettered alone.
    handlers: dict[str, Handler] = field(default_factory=dict)
    group_name: str = ""  # default conveyor.<name>
    # The consumer's chore between polls, at most every POLL_MS: what must happen even when no event comes
    # (announce coalesced stock levels, push the dashboard's frames and lag). Work that follows a batch goes
    # through eventbus.unit_of_work instead.
    on_idle: Callable[[], None] | None = None
    on_poison: Callable | None = None  # (record, poison): a reader of every topic records, never dead-letters

    @property
    def group(self) -> str:
        """The consumer group; the topic prefix keeps runs that share a broker apart, groups included."""
        return f"{settings.KAFKA_TOPIC_PREFIX}{self.group_name or 'conveyor.' + self.name}"

    def topics(self) -> list[str]:
        """The physical topics this service's consumer group reads."""
        if ALL_EVENTS in self.handlers:
            logical = schemas.all_topics()
            return sorted({schemas.topic_name(t) for t in logical} | {schemas.topic_name(t) + ".dlt" for t in logical})
        return sorted({schemas.topic_name(schemas.spec(t).topic) for t in self.handlers})

    def handler_for(self, event_type: str) -> Handler | None:
        return self.handlers.get(event_type) or self.handlers.get(ALL_EVENTS)


@cache
def service(name: str) -> Service:
    try:
        path = settings.CONVEYOR_SERVICES[name]
    except KeyError:
        raise LookupError(f"no service named {name!r}; known: {', '.join(settings.CONVEYOR_SERVICES)}") from None
    return import_string(path)
