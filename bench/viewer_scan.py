"""The event viewer's search: scan 100 000 CloudEvents on a topic for one payload value, through the same code
as the messages page's search (dashboard.viewer.filters → eventbus.browse.scan), and kafka-python reading
the same records raw in the same run; their ratio is the search's cost over the client library.

    .venv/bin/python -m bench.viewer_scan [--messages N]   # alone; starts a broker unless KAFKA_BOOTSTRAP_SERVERS
    make bench                                            # as one section of the whole benchmark

A search holds a bounded amount of memory whatever the topic's size (eventbus/browse.py states the bound:
about FETCH_MAX_BYTES per broker node plus one poll batch; matches are streamed, never kept); the peak RSS
growth of this process during the scans is reported as a check of that.
"""

from __future__ import annotations

import os
import resource
import sys
import time
import uuid

PARTITIONS = 6
ROUNDS = 2  # scan, raw, scan, raw: the best of each, so a noisy neighbour's moment counts against neither


def _messages(count: int, needle: str) -> list[tuple[bytes, bytes, list]]:
    """`count` OrderPlaced events (the real encoder; 256 distinct ones repeated), one carrying `needle`."""
    from eventbus import envelope

    def placed(i: int, sku: str):
        order_id = str(uuid.UUID(int=i + 1))
        data = {
            "order_id": order_id,
            "email": f"buyer{i}@example.com",
            "name": f"Buyer {i}",
            "address": f"{i} Bench Street, Testville",
            "lines": [{"sku": sku, "quantity": 1 + i % 3, "unit_price": "12.50"}],
            "total": f"{12.5 * (1 + i % 3):.2f}",
        }
        m = envelope.encode(event_type="conveyor.shop.order.placed.v1", source_app="shop", subject=order_id, data=data)
        return m.key, m.value, [(k, v.encode()) for k, v in m.headers.items()]

    templates = [placed(i, f"SKU-{i % 40:03d}") for i in range(256)]
    out = [templates[i % 256] for i in range(count)]
    out[count * 9 // 10] = placed(count, needle)  # near the end: the scan must read nearly everything
    return out


def _produce(bootstrap: str, topic: str, messages) -> None:
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5, batch_size=256 * 1024)
    for i, (key, value, headers) in enumerate(messages):
        producer.send(topic, key=key, value=value, headers=headers, partition=i % PARTITIONS)
    producer.flush(120)
    producer.close(5)


def _raw_consume(bootstrap: str, topic: str, count: int) -> float:
    """kafka-python alone: assign every partition, read from the beginning until `count` records; records/s."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, max_poll_records=500)
    partitions = [TopicPartition(topic, p) for p in range(PARTITIONS)]
    consumer.assign(partitions)
    consumer.seek_to_beginning(*partitions)
    consumer.poll(timeout_ms=0)  # connections and metadata before the clock starts, as the scan's pool has them
    consumer.seek_to_beginning(*partitions)
    received = 0
    started = time.perf_counter()
    while received < count:
        for batch in consumer.poll(timeout_ms=500).values():
            received += len(batch)
    elapsed = time.perf_counter() - started
    consumer.close()
    return received / elapsed


def _scan(topic: str, count: int, needle: str) -> tuple[float, int, int]:
    """The viewer's search for `needle` over the whole topic; (records/s, scanned, matches)."""
    from dashboard.viewer.filters import Filter
    from eventbus import browse

    info = browse.topic(topic)
    windows = {p.partition: (p.start, p.end) for p in info.partitions}
    browse.read(topic, {0: (0, 1)})  # the pooled consumer connected, as on a page that is already open
    match = Filter(text=needle.lower()).matcher()
    started = time.perf_counter()
    matches = 0
    last = None
    for item in browse.scan(topic, windows, match, max_messages=count + 1, max_seconds=300):
        if isinstance(item, browse.ScanProgress):
            last = item
        else:
            matches += 1
    elapsed = time.perf_counter() - started
    return last.scanned / elapsed, last.scanned, matches


def run(bootstrap: str, prefix: str = "", count: int = 100_000, say=print) -> dict:
    """Django must be set up (settings.KAFKA pointing at `bootstrap`). Returns the section's figures."""
    from eventbus import browse, kafka_io

    topic = f"{prefix}viewer.scan.{uuid.uuid4().hex[:6]}"
    needle = f"NEEDLE-{uuid.uuid4().hex[:8]}"
    kafka_io.ensure_topics([topic], partitions=PARTITIONS)
    say(f"viewer scan: producing {count} OrderPlaced events to {topic}")
    _produce(bootstrap, topic, _messages(count, needle))
    raw_rates, scan_rates, found = [], [], []
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    try:
        for n in range(ROUNDS):
            rate, scanned, matches = _scan(topic, count, needle)
            if n == 0:  # before the raw consumer (whose default fetch buffer is 50 MiB) raises the peak
                rss_growth_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before
            scan_rates.append(rate)
            found.append((scanned, matches))
            raw_rates.append(_raw_consume(bootstrap, topic, count))
    finally:
        browse.close()  # its clients would outlive the bench's broker
    raw, scan = max(raw_rates), max(scan_rates)
    result = {
        "messages": count,
        "viewer_scan_messages_per_s": round(scan, 1),
        "raw_consume_messages_per_s": round(raw, 1),
        "viewer_scan_ratio_to_raw": round(scan / raw, 3),
        "scanned": found[-1][0],
        "matches": found[-1][1],
        "scan_peak_rss_growth_mib": round(rss_growth_kib / 1024, 1),
        "rounds": {"raw": [round(r, 1) for r in raw_rates], "scan": [round(s, 1) for s in scan_rates]},
    }
    say(
        f"  viewer scan {scan:.0f} msg/s vs raw kafka-python {raw:.0f} msg/s (ratio {scan / raw:.2f}), "
        f"{result['matches']} match(es) in {result['scanned']} scanned"
    )
    return result


def main(argv: list[str] | None = None) -> int:
    import argparse
    import json
    from pathlib import Path

    parser = argparse.ArgumentParser(description="the event viewer's search rate against raw kafka-python")
    parser.add_argument("--messages", type=int, default=100_000)
    args = parser.parse_args(argv)
    root = Path(__file__).resolve().parent.parent
    sys.path.insert(0, str(root))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("DJANGO_DEBUG", "1")
    cluster = None
    if not os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        import tempfile

        from broker.launch import Cluster
        from tests.support import free_port_pair

        data = Path(tempfile.mkdtemp(prefix="viewer-scan-"))
        cluster = Cluster(nodes_count=1, base_port=free_port_pair(), data_dir=data / "kafka", log_dir=data / "log")
        cluster.start()
        cluster.wait_ready(timeout=120)
        os.environ["KAFKA_BOOTSTRAP_SERVERS"] = cluster.bootstrap_servers
    import logging

    import django

    django.setup()
    logging.getLogger("kafka").setLevel(logging.ERROR)
    try:
        result = run(os.environ["KAFKA_BOOTSTRAP_SERVERS"], count=args.messages)
        print(json.dumps(result, indent=2))
    finally:
        if cluster:
            cluster.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
