"""Writes of the event viewer: saved filters, and resetting a consumer group's committed offsets (with a
preview first, only for a group without members, each reset recorded in the operator log)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db import IntegrityError, transaction

from eventbus import browse

from ..models import OperatorLog, SavedFilter

DB = "dashboard"
STRATEGIES = ("earliest", "latest", "time", "offsets")


class ResetRefused(ValueError):
    """A reset that cannot be done as asked; the message says why and what to do."""


# --------------------------------------------------------------------------- saved filters


def save_filter(*, username: str, topic: str, name: str, query: str) -> SavedFilter:
    name = name.strip()
    if not name or len(name) > 100:
        raise ValueError("name: give the filter a name of 1 to 100 characters")
    if len(query) > 4000:
        raise ValueError("query: this view's URL is too long to save; remove some parameters")
    try:
        with transaction.atomic(using=DB):
            return SavedFilter.objects.using(DB).create(username=username, topic=topic, name=name, query=query)
    except IntegrityError:
        raise ValueError(f"name: you already have a filter named {name!r} on this topic; choose another") from None


def delete_filter(*, username: str, pk: int) -> bool:
    deleted, _ = SavedFilter.objects.using(DB).filter(username=username, pk=pk).delete()
    return bool(deleted)


# --------------------------------------------------------------------------- offset resets


@dataclass(frozen=True)
class ResetRequest:
    group: str
    strategy: str  # earliest | latest | time | offsets
    topic: str = ""  # only this topic's partitions ("" = every topic the group has committed)
    time: datetime | None = None
    offsets: dict[tuple[str, int], int] | None = None  # for "offsets"


def preview_reset(request: ResetRequest) -> list[dict]:
    """Each partition's committed offset now and where the reset would put it (nothing is changed).
    Raises browse.UnknownGroup, ResetRefused."""
    if request.strategy not in STRATEGIES:
        raise ResetRefused(f"strategy: choose one of {', '.join(STRATEGIES)}")
    group = browse.group(request.group)
    partitions = sorted(set(group.committed) | {tp for m in group.members for tp in m.assignments})
    if request.topic:
        partitions = [tp for tp in partitions if tp[0] == request.topic]
        if not partitions:
            raise ResetRefused(f"topic: group {request.group} has no offsets on {request.topic}; choose one it reads")
    if not partitions:
        raise ResetRefused(f"group {request.group} has no committed offsets to reset")
    bounds = browse.offsets(partitions)
    if request.strategy == "earliest":
        target = {tp: bounds[tp][0] for tp in partitions}
    elif request.strategy == "latest":
        target = {tp: bounds[tp][1] for tp in partitions}
    elif request.strategy == "time":
        if request.time is None:
            raise ResetRefused("time: give an RFC 3339 time with a zone, e.g. 2025-01-31T09:30:00Z")
        millis = int(request.time.timestamp() * 1000)
        target = {}
        for topic in sorted({t for t, _ in partitions}):
            found = browse.offsets_for_time(topic, [p for t, p in partitions if t == topic], millis)
            for p, offset in found.items():
                target[(topic, p)] = offset if offset is not None else bounds[(topic, p)][1]
    else:
        given = request.offsets or {}
        missing = [tp for tp in partitions if tp not in given]
        if missing:
            raise ResetRefused("offsets: give an offset for every partition listed (or choose another strategy)")
        target = {}
        for tp in partitions:
            start, end = bounds[tp]
            if not start <= given[tp] <= end:
                raise ResetRefused(
                    f"offset {given[tp]} for {tp[0]}[{tp[1]}] is outside what the partition holds ({start} to {end}); "
                    "choose one in that range"
                )
            target[tp] = given[tp]
    return [
        {
            "topic": tp[0],
            "partition": tp[1],
            "current": group.committed.get(tp),
            "new": target[tp],
            "start": bounds[tp][0],
            "end": bounds[tp][1],
            "lag_after": bounds[tp][1] - target[tp],
        }
        for tp in partitions
    ]


def reset_offsets(request: ResetRequest, *, username: str) -> list[dict]:
    """Commit the previewed positions, if the group has no members; log who did it. Changes nothing otherwise."""
    group = browse.group(request.group)
    if group.members:
        raise ResetRefused(members_message(group))
    rows = preview_reset(request)
    try:
        browse.set_group_offsets(request.group, {(r["topic"], r["partition"]): r["new"] for r in rows})
    except browse.GroupHasMembers:
        raise ResetRefused(members_message(browse.group(request.group))) from None
    OperatorLog.objects.using(DB).create(
        username=username,
        action="reset-offsets",
        target=request.group,
        detail={
            "strategy": request.strategy,
            "topic": request.topic,
            "time": request.time.isoformat() if request.time else None,
            "partitions": [[r["topic"], r["partition"], r["current"], r["new"]] for r in rows],
        },
    )
    return rows


def members_message(group: browse.GroupInfo) -> str:
    n = len(group.members)
    clients = ", ".join(sorted({m.client_id for m in group.members})) or "unknown clients"
    return (
        f"Group {group.group_id} has {n} active member{'s' if n != 1 else ''} ({clients}). Kafka only lets a group "
        "without members have its offsets reset: stop its consumers (e.g. the run_consumer processes of that "
        "service), wait until the group shows Empty, then reset."
    )
