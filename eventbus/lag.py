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

    def end_offsets(self, topic_partitions: list[tuple[str, int]]) -> dict[tuple[str, int], int]:
        if not topic_partitions:
            return {}
        specs = {TopicPartition(t, p): OffsetSpec.LATEST for t, p in topic_partitions}
        found = self.admin.list_partition_offsets(specs)
        return {(tp.topic, tp.partition): value.offset for tp, value in found.items()}

    def close(self) -> None:
        self.admin.close()
