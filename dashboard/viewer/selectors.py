"""Reads for the event viewer: Kafka through eventbus.browse, joined with the schema catalogue and the
services' subscriptions. Nothing here counts by scanning: counts are `end - start` offsets."""

from __future__ import annotations

import re
import time as clock
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson
from django.conf import settings

from eventbus import browse, schemas
from eventbus.service import ALL_EVENTS, service

from ..models import GroupLag, OperatorLog, SavedFilter
from .params import MAX_TOPICS, TOPIC_NAME, BadQuery, MessageQuery

DB = "dashboard"
TIME_LAG_READ_S = 3.0
ORDER_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


# --------------------------------------------------------------------------- the catalogue


def logical_topic(physical: str) -> str:
    """`<prefix>shop.orders.dlt` → shop.orders (what the catalogue calls it)."""
    return physical.removeprefix(settings.KAFKA_TOPIC_PREFIX or "").removesuffix(".dlt")


def publisher(event_type: str) -> str:
    """conveyor.shop.order.placed.v1 → shop (each app publishes its own types)."""
    return event_type.split(".")[1]


def consumers_by_type() -> dict[str, list[str]]:
    """Which services handle each event type (a service that reads every event reads each type)."""
    catalogue = schemas.catalogue()
    found: dict[str, list[str]] = defaultdict(list)
    for name in settings.CONVEYOR_SERVICES:
        handled = service(name).handlers
        for event_type in catalogue:
            if event_type in handled or ALL_EVENTS in handled:
                found[event_type].append(name)
    return dict(found)


def types_by_topic() -> dict[str, list[str]]:
    by_topic: dict[str, list[str]] = defaultdict(list)
    for event_type, spec in sorted(schemas.catalogue().items()):
        by_topic[spec.topic].append(event_type)
    return dict(by_topic)


def example(schema: dict):
    """A value that fits `schema` (enough of JSON Schema for the catalogue: types, enums, patterns used)."""
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object":
        props = schema.get("properties", {})
        return {name: example(sub) for name, sub in props.items()}
    if kind == "array":
        return [example(schema.get("items", {}))] * max(1, schema.get("minItems", 1))
    if kind == "integer":
        return max(schema.get("minimum", 1), 1)
    if kind == "number":
        return max(schema.get("minimum", 1.5), 1.5)
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    pattern = schema.get("pattern", "")
    if "[0-9a-f]{8}" in pattern:
        return "3f1c2a7e-9b1d-4c5e-8f00-1a2b3c4d5e6f"
    if r"\.[0-9]{2}" in pattern:
        return "12.50"
    if schema.get("format") == "date-time":
        return "2025-01-31T09:30:00Z"
    return "text"[: schema.get("maxLength", 4)] or "x"


def schema_catalogue() -> list[dict]:
    consumers = consumers_by_type()
    rows = []
    for event_type, spec in sorted(schemas.catalogue().items()):
        sample = example(spec.schema)
        rows.append(
            {
                "type": event_type,
                "title": spec.schema.get("title", event_type),
                "topic": spec.topic,
                "physical_topic": schemas.topic_name(spec.topic),
                "publisher": publisher(event_type),
                "consumers": consumers.get(event_type, []),
                "schema": orjson.dumps(spec.schema, option=orjson.OPT_INDENT_2).decode(),
                "example": orjson.dumps(sample, option=orjson.OPT_INDENT_2).decode(),
            }
        )
    return rows


# --------------------------------------------------------------------------- topics


def _groups_by_topic(groups: list[browse.GroupInfo]) -> dict[str, list[str]]:
    by_topic: dict[str, set[str]] = defaultdict(set)
    for g in groups:
        for topic in g.topics:
            by_topic[topic].add(g.group_id)
    return {t: sorted(ids) for t, ids in by_topic.items()}


def human_ms(raw: str | None) -> str:
    """retention.ms as people say it: 604800000 → 7 d; -1 → forever."""
    if raw is None:
        return ""
    value = int(raw)
    if value < 0:
        return "forever"
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("min", 60_000), ("s", 1000)):
        if value >= size and value % size == 0:
            return f"{value // size} {unit}"
    return f"{value} ms"


def human_bytes(raw: str | None) -> str:
    if raw is None:
        return ""
    value = int(raw)
    if value < 0:
        return "no limit"
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if value >= size:
            return f"{value / size:g} {unit}"
    return f"{value} B"


def topics_overview(*, include_internal: bool, name: str = "") -> list[dict]:
    found = [t for t in browse.topics() if (include_internal or not t.internal) and name.lower() in t.name.lower()]
    configs = browse.topic_configs([t.name for t in found])
    readers = _groups_by_topic(browse.groups())
    types = types_by_topic()
    return [
        {
            "name": t.name,
            "internal": t.internal,
            "dead_letters": t.name.endswith(".dlt"),
            "messages": t.messages,
            "partitions": t.partitions,
            "replication": len(t.partitions[0].replicas) if t.partitions else 0,
            "under_replicated": sum(1 for p in t.partitions if len(p.isr) < len(p.replicas)),
            "configs": configs.get(t.name, {}),
            "retention": human_ms(configs.get(t.name, {}).get("retention.ms")),
            "retention_bytes": human_bytes(configs.get(t.name, {}).get("retention.bytes")),
            "policy": configs.get(t.name, {}).get("cleanup.policy", ""),
            "groups": readers.get(t.name, []),
            "types": [] if t.internal else types.get(logical_topic(t.name), []),
        }
        for t in found
    ]


def topic_counts(*, include_internal: bool) -> dict[str, dict]:
    """Per topic: message count and end offsets (for the topics page's live refresh)."""
    return {
        t.name: {"messages": t.messages, "end": sum(p.end for p in t.partitions)}
        for t in browse.topics()
        if include_internal or not t.internal
    }


# --------------------------------------------------------------------------- messages


def _text(raw: bytes | None) -> str | None:
    if raw is None:
        return None
    return raw.decode("utf-8", errors="replace")


def _validity(headers: dict[str, str], value: bytes | None) -> tuple[str, str]:
    event_type = headers.get("ce_type")
    if not event_type:
        return "unknown", "no ce_type header: not a CloudEvent"
    try:
        data = orjson.loads(value or b"")
    except orjson.JSONDecodeError as exc:
        return "invalid", f"the payload is not JSON ({exc})"
    try:
        schemas.validate(event_type, data)
    except schemas.UnknownEventType:
        return "unknown", f"{event_type} is not in the schema catalogue"
    except schemas.SchemaRejected as exc:
        return "invalid", str(exc)
    return "valid", f"valid {event_type}"


def describe(record: browse.Record) -> dict:
    """One message as the viewer shows it: CloudEvents headers decoded, payload pretty, schema verdict."""
    headers = [(name, _text(raw)) for name, raw in record.headers]
    by_name = {name: text for name, text in headers if text is not None}
    try:
        payload = orjson.dumps(orjson.loads(record.value or b""), option=orjson.OPT_INDENT_2).decode()
        data = orjson.loads(record.value)
    except orjson.JSONDecodeError:
        payload, data = _text(record.value) or "", None
    order = by_name.get("ce_correlationid") or (data.get("order_id") if isinstance(data, dict) else None)
    if order and not ORDER_ID.fullmatch(order):
        order = None  # e.g. a stock change, correlated by SKU: no order journey to show
    validity, verdict = _validity(by_name, record.value)
    moment = datetime.fromtimestamp(record.timestamp / 1000, tz=UTC)
    as_json = {
        "topic": record.topic,
        "partition": record.partition,
        "offset": record.offset,
        "timestamp": moment.isoformat(),
        "key": _text(record.key),
        "headers": dict(headers),
        "value": data if data is not None else _text(record.value),
    }
    return {
        "topic": record.topic,
        "partition": record.partition,
        "offset": record.offset,
        "timestamp": moment,
        "key": _text(record.key),
        "ce": [(n, t) for n, t in headers if n.startswith("ce_")],
        "other_headers": [(n, t) for n, t in headers if not n.startswith("ce_")],
        "type": by_name.get("ce_type", ""),
        "payload": payload,
        "validity": validity,
        "verdict": verdict,
        "order": order,
        "json": orjson.dumps(as_json, option=orjson.OPT_INDENT_2).decode(),
    }


TP = tuple[str, int]  # (topic, partition)


@dataclass
class Page:
    topics: list[browse.TopicInfo]  # the path's topic first
    partitions: tuple[int, ...]
    messages: list[dict]
    next_cursor: str | None
    prev_cursor: str | None
    notice: str = ""

    @property
    def topic(self) -> browse.TopicInfo:
        return self.topics[0]


def cursor_text(positions: dict[TP, int]) -> str:
    """`p:o,…` for one topic (the links people already share), `topic:p:o,…` for several."""
    if len({t for t, _ in positions}) <= 1:
        return ",".join(f"{p}:{o}" for (_, p), o in sorted(positions.items()))
    return ",".join(f"{t}:{p}:{o}" for (t, p), o in sorted(positions.items()))


def chosen_topics(name: str, query: MessageQuery) -> list[browse.TopicInfo]:
    """The path's topic and the `topic` parameters' (each once), the path's first. Raises browse.UnknownTopic
    with the first name the cluster does not have, BadQuery for too many."""
    names = list(dict.fromkeys((name, *query.topics)))
    if len(names) > MAX_TOPICS:
        raise BadQuery(f"topic: at most {MAX_TOPICS} topics at once ({len(names)} chosen); choose fewer")
    for n in names:
        if not TOPIC_NAME.fullmatch(n):
            raise browse.UnknownTopic(n)
    found = {t.name: t for t in browse.topics(names)}
    missing = [n for n in names if n not in found]
    if missing:
        raise browse.UnknownTopic(missing[0])
    return [found[n] for n in names]


def chosen_partitions(topics: list[browse.TopicInfo], query: MessageQuery) -> dict[TP, browse.PartitionInfo]:
    """Every partition of the chosen topics, or those numbered in `partition` (in each topic)."""
    chosen: dict[TP, browse.PartitionInfo] = {}
    for topic in topics:
        every = {p.partition: p for p in topic.partitions}
        if query.partitions is None:
            chosen.update({(topic.name, p): info for p, info in every.items()})
            continue
        unknown = [p for p in query.partitions if p not in every]
        if unknown and len(topics) == 1:
            raise BadQuery(
                f"partition {', '.join(map(str, unknown))}: {topic.name} has partitions 0 to {len(every) - 1}; "
                "choose among them or leave partition empty for all"
            )
        # with several topics, a topic with fewer partitions gives those it has
        chosen.update({(topic.name, p): every[p] for p in query.partitions if p in every})
    if not chosen:
        most = max(len(t.partitions) for t in topics)
        raise BadQuery(
            f"partition {', '.join(map(str, query.partitions))}: no chosen topic has it (the largest has partitions "
            f"0 to {most - 1}); choose among them or leave partition empty for all"
        )
    return chosen


def _cursor_positions(topics, parts: dict[TP, browse.PartitionInfo], query: MessageQuery) -> dict[TP, int]:
    """The query's cursor as (topic, partition) → offset, each clamped to what the partition keeps."""
    positions = {}
    for (t, p), o in query.cursor.items():
        key = (t if t is not None else topics[0].name, p)
        if key not in parts:
            raise BadQuery("cursor: it names partitions not chosen; use the page's Older/Newer links")
        positions[key] = min(max(o, parts[key].start), parts[key].end)
    return positions


def start_positions(parts: dict[TP, browse.PartitionInfo], query: MessageQuery) -> dict[TP, int]:
    """Where a forward read or a search starts in each partition (for newest: the end offsets)."""
    if query.seek == "oldest":
        return {tp: info.start for tp, info in parts.items()}
    if query.seek == "newest":
        return {tp: info.end for tp, info in parts.items()}
    if query.seek == "offset":
        if len({t for t, _ in parts}) > 1:
            raise BadQuery(
                "offset: an offset belongs to one topic's partitions, and several topics are chosen; "
                "seek by time (or oldest/newest) across topics, or browse one topic to seek by offset"
            )
        if all(query.offset >= info.end for info in parts.values()):
            ends = ", ".join(f"{p}: {info.end - 1}" for (_, p), info in parts.items())
            raise BadQuery(
                f"offset {query.offset} is past the end of every chosen partition (newest offsets {ends}); "
                "choose a smaller offset or start at newest"
            )
        return {tp: min(max(query.offset, info.start), info.end) for tp, info in parts.items()}
    millis = int(query.time.timestamp() * 1000)
    found = browse.offsets_for_times(list(parts), millis)
    if all(o is None for o in found.values()):
        raise BadQuery(
            f"no message at or after {query.time.isoformat()} in the chosen partitions; "
            "choose an earlier time or start at newest"
        )
    firsts = browse.read_many({tp: (info.start, info.start + 1) for tp, info in parts.items() if info.messages})
    if firsts and millis < min(r.timestamp for r in firsts):
        oldest = datetime.fromtimestamp(min(r.timestamp for r in firsts) / 1000, tz=UTC).isoformat()
        raise BadQuery(
            f"{query.time.isoformat()} is before the oldest message kept ({oldest}); "
            "choose a later time, or start at oldest"
        )
    return {tp: (o if o is not None else parts[tp].end) for tp, o in found.items()}


def messages_page(topic_name: str, query: MessageQuery) -> Page:
    """One page of the chosen topics' messages, merged by timestamp. Raises browse.UnknownTopic, BadQuery."""
    topics = chosen_topics(topic_name, query)
    parts = chosen_partitions(topics, query)
    limit = query.limit
    if query.cursor is not None:
        positions = _cursor_positions(topics, parts, query)
        backward = query.direction == "prev"
    else:
        positions = start_positions(parts, query)
        backward = query.seek == "newest"
    if backward:
        windows = {tp: (max(parts[tp].start, o - limit), o) for tp, o in positions.items()}
    else:
        windows = {tp: (o, min(parts[tp].end, o + limit)) for tp, o in positions.items()}
    records = browse.read_many(windows)
    records.sort(key=lambda r: (r.timestamp, r.topic, r.partition, r.offset))
    records = records[-limit:] if backward else records[:limit]
    taken_first: dict[TP, int] = {}
    taken_last: dict[TP, int] = {}
    for r in records:
        tp = (r.topic, r.partition)
        taken_first[tp] = min(taken_first.get(tp, r.offset), r.offset)
        taken_last[tp] = max(taken_last.get(tp, r.offset), r.offset)
    if backward:
        older = {tp: taken_first.get(tp, o) for tp, o in positions.items()}
        newer = positions
    else:
        older = positions
        newer = {tp: taken_last[tp] + 1 if tp in taken_last else o for tp, o in positions.items()}
    has_older = any(older[tp] > parts[tp].start for tp in positions)
    has_newer = any(newer[tp] < parts[tp].end for tp in positions)
    shown = list(reversed(records)) if backward else records
    notice = "" if records else "No messages here: the chosen partitions hold none in this range."
    return Page(
        topics=topics,
        partitions=tuple(sorted({p for _, p in parts})),
        messages=[describe(r) for r in shown],
        next_cursor=cursor_text(newer) if has_newer else None,
        prev_cursor=cursor_text(older) if has_older else None,
        notice=notice,
    )


def newest_share(parts: dict, budget: int) -> dict:
    """How many of its newest messages each partition gives to a search of `budget` messages: an equal share,
    and what a small partition cannot use goes to the others."""
    share = {}
    left = budget
    by_size = sorted(parts.items(), key=lambda item: item[1].messages)
    for n, (p, info) in enumerate(by_size):
        fair = -(-left // (len(by_size) - n))  # ceiling division
        share[p] = min(info.messages, fair)
        left -= share[p]
    return share


def search_windows(topic_name: str, query: MessageQuery) -> tuple[list[browse.TopicInfo], dict[TP, tuple[int, int]]]:
    """A search reads forward to the end offsets as they are when it starts (a bounded range): from its start,
    or, from newest, over the newest `max_messages` messages of the chosen partitions of every chosen topic."""
    topics = chosen_topics(topic_name, query)
    parts = chosen_partitions(topics, query)
    if query.cursor is not None:
        positions = _cursor_positions(topics, parts, query)
    elif query.seek == "newest":
        share = newest_share(parts, query.max_messages)
        positions = {tp: info.end - share[tp] for tp, info in parts.items()}
    else:
        positions = start_positions(parts, query)
    return topics, {tp: (o, parts[tp].end) for tp, o in positions.items()}


def saved_filters(username: str, topic: str) -> list[SavedFilter]:
    return list(SavedFilter.objects.using(DB).filter(username=username, topic=topic).order_by("name"))


# --------------------------------------------------------------------------- consumer groups


def _time_lags(wanted: set[tuple[str, int, int]]) -> dict[tuple[str, int, int], int]:
    """The timestamp of the record at each (topic, partition, committed offset): one record each, read once."""
    by_topic: dict[str, dict[int, tuple[int, int]]] = defaultdict(dict)
    for topic, partition, offset in wanted:
        by_topic[topic][partition] = (offset, offset + 1)
    found = {}
    deadline = clock.monotonic() + TIME_LAG_READ_S
    for topic, windows in by_topic.items():
        left = deadline - clock.monotonic()
        if left <= 0:
            break
        try:
            for r in browse.read(topic, windows, timeout=left):
                found[(topic, r.partition, r.offset)] = r.timestamp
        except browse.BrokerError:
            continue  # time lag is a hint; the offsets above it are the facts
    return found


def groups_overview(only: str | None = None, name: str = "") -> list[dict]:
    found = [g for g in browse.groups([only] if only else None) if name.lower() in g.group_id.lower()]
    partitions = sorted(
        {tp for g in found for tp in g.committed} | {tp for g in found for m in g.members for tp in m.assignments}
    )
    positions = browse.offsets(partitions) if partitions else {}
    lagging = {
        (t, p, c)
        for g in found
        for (t, p), c in g.committed.items()
        if (t, p) in positions and c < positions[(t, p)][1]
    }
    stamps = _time_lags(lagging) if lagging else {}
    now_ms = clock.time() * 1000
    samples = GroupLag.objects.using(DB).filter(group__in=[g.group_id for g in found])
    trends = {row.group: row.history for row in samples}
    rows = []
    for g in found:
        owner = {tp: m.client_id for m in g.members for tp in m.assignments}
        parts = []
        for tp in sorted(set(g.committed) | set(owner)):
            start, end = positions.get(tp, (0, 0))
            committed = g.committed.get(tp)
            lag = max(0, end - committed) if committed is not None else None
            stamp = stamps.get((tp[0], tp[1], committed)) if lag else None
            parts.append(
                {
                    "topic": tp[0],
                    "partition": tp[1],
                    "committed": committed,
                    "start": start,
                    "end": end,
                    "lag": lag,
                    "time_lag_s": round((now_ms - stamp) / 1000, 1) if stamp else (0.0 if lag == 0 else None),
                    "member": owner.get(tp, ""),
                }
            )
        rows.append(
            {
                "id": g.group_id,
                "state": g.state,
                "members": g.members,
                "partitions": parts,
                "topics": g.topics,
                "lag": sum(p["lag"] or 0 for p in parts),
                "time_lag_s": max((p["time_lag_s"] or 0 for p in parts), default=0),
                "trend": [point[1] for point in trends.get(g.group_id, [])][-60:],
            }
        )
    return rows


# --------------------------------------------------------------------------- the service map


def service_map() -> dict:
    """Services as nodes, and one edge per (topic, consuming service) from the topic's publisher, each with
    the topic's end offsets (the page derives a rate from two readings), the consumer group's lag on it, and
    the messages waiting on the topic's dead-letter topic."""
    names = list(settings.CONVEYOR_SERVICES)
    consumers = consumers_by_type()
    pairs = set()
    for event_type, spec in schemas.catalogue().items():
        for consumer in consumers.get(event_type, []):
            if consumer != publisher(event_type):
                pairs.add((spec.topic, publisher(event_type), consumer))
    physical = sorted({schemas.topic_name(t) for t, _, _ in pairs})
    known = {t.name: t for t in browse.topics()}
    present = [t for t in physical if t in known]
    dead = {t: known[t + ".dlt"].messages for t in present if t + ".dlt" in known}
    groups = {g.group_id: g for g in browse.groups([service(n).group for n in names])}
    edges = []
    for topic, source, target in sorted(pairs):
        name = schemas.topic_name(topic)
        info = known.get(name)
        group = groups.get(service(target).group)
        lag = None
        if info is not None and group is not None and group.committed:
            lag = sum(max(0, p.end - group.committed.get((name, p.partition), p.start)) for p in info.partitions)
        edges.append(
            {
                "topic": name,
                "from": source,
                "to": target,
                "end": sum(p.end for p in info.partitions) if info else 0,
                "lag": lag,
                "dead_letters": dead.get(name, 0),
                "group": service(target).group,
            }
        )
    nodes = [
        {
            "name": n,
            "group": service(n).group,
            "members": len(groups[service(n).group].members) if service(n).group in groups else 0,
        }
        for n in names
    ]
    return {"nodes": nodes, "edges": edges, "at": clock.time()}


def operator_log(limit: int = 50) -> list[OperatorLog]:
    return list(OperatorLog.objects.using(DB).order_by("-at")[:limit])
