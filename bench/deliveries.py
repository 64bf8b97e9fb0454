"""Deliveries counted from Kafka itself: what each consumer group committed, and what was published.

A delivery is one event read by one consumer group. The sum over groups of how far each group's committed
offsets moved is the number of deliveries in between, whatever each process does with them (handle,
ignore, skip a duplicate), and it needs nothing from the consumers but their commits. The runner commits
at most once a second, so a reading waits until every group has committed up to the end of what it reads.
"""

from __future__ import annotations

import os
import time

from kafka import KafkaAdminClient, KafkaConsumer
from kafka.structs import TopicPartition


class Deliveries:
    def __init__(self, groups: list[str], prefix: str, bootstrap: str | None = None):
        bootstrap = bootstrap or os.environ["KAFKA_BOOTSTRAP_SERVERS"]
        self.groups = groups
        self.prefix = prefix
        self.admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="bench-deliveries")
        self.consumer = KafkaConsumer(bootstrap_servers=bootstrap, client_id="bench-deliveries")

    def close(self) -> None:
        self.admin.close()
        self.consumer.close()

    def committed(self) -> dict[tuple[str, str, int], int]:
        out = {}
        for group, offsets in self.admin.list_group_offsets(dict.fromkeys(self.groups)).items():
            for tp, meta in offsets.items():
                if meta.offset >= 0:
                    out[(group, tp.topic, tp.partition)] = meta.offset
        return out

    def published(self) -> int:
        """Records on every topic of ours but the dead-letter ones (the sum of end offsets)."""
        topics = [t for t in self.consumer.topics() if t.startswith(self.prefix) and not t.endswith(".dlt")]
        partitions = [TopicPartition(t, p) for t in topics for p in sorted(self.consumer.partitions_for_topic(t) or ())]
        return sum(self.consumer.end_offsets(partitions).values()) if partitions else 0

    def published_on(self, topics: list[str]) -> int:
        partitions = [TopicPartition(t, p) for t in topics for p in sorted(self.consumer.partitions_for_topic(t) or ())]
        return sum(self.consumer.end_offsets(partitions).values()) if partitions else 0

    def settled(self, timeout: float = 30) -> dict[tuple[str, str, int], int]:
        """Committed offsets once every group has committed up to the end of each topic it reads (or, after
        `timeout`, as they are)."""
        deadline = time.monotonic() + timeout
        while True:
            now = self.committed()
            topics = {t for _, t, _ in now}
            partitions = [
                TopicPartition(t, p) for t in topics for p in sorted(self.consumer.partitions_for_topic(t) or ())
            ]
            ends = self.consumer.end_offsets(partitions) if partitions else {}
            behind = [
                (g, tp)
                for g in self.groups
                for tp, end in ends.items()
                if (g, tp.topic, tp.partition) in now and now[(g, tp.topic, tp.partition)] < end
            ]
            if not behind or time.monotonic() > deadline:
                return now
            time.sleep(0.25)


def delta(before: dict, after: dict) -> int:
    return sum(offset - before.get(key, 0) for key, offset in after.items())
