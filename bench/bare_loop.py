"""Section 2, run as its own process: the least code that does one saga hop, without our framework.

consume a batch → one Django ORM transaction (a state row, an inbox row and an outbox row per event,
duplicates skipped by the inbox) → produce the outgoing events → commit offsets. It uses inventory's
tables on a database of its own. Prints `READY` once it owns its partitions and `RESULT {json}` at the end.

    python bench/bare_loop.py --in TOPIC --out TOPIC --events N
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django

django.setup()

import orjson  # noqa: E402
from django.conf import settings  # noqa: E402
from django.db import transaction  # noqa: E402
from kafka import KafkaConsumer, KafkaProducer  # noqa: E402

from inventory.models import InboxMessage, OutboxMessage, Reservation  # noqa: E402

DB = "inventory"
GROUP = "bench.bare"


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
    seen_total = handled = 0
    first = last = None
    cpu0 = None
    while seen_total < args.events:
        polled = consumer.poll(timeout_ms=200, max_records=500)
        if not polled:
            continue
        if first is None:
            first = time.perf_counter()
            cpu0 = resource.getrusage(resource.RUSAGE_SELF)
        records = [r for batch in polled.values() for r in batch]
        seen_total += len(records)
        ids = [dict(r.headers)["ce_id"].decode() for r in records]
        out = []
        with transaction.atomic(using=DB):
            seen = {
                str(i)
                for i in InboxMessage.objects.using(DB)
                .filter(group=GROUP, event_id__in=ids)
                .values_list("event_id", flat=True)
            }
            states, inbox, outbox = [], [], []
            for record, event_id in zip(records, ids, strict=True):
                if event_id in seen:
                    continue
                seen.add(event_id)
                data = orjson.loads(record.value)
                reply = orjson.dumps(
                    {
                        "order_id": data["order_id"],
                        "lines": data["lines"],
                        "status": "reserved",
                        "address": data["address"],
                    }
                )
                states.append(Reservation(order_id=data["order_id"]))
                inbox.append(InboxMessage(event_id=event_id, group=GROUP, event_type="bench"))
                outbox.append(
                    OutboxMessage(
                        event_id=uuid.uuid4(),
                        event_type="bench",
                        topic=args.target,
                        key=data["order_id"],
                        headers={},
                        value=reply,
                    )
                )
                out.append((record.key, reply))
            Reservation.objects.using(DB).bulk_create(states, ignore_conflicts=True)
            InboxMessage.objects.using(DB).bulk_create(inbox)
            OutboxMessage.objects.using(DB).bulk_create(outbox)
        for key, value in out:
            producer.send(args.target, key=key, value=value)
        producer.flush(30)
        consumer.commit()
        handled += len(out)
        last = time.perf_counter()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    elapsed = (last - first) if first and last else 0.0
    result = {
        "events": seen_total,
        "handled": handled,
        "seconds": round(elapsed, 3),
        "events_per_s": round(seen_total / elapsed, 1) if elapsed else None,
        "cpu_ms_per_event": round(
            (usage.ru_utime + usage.ru_stime - cpu0.ru_utime - cpu0.ru_stime) * 1000 / max(seen_total, 1), 3
        ),
    }
    producer.close(5)
    consumer.close()
    print("RESULT " + orjson.dumps(result).decode(), flush=True)


if __name__ == "__main__":
    main()
