"""Chaos switches from the service map: check what staff asked for, turn it on or off through the event
bus's control channel (eventbus/chaos.py), and record who did it in the operator log. Every refusal says
why and what to do, and changes nothing."""

from __future__ import annotations

import time
from dataclasses import dataclass

import redis
from django.conf import settings

from eventbus import chaos, schemas
from eventbus.service import ALL_EVENTS, service

from ..models import OperatorLog

DB = "dashboard"
PERMISSION = "dashboard.use_chaos"
DEFAULT_MINUTES = 5
OFF_MESSAGE = (
    "Chaos switches are off here. They are for development and rehearsals: start the stack with "
    "DJANGO_DEBUG=1 or CONVEYOR_CHAOS=1 to use them. Nothing was changed."
)
PERMISSION_MESSAGE = (
    "Chaos switches need the permission “Can turn chaos switches on and off” (dashboard.use_chaos). "
    "Ask an administrator to grant it in /admin/. Nothing was changed."
)
REDIS_MESSAGE = "Redis did not answer ({error}); check that it runs at REDIS_URL and try again. Nothing was changed."


class Refused(ValueError):
    """A switch that cannot be set as asked; the message says why and what to do."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class SwitchView:
    service: str
    kind: str
    description: str
    seconds_left: int
    by: str


def enabled() -> bool:
    return chaos.enabled()


def services() -> list[str]:
    return list(settings.CONVEYOR_SERVICES)


def event_types(name: str) -> list[str]:
    """The event types a `fail` switch can target on this service: those its handlers take."""
    handled = service(name).handlers
    return sorted(schemas.catalogue()) if ALL_EVENTS in handled else sorted(handled)


def switches_on() -> list[SwitchView]:
    """The switches on now, for the map (empty while chaos is off or Redis is away)."""
    if not chaos.enabled():
        return []
    try:
        found = chaos.switches(services())
    except redis.RedisError:
        return []
    return [SwitchView(s.service, s.kind, s.describe(), s.seconds_left, s.by) for s in found]


def _number(data, name: str, low: int, high: int, default: int | None = None) -> int:
    raw = (data.get(name) or "").strip()
    if not raw and default is not None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise Refused(f"{name}: give a whole number from {low} to {high}, not {raw!r}") from None
    if not low <= value <= high:
        raise Refused(f"{name}: give a whole number from {low} to {high}, not {value}")
    return value


def _service_and_kind(data) -> tuple[str, str]:
    name, kind = (data.get("service") or "").strip(), (data.get("kind") or "").strip()
    if name not in services():
        raise Refused(f"service: choose one of {', '.join(services())}, not {name!r}")
    if kind not in chaos.KINDS:
        raise Refused(f"kind: choose one of {', '.join(chaos.KINDS)}, not {kind!r}")
    return name, kind


def _check_allowed(user) -> None:
    if not chaos.enabled():
        raise Refused(OFF_MESSAGE, status=403)
    if not user.has_perm(PERMISSION):
        raise Refused(PERMISSION_MESSAGE, status=403)


def turn_on(*, user, data) -> chaos.Switch:
    """Turn on the switch described by the form `data` (service, kind, minutes, and delay_ms for `slow`,
    event_type and count for `fail`). Raises Refused."""
    _check_allowed(user)
    name, kind = _service_and_kind(data)
    minutes = _number(data, "minutes", 1, chaos.MAX_SECONDS // 60, DEFAULT_MINUTES)
    params: dict = {}
    if kind == "slow":
        params["delay_ms"] = _number(data, "delay_ms", 1, chaos.MAX_DELAY_MS)
    if kind == "fail":
        event_type = (data.get("event_type") or "").strip()
        if event_type not in event_types(name):
            handled = ", ".join(event_types(name))
            raise Refused(f"event_type: {name} handles {handled}; {event_type or 'nothing'!r} is not one of them")
        params.update(event_type=event_type, count=_number(data, "count", 1, chaos.MAX_FAILURES))
    switch = chaos.Switch(service=name, kind=kind, until=time.time() + minutes * 60, by=user.get_username(), **params)
    try:
        chaos.turn_on(switch)
    except redis.RedisError as exc:
        raise Refused(REDIS_MESSAGE.format(error=type(exc).__name__), status=503) from None
    OperatorLog.objects.using(DB).create(
        username=user.get_username(),
        action="chaos-on",
        target=name,
        detail={"kind": kind, "minutes": minutes, **params},
    )
    return switch


def turn_off(*, user, data) -> bool:
    """Turn a switch off before its time; False if it was not on (it may have ended itself). Raises Refused."""
    _check_allowed(user)
    name, kind = _service_and_kind(data)
    try:
        was_on = chaos.turn_off(service=name, kind=kind)
    except redis.RedisError as exc:
        raise Refused(REDIS_MESSAGE.format(error=type(exc).__name__), status=503) from None
    if was_on:
        OperatorLog.objects.using(DB).create(
            username=user.get_username(), action="chaos-off", target=name, detail={"kind": kind}
        )
    return was_on
