"""Consumer lag per group and partition, for the dashboard and /metrics (read from the broker)."""

from __future__ import annotations

from dataclasses import dataclass

from kafka import OffsetSpec, TopicPartition

from . import kafka_io


@dataclass(frozen=True)
class PartitionLag:
    group: str
    topic: str
    partition: int
    committed: int
    end: int

    @property
    def lag(self) -> int:
        return max(0, self.end - self.committed)


class LagReader:
    """Keeps one admin client open; call `read()` as often as you like."""

    def __init__(self):
        self.admin = kafka_io.make_admin()

    def read(self, groups: list[str]) -> list[PartitionLag]:
        if not groups:
            return []
        by_group = self.admin.list_group_offsets(list(groups))
        partitions = {tp for committed in by_group.values() for tp in (committed or {})}
        ends = self.end_offsets([(tp.topic, tp.partition) for tp in partitions])
        result = []
        for group in groups:
            for tp, meta in sorted((by_group.get(group) or {}).items()):
                if meta is None or meta.offset is None or meta.offset < 0:
                    continue
                end = ends.get((tp.topic, tp.partition), meta.offset)
                result.append(PartitionLag(group, tp.topic, tp.partition, meta.offset, end))
        return result

    def read_groups(self, topics_by_group: dict[str, list[str]]) -> list[PartitionLag]:
        """Lag of each group on every partition of the topics it reads. A partition the group has never
        committed on counts from its earliest offset (where the group would start), so records waiting
        for a group that never got to them, or whose consumers all died, still show."""
        if not topics_by_group:
            return []
        committed = self.admin.list_group_offsets(list(topics_by_group))
        topics = sorted({t for ts in topics_by_group.values() for t in ts})
        partitions = {
            (_topic_name(meta), _partition_index(p))
            for meta in self.admin.describe_topics(topics)
            for p in meta.get("partitions") or ()
        }
        ends = self.end_offsets(sorted(partitions))
        starts = self.end_offsets(sorted(partitions), spec=OffsetSpec.EARLIEST)
        result = []
        for group, group_topics in sorted(topics_by_group.items()):
            offsets = {(tp.topic, tp.partition): meta.offset for tp, meta in (committed.get(group) or {}).items()}
            for topic, partition in sorted(p for p in partitions if p[0] in group_topics):
                at = offsets.get((topic, partition))
                if at is None or at < 0:
                    at = starts.get((topic, partition), 0)
                result.append(PartitionLag(group, topic, partition, at, ends.get((topic, partition), at)))
        return result

    def end_offsets(self, topic_partitions: list[tuple[str, int]], spec=OffsetSpec.LATEST) -> dict[tuple, int]:
        if not topic_partitions:
            return {}
        specs = {TopicPartition(t, p): spec for t, p in topic_partitions}
        found = self.admin.list_partition_offsets(specs)
        return {(tp.topic, tp.partition): value.offset for tp, value in found.items()}

    def close(self) -> None:
        """Close the admin client; a client already broken by the error that made us close it stays quiet."""
        try:
            self.admin.close()
        except Exception:
            pass


def _topic_name(meta: dict) -> str:
    return meta.get("name") or meta.get("topic")


def _partition_index(meta: dict) -> int:
    return meta["partition_index"] if "partition_index" in meta else meta["partition"]
