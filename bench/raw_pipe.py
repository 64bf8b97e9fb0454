"""Section 1: Kafka itself. kafka-python (and confluent-kafka when its wheel installs) producer → consumer
of order-sized messages on a fresh topic, acks=all; plus the produce→ack latency of single messages."""

from __future__ import annotations

import threading
import time

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.admin import NewTopic

from .common import dist, percentile, raw_payload, say

PARTITIONS = 6


def create_topics(bootstrap: str, names: list[str], partitions: int = PARTITIONS) -> None:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="bench-admin")
    try:
        admin.create_topics([NewTopic(n, partitions, 1) for n in names])
    finally:
        admin.close()
    time.sleep(0.3)


def kafka_python_pipe(bootstrap: str, topic: str, count: int) -> dict:
    """Producer and consumer run side by side (two threads, one process, like a relay + a consumer)."""
    payloads = [raw_payload(i) for i in range(256)]
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"{topic}-reader",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        max_poll_records=500,
        fetch_max_wait_ms=100,
    )
    _wait_assigned(consumer)
    received = 0
    done = threading.Event()
    last_at = [0.0]

    def consume():
        nonlocal received
        while received < count:
            polled = consumer.poll(timeout_ms=200, max_records=500)
            for batch in polled.values():
                received += len(batch)
            if polled:
                consumer.commit()
                last_at[0] = time.perf_counter()
        done.set()

    producer = KafkaProducer(
        bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=5, batch_size=65536
    )
    reader = threading.Thread(target=consume, daemon=True)
    reader.start()
    started = time.perf_counter()
    for i in range(count):
        producer.send(topic, key=str(i).encode(), value=payloads[i % 256])
    producer.flush(60)
    produced_at = time.perf_counter()
    done.wait(120)
    elapsed = max(last_at[0], produced_at) - started
    producer.close(5)
    consumer.close()
    return {
        "events": count,
        "seconds": round(elapsed, 3),
        "events_per_s": round(received / elapsed, 1),
        "produce_only_events_per_s": round(count / (produced_at - started), 1),
        "payload_bytes": len(payloads[0]),
    }


def produce_ack_latency(bootstrap: str, topic: str, count: int) -> dict:
    """One message at a time, the relay's producer settings: send → broker ack (acks=all)."""
    producer = KafkaProducer(
        bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=2, batch_size=65536
    )
    payload = raw_payload(1)
    producer.send(topic, value=payload).get(30)  # metadata and connection first
    samples = []
    for i in range(count):
        t0 = time.perf_counter()
        producer.send(topic, key=str(i).encode(), value=payload).get(30)
        samples.append((time.perf_counter() - t0) * 1000)
    producer.close(5)
    return dist(samples)


def confluent_pipe(bootstrap: str, topic: str, count: int) -> dict | None:
    try:
        from confluent_kafka import Consumer, Producer
    except ImportError:
        return None
    payloads = [raw_payload(i) for i in range(256)]
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"{topic}-reader",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    deadline = time.monotonic() + 30
    while not consumer.assignment() and time.monotonic() < deadline:
        consumer.poll(0.1)
    received = 0
    last_at = [0.0]
    done = threading.Event()

    def consume():
        nonlocal received
        while received < count:
            messages = consumer.consume(num_messages=500, timeout=0.2)
            if messages:
                received += sum(1 for m in messages if m.error() is None)
                consumer.commit(asynchronous=False)
                last_at[0] = time.perf_counter()
        done.set()

    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True, "linger.ms": 5})
    reader = threading.Thread(target=consume, daemon=True)
    reader.start()
    started = time.perf_counter()
    for i in range(count):
        while True:
            try:
                producer.produce(topic, key=str(i).encode(), value=payloads[i % 256])
                break
            except BufferError:
                producer.poll(0.01)
        producer.poll(0)
    producer.flush(60)
    produced_at = time.perf_counter()
    done.wait(120)
    elapsed = max(last_at[0], produced_at) - started
    consumer.close()
    # a single-message ack latency with librdkafka, for the record
    samples = []
    for _ in range(200):
        acked = threading.Event()
        t0 = time.perf_counter()
        producer.produce(topic, value=payloads[0], on_delivery=lambda err, msg, acked=acked: acked.set())
        while not acked.is_set():
            producer.poll(0.0005)
        samples.append((time.perf_counter() - t0) * 1000)
    producer.flush(10)
    return {
        "events": count,
        "seconds": round(elapsed, 3),
        "events_per_s": round(received / elapsed, 1),
        "produce_ack_p50_ms": round(percentile(samples, 50), 2),
        "produce_ack_p99_ms": round(percentile(samples, 99), 2),
    }


def _wait_assigned(consumer, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not consumer.assignment() and time.monotonic() < deadline:
        consumer.poll(timeout_ms=100)


def run(bootstrap: str, prefix: str, count: int) -> dict:
    topics = [f"{prefix}raw.kp", f"{prefix}raw.ack", f"{prefix}raw.ck"]
    create_topics(bootstrap, topics)
    say(f"1 raw pipe: kafka-python, {count} events ...")
    kp = kafka_python_pipe(bootstrap, topics[0], count)
    say(f"  kafka-python {kp['events_per_s']:.0f} events/s (produce only {kp['produce_only_events_per_s']:.0f}/s)")
    ack = produce_ack_latency(bootstrap, topics[1], 300 if count > 5000 else 150)
    say(f"  produce→ack (one at a time, acks=all): p50 {ack['p50']} ms, p99 {ack['p99']} ms")
    result = {"kafka_python": kp, "produce_ack_ms": ack}
    ck = confluent_pipe(bootstrap, topics[2], count * 2)
    if ck:
        say(f"  confluent-kafka {ck['events_per_s']:.0f} events/s")
        result["confluent_kafka"] = ck
    else:
        say("  confluent-kafka not installed: its peer is skipped")
    return result
