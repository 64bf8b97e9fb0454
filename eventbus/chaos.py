"""Chaos switches: an operator makes a running consumer misbehave on purpose, to watch the retries, the dead
letters and the lag that follow. Off unless `settings.CHAOS_ENABLED` (DJANGO_DEBUG=1 or CONVEYOR_CHAOS=1).

The control channel is Redis, one key per switch, each with a time to live: a switch ends itself when its
time is up, even if nobody turns it off and whatever becomes of the process that set it. Per service:

- `pause`: its consumer pauses every partition it holds (it stays in its group, so nothing rebalances),
  and resumes when the switch ends;
- `slow`: every event it handles costs `delay_ms` more (the consumer waits after each batch);
- `fail`: the next `count` events of `event_type` fail in the handler on every attempt, so they are
  retried, then dead-lettered. The count is shared by every copy of the service (a Redis counter).

A consumer reads its service's switches at most every REFRESH_SECONDS, one round trip for the three, so a
switch takes effect within about a second; nothing is read when chaos is off. Redis being away never
stops a consumer: it behaves as if no switch were on, and says so once.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field

import orjson
import redis
from django.conf import settings
from redis.backoff import NoBackoff
from redis.retry import Retry

from .envelope import Envelope

log = logging.getLogger("eventbus.chaos")
KINDS = ("pause", "slow", "fail")
REFRESH_SECONDS = 1.0
MAX_SECONDS = 30 * 60  # the longest a switch may stay on
MAX_DELAY_MS = 10_000
MAX_FAILURES = 1_000
# Take one unit of a `fail` switch's count; -1 once it is spent or the switch has ended (DECR alone would
# bring an ended switch's counter back, without a time to live).
_TAKE_ONE = "if redis.call('exists', KEYS[1]) == 1 then return redis.call('decr', KEYS[1]) end return -1"


class ChaosFailure(Exception):
    """Raised in place of a handler, by a `fail` switch."""


@dataclass(frozen=True)
class Switch:
    service: str
    kind: str  # one of KINDS
    until: float  # epoch seconds; the key's time to live ends it then
    by: str = ""
    delay_ms: int = 0  # slow
    event_type: str = ""  # fail
    count: int = 0  # fail: how many events were to fail
    left: int | None = field(default=None, compare=False)  # fail: how many are still to fail

    @property
    def seconds_left(self) -> int:
        return max(0, round(self.until - time.time()))

    def describe(self) -> str:
        if self.kind == "pause":
            return "paused"
        if self.kind == "slow":
            return f"slowed by {self.delay_ms} ms per event"
        left = self.count if self.left is None else self.left
        return f"failing the next {left} of {self.count} {self.event_type}"


def enabled() -> bool:
    return bool(getattr(settings, "CHAOS_ENABLED", False))


def _client() -> redis.Redis:
    return redis.Redis.from_url(
        settings.REDIS_URL, socket_connect_timeout=1, socket_timeout=1, retry=Retry(NoBackoff(), 0)
    )


def _key(service: str, kind: str) -> str:
    return f"conveyor:{settings.KAFKA_TOPIC_PREFIX}chaos:{service}:{kind}"


def _left_key(service: str) -> str:
    return _key(service, "fail") + ":left"


def turn_on(switch: Switch) -> Switch:
    """Store a switch (replacing the service's switch of the same kind); it ends itself at `switch.until`."""
    ttl_ms = max(1, int((switch.until - time.time()) * 1000))
    value = orjson.dumps({k: v for k, v in asdict(switch).items() if k != "left"})
    with _client().pipeline(transaction=True) as pipe:
        pipe.set(_key(switch.service, switch.kind), value, px=ttl_ms)
        if switch.kind == "fail":
            pipe.set(_left_key(switch.service), switch.count, px=ttl_ms)
        pipe.execute()
    return switch


def turn_off(*, service: str, kind: str) -> bool:
    """End a switch now; False if it was not on."""
    keys = [_key(service, kind)] + ([_left_key(service)] if kind == "fail" else [])
    return bool(_client().delete(*keys))


def switches(services: list[str], client: redis.Redis | None = None) -> list[Switch]:
    """The switches on now for these services."""
    if not services:
        return []
    keys = [k for s in services for k in (*(_key(s, kind) for kind in KINDS), _left_key(s))]
    values = (client or _client()).mget(keys)
    found, now = [], time.time()
    for i in range(0, len(values), len(KINDS) + 1):
        *raw, left = values[i : i + len(KINDS) + 1]
        for value in raw:
            if value is None:
                continue
            try:
                data = orjson.loads(value)
                if data["until"] <= now:
                    continue
                if data["kind"] == "fail":
                    data["left"] = max(0, int(left)) if left is not None else 0
                found.append(Switch(**data))
            except (ValueError, TypeError, KeyError) as exc:  # written by hand, or by another version
                log.warning(
                    "a chaos switch in Redis is not one (%s: %s); ignoring it: %r", type(exc).__name__, exc, value
                )
    return found


class Control:
    """What one consumer obeys: its service's switches, read again at most every REFRESH_SECONDS."""

    def __init__(self, service: str):
        self.service = service
        self.on: dict[str, Switch] = {}
        self._client: redis.Redis | None = None
        self._read_at = 0.0
        self._unreachable_said = False
        self._decided: dict[str, bool] = {}  # event id -> doomed, for the batch in hand

    def refresh(self) -> None:
        now = time.monotonic()
        if now - self._read_at < REFRESH_SECONDS:
            return
        self._read_at = now
        try:
            if self._client is None:
                self._client = _client()
            current = {s.kind: s for s in switches([self.service], self._client)}
            self._unreachable_said = False
        except redis.RedisError as exc:
            if not self._unreachable_said:
                log.warning(
                    "%s: cannot read the chaos switches (%s: %s); obeying none until Redis at REDIS_URL answers",
                    self.service,
                    type(exc).__name__,
                    exc,
                )
                self._unreachable_said = True
            current = {}
        for kind in set(current) | set(self.on):
            before, after = self.on.get(kind), current.get(kind)
            if after is not None and (before is None or before.until != after.until):
                log.warning(
                    "%s: chaos switch on: %s for %s s (by %s)",
                    self.service,
                    after.describe(),
                    after.seconds_left,
                    after.by or "?",
                )
            elif after is None:
                log.warning("%s: chaos switch off: %s", self.service, before.describe())
        self.on = current

    @property
    def paused(self) -> bool:
        return "pause" in self.on

    def delay_seconds(self, events: int) -> float:
        """How long to wait after a batch of `events` while a `slow` switch is on (never past its end)."""
        slow = self.on.get("slow")
        if slow is None:
            return 0.0
        return max(0.0, min(events * slow.delay_ms / 1000, slow.until - time.time()))

    def begin_batch(self) -> None:
        """Forget the fates drawn for the last batch: an event delivered again (a dead letter replayed) is a
        new draw, doomed only if the count is not spent."""
        self._decided.clear()

    def check(self, events: list[Envelope]) -> None:
        """Raise ChaosFailure if one of these events is doomed by a `fail` switch. Each event's fate is drawn
        once per batch (one unit of the shared count) and kept, so its retries fail too."""
        fail = self.on.get("fail")
        if fail is None:
            return
        for event in events:
            if event.type != fail.event_type:
                continue
            doomed = self._decided.get(event.id)
            if doomed is None:
                doomed = self._draw(fail)
                self._decided[event.id] = doomed
            if doomed:
                raise ChaosFailure(
                    f"chaos switch: the next {fail.count} {fail.event_type} events fail (turned on by "
                    f"{fail.by or '?'}); event {event.id} is one of them"
                )

    def _draw(self, fail: Switch) -> bool:
        try:
            return self._client.eval(_TAKE_ONE, 1, _left_key(self.service)) >= 0
        except redis.RedisError:
            return False
