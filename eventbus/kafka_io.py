"""Every touch of kafka-python lives here (and in relay.py/runner.py): clients built from settings, topics."""

from __future__ import annotations

import logging
import os
import socket
import time

from django.conf import settings
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.errors import KafkaError

from . import schemas
from .backoff import next_delay

log = logging.getLogger("eventbus")
BrokerUnavailable = (KafkaError,)


def client_options() -> dict:
    options = {k: v for k, v in settings.KAFKA.items() if v is not None}
    return options


def client_id(purpose: str) -> str:
    return f"conveyor-{purpose}-{socket.gethostname()}-{os.getpid()}"


def make_producer(purpose: str, **overrides) -> KafkaProducer:
    options = dict(
        acks="all",
        enable_idempotence=True,
        linger_ms=2,
        batch_size=65536,
        max_block_ms=10_000,
        request_timeout_ms=15_000,
        delivery_timeout_ms=60_000,
        client_id=client_id(purpose),
    )
    options.update(overrides)
    return KafkaProducer(**client_options(), **options)


def make_consumer(group: str, purpose: str, **overrides) -> KafkaConsumer:
    options = dict(
        group_id=group,
        client_id=client_id(purpose),
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_records=500,
        # What kafka-python buffers from a fetch, per partition (the broker still returns a larger first
        # batch whole). At the default 1 MB, the dashboard draining a backlog of 40 000-80 000 events on its
        # 48 partitions peaked at 191-232 MB of RSS; at 256 KB, 141-152 MB, as fast and for the same CPU
        # (bench/backlog_rss.py).
        max_partition_fetch_bytes=256 * 1024,
        # The broker answers a fetch as soon as a record arrives: this only bounds an idle fetch. At 100 ms
        # each idle consumer made 10 fetches a second, and the broker served them all.
        fetch_max_wait_ms=500,
        session_timeout_ms=10_000,
        heartbeat_interval_ms=1_000,
        max_poll_interval_ms=300_000,
    )
    options.update(overrides)
    return KafkaConsumer(**client_options(), **options)


def make_admin() -> KafkaAdminClient:
    return KafkaAdminClient(**client_options(), client_id=client_id("admin"), request_timeout_ms=15_000)


def ensure_topics(topics: list[str] | None = None, partitions: int | None = None) -> list[str]:
    """Create every catalogue topic and its `.dlt` (or the given physical topics) if missing."""
    if topics is None:
        logical = schemas.all_topics()
        topics = [schemas.topic_name(t) for t in logical] + [schemas.topic_name(t) + ".dlt" for t in logical]
    partitions = partitions or settings.KAFKA_TOPIC_PARTITIONS
    admin = make_admin()
    try:
        missing = sorted(set(topics) - set(admin.list_topics()))
        if missing:
            admin.create_topics(
                {name: {"num_partitions": partitions, "replication_factor": -1} for name in missing},
                raise_errors=False,
                wait_for_metadata=True,
            )
            log.info("created topics %s with %s partitions", ", ".join(missing), partitions)
        return missing
    finally:
        admin.close()


def assigned_partition_count(assignment) -> int:
    """How many partitions a member's assignment holds, as KafkaAdminClient.describe_groups decodes it
    (an object with assigned_partitions, or its dict form); 0 for none."""
    if not assignment:
        return 0
    topics = (
        assignment.get("assigned_partitions")
        if isinstance(assignment, dict)
        else getattr(assignment, "assigned_partitions", None)
    )
    count = 0
    for topic in topics or ():
        partitions = topic.get("partitions") if isinstance(topic, dict) else getattr(topic, "partitions", None)
        if partitions is None and isinstance(topic, (tuple, list)) and len(topic) == 2:
            partitions = topic[1]
        count += len(partitions or ())
    return count


def wait_for_partitions(consumer: KafkaConsumer, topics: list[str], stopping, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    missing = list(topics)
    while missing and not stopping.is_set() and time.monotonic() < deadline:
        missing = [t for t in missing if not consumer.partitions_for_topic(t)]
        if missing:
            time.sleep(0.2)
    if missing:
        log.warning("no partition metadata yet for %s; subscribing anyway", ", ".join(missing))


def wait_for_broker(what: str, stop=lambda: False) -> None:
    """Block until the broker answers, saying plainly what is wrong while it does not."""
    delay = next_delay()
    while not stop():
        try:
            admin = make_admin()
            admin.close()
            return
        except BrokerUnavailable as exc:
            log.warning(
                "%s: Kafka at %s is unreachable (%s). Start it with `make kafka`, or set KAFKA_BOOTSTRAP_SERVERS; "
                "retrying in %.0fs",
                what,
                settings.KAFKA["bootstrap_servers"],
                type(exc).__name__,
                delay,
            )
            time.sleep(delay)
            delay = next_delay(delay)
