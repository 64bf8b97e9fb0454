"""The messages page's state, all of it in query parameters (so any view is a shareable URL), parsed and
checked here. Every error says what to write instead."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from django.utils.dateparse import parse_datetime

from .filters import BadFilter, Filter, parse

PAGE_SIZE = 50
MAX_PAGE_SIZE = 500
# A search's limits: the defaults, and the hard caps a user can raise them to.
SEARCH_MESSAGES, SEARCH_MESSAGES_CAP = 100_000, 5_000_000
SEARCH_SECONDS, SEARCH_SECONDS_CAP = 10, 120
SEARCH_MATCHES, SEARCH_MATCHES_CAP = 100, 1000
SEEKS = ("newest", "oldest", "offset", "time")
MAX_TOPICS = 20  # topics browsed at once (the path's and the `topic` parameters')
TOPIC_NAME = re.compile(r"[A-Za-z0-9._-]{1,249}")
SECONDS_HINT = f"search for 1 to {SEARCH_SECONDS_CAP} seconds"
MATCHES_HINT = f"stop after 1 to {SEARCH_MATCHES_CAP} matches"


class BadQuery(ValueError):
    pass


@dataclass(frozen=True)
class MessageQuery:
    topics: tuple[str, ...]  # the topics browsed besides the path's, from repeated `topic` parameters
    partitions: tuple[int, ...] | None  # None: every partition
    seek: str  # newest | oldest | offset | time
    offset: int | None
    time: datetime | None
    limit: int
    # (topic, partition) → offset, with `direction`; topic None in the one-topic form `p:o` (the path's topic)
    cursor: dict[tuple[str | None, int], int] | None
    direction: str  # "next" (forward from the cursor) or "prev" (backward, ending before it)
    filter: Filter
    max_messages: int
    max_seconds: int
    max_matches: int


def parse_time(raw: str) -> datetime | None:
    """An RFC 3339 time with a zone, or None. A `+00:00` typed into a URL arrives as ` 00:00` (a `+` in a
    query string means a space), so a space before the zone is read as the `+` it was."""
    raw = raw.strip()
    if "T" in raw and " " in raw:
        raw = raw.replace(" ", "+")
    try:
        value = parse_datetime(raw)
    except ValueError:
        return None
    return value if value is not None and value.tzinfo is not None else None


def _int(params, name: str, default: int, low: int, high: int, hint: str) -> int:
    raw = (params.get(name) or "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadQuery(f"{name}: {raw!r} is not a whole number; {hint}") from None
    if not low <= value <= high:
        raise BadQuery(f"{name}: {value} is out of range; {hint}")
    return value


def _partitions(params) -> tuple[int, ...] | None:
    raw = [piece.strip() for value in params.getlist("partition") for piece in value.split(",") if piece.strip()]
    if not raw:
        return None
    try:
        return tuple(sorted({int(p) for p in raw}))
    except ValueError:
        raise BadQuery("partition: give partition numbers, e.g. partition=0 or partition=0,3") from None


def _cursor(raw: str) -> dict[tuple[str | None, int], int]:
    """`p:o,…` (one topic) or `topic:p:o,…` (several); topic names cannot hold `:` or `,`."""
    cursor = {}
    for piece in raw.split(","):
        parts = piece.strip().split(":")
        topic = parts.pop(0) if len(parts) == 3 else None
        if (
            len(parts) != 2
            or not all(x.isdigit() for x in parts)
            or (topic is not None and not TOPIC_NAME.fullmatch(topic))
        ):
            raise BadQuery(
                "cursor: partition:offset pairs, e.g. cursor=0:120,1:98, or topic:partition:offset with several "
                "topics (use the page's links)"
            )
        cursor[(topic, int(parts[0]))] = int(parts[1])
    return cursor


def _topics(params) -> tuple[str, ...]:
    names = [piece.strip() for value in params.getlist("topic") for piece in value.split(",") if piece.strip()]
    bad = [n for n in names if not TOPIC_NAME.fullmatch(n)]
    if bad:
        raise BadQuery(
            f"topic: {bad[0]!r} is not a topic name (letters, digits, '.', '_' and '-'); choose topics from the list"
        )
    unique = tuple(dict.fromkeys(names))
    if len(unique) > MAX_TOPICS:
        raise BadQuery(f"topic: at most {MAX_TOPICS} topics at once ({len(unique)} chosen); choose fewer")
    return unique


def parse_query(params) -> MessageQuery:
    """Read a QueryDict; raises BadQuery (or BadFilter, a kind of ValueError) with a message for the user."""
    offset = time = None
    seek = (params.get("seek") or "").strip()
    if params.get("offset", "").strip():
        offset = _int(params, "offset", 0, 0, 2**63 - 1, "give an offset of 0 or more")
        seek = seek or "offset"
    if params.get("time", "").strip():
        raw = params["time"].strip()
        time = parse_time(raw)
        if time is None:
            raise BadQuery(f"time: {raw!r} is not an RFC 3339 time with a zone; write e.g. 2025-01-31T09:30:00Z")
        seek = seek or "time"
    filter_ = parse(params)
    seek = seek or "newest"
    if seek not in SEEKS:
        raise BadQuery(f"seek: {seek!r} is not one of {', '.join(SEEKS)}")
    if seek == "offset" and offset is None:
        raise BadQuery("seek=offset needs offset=<number>")
    if seek == "time" and time is None:
        raise BadQuery("seek=time needs time=<RFC 3339 time>, e.g. 2025-01-31T09:30:00Z")
    direction = (params.get("dir") or "next").strip()
    if direction not in ("next", "prev"):
        raise BadQuery("dir: next or prev")
    raw_cursor = (params.get("cursor") or "").strip()
    return MessageQuery(
        topics=_topics(params),
        partitions=_partitions(params),
        seek=seek,
        offset=offset,
        time=time,
        limit=_int(params, "limit", PAGE_SIZE, 1, MAX_PAGE_SIZE, f"show 1 to {MAX_PAGE_SIZE} messages a page"),
        cursor=_cursor(raw_cursor) if raw_cursor else None,
        direction=direction,
        filter=filter_,
        max_messages=_int(
            params, "max_messages", SEARCH_MESSAGES, 1, SEARCH_MESSAGES_CAP, f"scan 1 to {SEARCH_MESSAGES_CAP} messages"
        ),
        max_seconds=_int(params, "max_seconds", SEARCH_SECONDS, 1, SEARCH_SECONDS_CAP, SECONDS_HINT),
        max_matches=_int(params, "max_matches", SEARCH_MATCHES, 1, SEARCH_MATCHES_CAP, MATCHES_HINT),
    )


__all__ = ["BadFilter", "BadQuery", "MessageQuery", "parse_query"]
