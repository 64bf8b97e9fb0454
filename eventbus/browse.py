"""Browsing Kafka for the event viewer: topics with their partitions and offsets, consumer groups with their
committed offsets, reading a window of records, scanning for a match within limits, and setting a group's
committed offsets.

Pages read offsets from the broker (ListOffsets, OffsetFetch, Metadata): a count is `end - start`, never a
scan. Only `read` and `scan` fetch records, and both stop at offsets fixed before they start.

Memory bound of a scan (what one search holds in the web process, whatever the topic's size): the viewer's
consumer fetches at most `FETCH_MAX_BYTES` (2 MiB) per broker node at a time (1 MiB per partition) and hands
over at most `SCAN_BATCH` (500) records per poll; `scan` keeps no record it has matched (it yields it and
forgets it), only counters and one offset per partition. Decoded into Python objects a fetch takes about five
times its bytes, so a search holds about 12 MiB per broker node that leads its partitions (measured: a 9–14 MiB
peak scanning 100 000 order events on one broker, `python -m bench.viewer_scan`). At most `MAX_SCANS` (4)
searches run at once per process; a further one waits for a free slot.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from kafka import KafkaAdminClient, OffsetSpec, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType
from kafka.errors import KafkaError, UnknownTopicOrPartitionError
from kafka.structs import OffsetAndMetadata

from . import kafka_io

FETCH_MAX_BYTES = 2 * 1024 * 1024
PARTITION_FETCH_BYTES = 1024 * 1024
PAGE_FETCH_BYTES = 1024 * 1024
PAGE_PARTITION_FETCH_BYTES = 256 * 1024
SCAN_BATCH = 500
MAX_SCANS = 4
READ_TIMEOUT_S = 10.0
BOOTSTRAP_MS = 3_000
POOLED_CONSUMERS = 4
RETENTION_KEYS = ("cleanup.policy", "retention.ms", "retention.bytes", "segment.bytes", "min.insync.replicas")

BrokerError = KafkaError
MEMBER_ERRORS = ("UnknownMemberIdError", "RebalanceInProgressError", "IllegalGenerationError")


class UnknownTopic(LookupError):
    pass


class UnknownGroup(LookupError):
    pass


class GroupHasMembers(RuntimeError):
    """Kafka lets only a group without members have its offsets set from outside."""


@dataclass(frozen=True)
class PartitionInfo:
    partition: int
    leader: int
    replicas: tuple[int, ...]
    isr: tuple[int, ...]
    start: int
    end: int

    @property
    def messages(self) -> int:
        return max(0, self.end - self.start)


@dataclass(frozen=True)
class TopicInfo:
    name: str
    internal: bool
    partitions: tuple[PartitionInfo, ...]

    @property
    def messages(self) -> int:
        return sum(p.messages for p in self.partitions)


@dataclass(frozen=True)
class Member:
    member_id: str
    client_id: str
    host: str
    assignments: tuple[tuple[str, int], ...]


@dataclass(frozen=True)
class GroupInfo:
    group_id: str
    state: str
    protocol: str
    members: tuple[Member, ...]
    committed: dict[tuple[str, int], int] = field(default_factory=dict)

    @property
    def topics(self) -> list[str]:
        return sorted({t for t, _ in self.committed} | {t for m in self.members for t, _ in m.assignments})


@dataclass(frozen=True)
class Record:
    topic: str
    partition: int
    offset: int
    timestamp: int  # milliseconds since the epoch
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes | None], ...]


@dataclass(frozen=True)
class ScanProgress:
    scanned: int
    elapsed: float
    done: bool = False
    reason: str = ""  # when done: "end", "messages", "seconds", "matches" or "cancelled"
    # the next offset to read, by partition (scan) or by (topic, partition) (scan_many)
    positions: dict = field(default_factory=dict)


# --------------------------------------------------------------------------- one admin client per process

_admin_lock = threading.Lock()
_admin = None


RETRIABLE_ATTEMPTS = 3  # a coordinator still loading, a leader moving: gone within a second or so


def _call(fn: Callable):
    """Run `fn(admin)` on the process's admin client (made on first use, dropped after a broker error). An
    error the broker calls retriable (a group coordinator still loading after a start, a leader moving) is
    tried again twice, a quarter of a second apart, before the page says Kafka did not answer."""
    for attempt in range(1, RETRIABLE_ATTEMPTS + 1):
        try:
            return _call_once(fn)
        except KafkaError as exc:
            if not exc.retriable or attempt == RETRIABLE_ATTEMPTS:
                raise
            time.sleep(0.25)


def _call_once(fn: Callable):
    global _admin
    with _admin_lock:
        try:
            if _admin is None:
                # a page waits at most BOOTSTRAP_MS for a broker that is down, then says so
                _admin = KafkaAdminClient(
                    **kafka_io.client_options(),
                    client_id=kafka_io.client_id("viewer"),
                    request_timeout_ms=15_000,
                    bootstrap_timeout_ms=BOOTSTRAP_MS,
                )
            return fn(_admin)
        except KafkaError:
            if _admin is not None:
                try:
                    _admin.close()
                except Exception:  # a broken client must not hide the broker's error
                    pass
            _admin = None
            raise


def close() -> None:
    global _admin
    with _admin_lock:
        if _admin is not None:
            _admin.close()
            _admin = None
    for pool in _consumers.values():
        while True:
            try:
                pool.get_nowait().close()
            except queue.Empty:
                break


# --------------------------------------------------------------------------- offsets and topics


def offsets(topic_partitions: list[tuple[str, int]]) -> dict[tuple[str, int], tuple[int, int]]:
    """(start, end) of each partition: the first offset still kept and the next offset to be written."""
    if not topic_partitions:
        return {}
    tps = [TopicPartition(t, p) for t, p in topic_partitions]

    def read(admin):
        start = admin.list_partition_offsets(dict.fromkeys(tps, OffsetSpec.EARLIEST))
        end = admin.list_partition_offsets(dict.fromkeys(tps, OffsetSpec.LATEST))
        return {(tp.topic, tp.partition): (start[tp].offset, end[tp].offset) for tp in tps}

    return _call(read)


def offsets_for_time(topic: str, partitions: list[int], millis: int) -> dict[int, int | None]:
    """Per partition, the first offset whose timestamp is at or after `millis` (None: no such record yet)."""
    found = offsets_for_times([(topic, p) for p in partitions], millis)
    return {p: o for (_, p), o in found.items()}


def offsets_for_times(topic_partitions: list[tuple[str, int]], millis: int) -> dict[tuple[str, int], int | None]:
    """Per (topic, partition), the first offset whose timestamp is at or after `millis` (None: none yet)."""
    if not topic_partitions:
        return {}
    tps = [TopicPartition(t, p) for t, p in topic_partitions]
    found = _call(lambda admin: admin.list_partition_offsets({tp: int(millis) for tp in tps}))
    return {(tp.topic, tp.partition): (found[tp].offset if found[tp].offset >= 0 else None) for tp in tps}


def topic_names(*, include_internal: bool = False) -> list[str]:
    """The cluster's topic names, sorted (metadata only: no offsets asked)."""
    described = _call(lambda admin: admin.describe_topics(None))
    return sorted(
        t["name"] for t in described if not t.get("error_code") and (include_internal or not t.get("is_internal"))
    )


def _metadata(names: list[str] | None) -> list[dict]:
    described = _call(lambda admin: admin.describe_topics(names))
    for topic in described:
        if topic.get("error_code") and names is not None:
            raise UnknownTopic(topic["name"])
    return [t for t in described if not t.get("error_code")]


def topics(names: list[str] | None = None) -> list[TopicInfo]:
    """Every topic (or the named ones) with partitions, leaders, in-sync replicas and offsets, by name."""
    described = _metadata(names)
    tps = [(t["name"], p["partition_index"]) for t in described for p in t["partitions"]]
    positions = offsets(tps)
    result = []
    for t in sorted(described, key=lambda t: t["name"]):
        partitions = tuple(
            PartitionInfo(
                partition=p["partition_index"],
                leader=p["leader_id"],
                replicas=tuple(p["replica_nodes"]),
                isr=tuple(p["isr_nodes"]),
                start=positions[(t["name"], p["partition_index"])][0],
                end=positions[(t["name"], p["partition_index"])][1],
            )
            for p in sorted(t["partitions"], key=lambda p: p["partition_index"])
        )
        result.append(TopicInfo(t["name"], bool(t.get("is_internal")), partitions))
    return result


def topic(name: str) -> TopicInfo:
    try:
        return topics([name])[0]
    except (UnknownTopicOrPartitionError, IndexError):
        raise UnknownTopic(name) from None


def topic_configs(names: list[str]) -> dict[str, dict[str, str]]:
    """The retention settings (and a few neighbours) of each topic, as the broker applies them."""
    if not names:
        return {}
    resources = [ConfigResource(ConfigResourceType.TOPIC, name, list(RETENTION_KEYS)) for name in names]
    found = _call(lambda admin: admin.describe_configs(resources, config_filter="all"))
    by_topic = found.get("topic", {})
    return {name: {k: v["value"] for k, v in (by_topic.get(name) or {}).items()} for name in names}


# --------------------------------------------------------------------------- consumer groups


def groups(ids: list[str] | None = None) -> list[GroupInfo]:
    """Every consumer group (or the given ones): state, members with assignments, committed offsets."""

    def read(admin):
        group_ids = ids if ids is not None else sorted(g["group_id"] for g in admin.list_groups())
        if not group_ids:
            return []
        described = admin.describe_groups(group_ids)
        committed = admin.list_group_offsets(list(group_ids))
        return [(gid, described.get(gid) or {}, committed.get(gid) or {}) for gid in group_ids]

    result = []
    for gid, desc, committed in _call(read):
        members = tuple(
            Member(
                member_id=m["member_id"],
                client_id=m.get("client_id", ""),
                host=m.get("client_host", ""),
                assignments=_assignments(m.get("member_assignment")),
            )
            for m in desc.get("members") or []
        )
        offsets_ = {
            (tp.topic, tp.partition): meta.offset
            for tp, meta in committed.items()
            if meta is not None and meta.offset is not None and meta.offset >= 0
        }
        state = desc.get("group_state") or "Unknown"
        result.append(GroupInfo(gid, state, desc.get("protocol_type") or "", members, offsets_))
    return result


def _assignments(assignment) -> tuple[tuple[str, int], ...]:
    """A member's partitions (an assignment the client library could not decode counts as none)."""
    if not isinstance(assignment, dict):
        return ()
    return tuple((a["topic"], p) for a in assignment.get("assigned_partitions", []) for p in a["partitions"])


def group(group_id: str) -> GroupInfo:
    found = [g for g in groups([group_id]) if g.state != "Dead" or g.committed]
    if not found:
        raise UnknownGroup(group_id)
    return found[0]


def set_group_offsets(group_id: str, new_offsets: dict[tuple[str, int], int]) -> None:
    """Commit `new_offsets` for a group that has no members; raises GroupHasMembers otherwise (nothing set)."""
    current = group(group_id)
    if current.members:
        raise GroupHasMembers(group_id)
    request = {TopicPartition(t, p): OffsetAndMetadata(o, "", -1) for (t, p), o in new_offsets.items()}
    answer = _call(lambda admin: admin.alter_group_offsets(group_id, request))
    failed = {tp: err for tp, err in answer.items() if err.errno != 0}
    if failed:
        if any(getattr(err, "__name__", "") in MEMBER_ERRORS for err in failed.values()):
            raise GroupHasMembers(group_id)
        raise KafkaError(f"the broker refused some offsets: {failed}")


# --------------------------------------------------------------------------- reading records

# Two pools: a page reads a few records per partition, so its consumer fetches little (a fetch of 1 MiB
# per partition decodes thousands of records to keep 50); a scan reads everything, so its fetches are big.
FETCH_SIZES = {"page": (PAGE_FETCH_BYTES, PAGE_PARTITION_FETCH_BYTES), "scan": (FETCH_MAX_BYTES, PARTITION_FETCH_BYTES)}
_consumers: dict[str, queue.LifoQueue] = {kind: queue.LifoQueue() for kind in FETCH_SIZES}


def _take_consumer(kind: str):
    try:
        return _consumers[kind].get_nowait()
    except queue.Empty:
        fetch_max, partition_max = FETCH_SIZES[kind]
        return kafka_io.make_consumer(
            None,
            f"viewer-{kind}",
            enable_auto_commit=False,
            max_poll_records=SCAN_BATCH,
            fetch_max_bytes=fetch_max,
            max_partition_fetch_bytes=partition_max,
            fetch_max_wait_ms=100,
            # kafka-python sleeps this long in a poll that has nothing to fetch, e.g. while the partitions a
            # read has finished are paused with data still buffered: 100 ms (the default) × a few polls
            # made a page of a large topic take 0.6 s instead of 0.05 s.
            retry_backoff_ms=5,
            bootstrap_timeout_ms=BOOTSTRAP_MS,
        )


def _give_back(kind: str, consumer) -> None:
    consumer.assign([])
    if _consumers[kind].qsize() < POOLED_CONSUMERS:
        _consumers[kind].put(consumer)
    else:
        consumer.close()


_scan_slots = threading.BoundedSemaphore(MAX_SCANS)


def _record(r) -> Record:
    return Record(r.topic, r.partition, r.offset, r.timestamp, r.key, r.value, tuple(r.headers or ()))


def read(topic: str, windows: dict[int, tuple[int, int]], timeout: float = READ_TIMEOUT_S) -> list[Record]:
    """The records of each partition's window [start, stop), in offset order per partition."""
    return read_many({(topic, p): w for p, w in windows.items()}, timeout=timeout)


def read_many(windows: dict[tuple[str, int], tuple[int, int]], timeout: float = READ_TIMEOUT_S) -> list[Record]:
    """The records of each (topic, partition)'s window [start, stop), in offset order per partition."""
    windows = {tp: (a, b) for tp, (a, b) in windows.items() if b > a}
    if not windows:
        return []
    records: list[Record] = []
    for item in _scan(windows, None, max_messages=None, max_seconds=timeout, cancelled=lambda: False, kind="page"):
        if isinstance(item, ScanProgress):
            if item.done and item.reason == "seconds":
                names = ", ".join(sorted({t for t, _ in windows}))
                raise KafkaError(f"reading {names} took longer than {timeout:.0f}s")
        else:
            records.append(item)
    return records


def scan(
    topic: str,
    windows: dict[int, tuple[int, int]],
    match: Callable[[bytes | None, bytes | None, list], bool],
    **limits,
) -> Iterator[Record | ScanProgress]:
    """`scan_many` over one topic's partitions; its progress positions are keyed by partition."""
    for item in scan_many({(topic, p): w for p, w in windows.items()}, match, **limits):
        if isinstance(item, ScanProgress):
            item = ScanProgress(
                item.scanned, item.elapsed, item.done, item.reason, {p: o for (_, p), o in item.positions.items()}
            )
        yield item


def scan_many(
    windows: dict[tuple[str, int], tuple[int, int]],
    match: Callable[[bytes | None, bytes | None, list], bool],
    *,
    max_messages: int,
    max_seconds: float,
    max_matches: int | None = None,
    cancelled: Callable[[], bool] = lambda: False,
    progress_every: float = 0.25,
) -> Iterator[Record | ScanProgress]:
    """Read each (topic, partition)'s window [start, stop) and yield the records for which
    `match(key, value, headers)` is true, with a ScanProgress now and then and a last one (done=True) saying
    why it stopped; progress positions are keyed by (topic, partition)."""
    with _scan_slots:
        yield from _scan(
            windows,
            match,
            max_messages=max_messages,
            max_seconds=max_seconds,
            max_matches=max_matches,
            cancelled=cancelled,
            progress_every=progress_every,
        )


def _scan(
    windows, match, *, max_messages, max_seconds, cancelled, max_matches=None, progress_every=0.25, kind="scan"
) -> Iterator[Record | ScanProgress]:
    started = time.monotonic()
    consumer = _take_consumer(kind)
    scanned = matched = 0
    positions = {tp: start for tp, (start, _stop) in windows.items()}
    pending = {TopicPartition(t, p): stop for (t, p), (start, stop) in windows.items() if stop > start}
    reason = "end"
    healthy = False
    try:
        consumer.assign(list(pending))
        for tp in pending:
            consumer.seek(tp, positions[(tp.topic, tp.partition)])
        last_progress = started
        while pending:
            elapsed = time.monotonic() - started
            if cancelled():
                reason = "cancelled"
                break
            if elapsed >= max_seconds:
                reason = "seconds"
                break
            budget = None if max_messages is None else max_messages - scanned
            if budget is not None and budget <= 0:
                reason = "messages"
                break
            batch = consumer.poll(timeout_ms=200, max_records=min(SCAN_BATCH, budget or SCAN_BATCH))
            for tp, records in batch.items():
                stop = pending.get(tp)
                if stop is None or not records:
                    continue
                if records[-1].offset >= stop:
                    records = [r for r in records if r.offset < stop]
                    if not records:
                        continue
                for n, r in enumerate(records):
                    if match is None or match(r.key, r.value, r.headers):
                        matched += 1
                        yield _record(r)
                        if max_matches is not None and matched >= max_matches:
                            records = records[: n + 1]  # the rest of the batch is not scanned
                            break
                scanned += len(records)
                positions[(tp.topic, tp.partition)] = records[-1].offset + 1
                if max_matches is not None and matched >= max_matches:
                    break
            if max_matches is not None and matched >= max_matches:
                reason = "matches"
                break
            for tp in list(pending):
                # a record past the window, a gap (compaction, transaction markers), or the end reached. The
                # partition is not paused: kafka-python keeps a paused partition paused through the next
                # assign() of the pooled consumer, whose next read then waits forever; its further records
                # are dropped above, and the fetch sizes bound what they cost.
                key = (tp.topic, tp.partition)
                if consumer.position(tp) >= pending[tp] or positions[key] >= pending[tp]:
                    positions[key] = max(positions[key], min(consumer.position(tp), pending[tp]))
                    del pending[tp]
            now = time.monotonic()
            if now - last_progress >= progress_every:
                last_progress = now
                yield ScanProgress(scanned, now - started, positions=dict(positions))
        healthy = True
    finally:
        if healthy:
            _give_back(kind, consumer)
        else:
            consumer.close()
    yield ScanProgress(scanned, time.monotonic() - started, done=True, reason=reason, positions=dict(positions))
