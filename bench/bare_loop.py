"""Section 2, run as its own process: the least code that does the same work as one saga hop, without our
framework (no dispatcher, no runner, no relay thread, no lease).

Per batch of up to 500 records (the consumer runner's batch): decode and validate each CloudEvents envelope
(`eventbus.envelope.decode`, which checks the schema); in one Django ORM transaction skip the ids already in
the inbox and, per new event, insert an inbox row, a state row (a reservation) and an outbox row holding a
real `StockReserved` envelope (`eventbus.envelope.encode`, which validates it); after the commit, relay:
read the unsent outbox rows, produce them (acks=all, idempotent), wait for the acks and mark them sent;
commit offsets at most once a second, as the runner does. It uses inventory's tables on a database of its
own. Prints `READY` once it owns its partitions and `RESULT {json}` once it has seen `--events` records
and relayed every outbox row.

    python bench/bare_loop.py --in TOPIC --out TOPIC --events N
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django

django.setup()

import orjson  # noqa: E402
from django.conf import settings  # noqa: E402
from django.db import transaction  # noqa: E402
from django.utils import timezone  # noqa: E402
from kafka import KafkaConsumer, KafkaProducer  # noqa: E402

from eventbus import envelope  # noqa: E402
from inventory.events import StockReserved  # noqa: E402
from inventory.models import InboxMessage, OutboxMessage, Reservation  # noqa: E402

DB = "inventory"
GROUP = "bench.bare"
COMMIT_SECONDS = 1.0


def apply(records, target: str) -> int:
    """Decode, then one transaction: inbox check, and per new event an inbox, a state and an outbox row."""
    events = []
    for r in records:
        try:
            events.append(
                envelope.decode(
                    topic=r.topic, partition=r.partition, offset=r.offset, key=r.key, value=r.value, headers=r.headers
                )
            )
        except envelope.Poison:
            continue  # the saga would dead-letter it; the bench never sends one
    with transaction.atomic(using=DB):
        seen = {
            str(i)
            for i in InboxMessage.objects.using(DB)
            .filter(group=GROUP, event_id__in=[e.id for e in events])
            .values_list("event_id", flat=True)
        }
        handled = 0
        for event in events:
            if event.id in seen:
                continue
            seen.add(event.id)
            order_id = event.data["order_id"]
            InboxMessage.objects.using(DB).create(event_id=event.id, group=GROUP, event_type=event.type)
            Reservation.objects.using(DB).create(order_id=order_id)
            lines = [{"sku": line["sku"], "quantity": line["quantity"]} for line in event.data["lines"]]
            message = envelope.encode(
                event_type=StockReserved.TYPE,
                source_app="inventory",
                subject=order_id,
                data={"order_id": order_id, "lines": lines},
                correlation_id=event.correlation_id,
                causation_id=event.id,
            )
            OutboxMessage.objects.using(DB).create(
                event_id=message.headers["ce_id"],
                event_type=StockReserved.TYPE,
                topic=target,
                key=order_id,
                headers=message.headers,
                value=message.value,
            )
            handled += 1
    return handled


def relay(producer: KafkaProducer) -> int:
    """Send the unsent outbox rows in order, wait for the acks, mark them sent."""
    rows = list(
        OutboxMessage.objects.using(DB)
        .filter(sent_at__isnull=True)
        .order_by("position")
        .values_list("position", "topic", "key", "headers", "value")[:1000]
    )
    if not rows:
        return 0
    futures = [
        producer.send(topic, key=key.encode(), value=bytes(value), headers=[(k, v.encode()) for k, v in h.items()])
        for _, topic, key, h, value in rows
    ]
    producer.flush(30)
    for future in futures:
        future.get(0)  # raises if a send failed
    OutboxMessage.objects.using(DB).filter(position__in=[r[0] for r in rows]).update(sent_at=timezone.now())
    return len(rows)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--in", dest="source", required=True)
    parser.add_argument("--out", dest="target", required=True)
    parser.add_argument("--events", type=int, required=True)
    args = parser.parse_args()
    bootstrap = settings.KAFKA["bootstrap_servers"]
    consumer = KafkaConsumer(
        args.source,
        bootstrap_servers=bootstrap,
        group_id=GROUP,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_records=500,
        fetch_max_wait_ms=100,
    )
    producer = KafkaProducer(
        bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=2, batch_size=65536
    )
    while not consumer.assignment():
        consumer.poll(timeout_ms=100)
    print("READY", flush=True)
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    seen_total = handled = relayed = 0
    first = last = None
    batches = 0
    committed_at = 0.0
    while seen_total < args.events:
        polled = consumer.poll(timeout_ms=200, max_records=500)
        if not polled:
            continue
        if first is None:
            first = time.perf_counter()
        records = [r for batch in polled.values() for r in batch]
        batches += 1
        seen_total += len(records)
        handled += apply(records, args.target)
        relayed += relay(producer)
        if time.monotonic() - committed_at >= COMMIT_SECONDS or seen_total >= args.events:
            consumer.commit()
            committed_at = time.monotonic()
        last = time.perf_counter()
    while relay(producer):
        pass
    usage = resource.getrusage(resource.RUSAGE_SELF)
    elapsed = (last - first) if first and last else 0.0
    cpu = usage.ru_utime + usage.ru_stime - cpu0.ru_utime - cpu0.ru_stime
    result = {
        "events": seen_total,
        "batches": batches,
        "handled": handled,
        "relayed": relayed,
        "seconds": round(elapsed, 3),
        "events_per_s": round(seen_total / elapsed, 1) if elapsed else None,
        "cpu_seconds": round(cpu, 4),
        "cpu_ms_per_event": round(cpu * 1000 / max(seen_total, 1), 3),
    }
    producer.close(5)
    consumer.close()
    print("RESULT " + orjson.dumps(result).decode(), flush=True)


if __name__ == "__main__":
    main()
