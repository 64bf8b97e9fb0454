"""Per-event CPU of the consumer hop without Kafka: where inventory's 'order placed' hop spends its time,
and what one batch costs when a consumer handles a few events at a time.

Runs the real Dispatcher of the inventory service on batches of enveloped OrderPlaced records, against
fresh copies of a migrated SQLite database, and times the parts one by one:

    .venv/bin/python bench/micro.py [--events 2000] [--template var/bench/run/db/template]

(`make bench` leaves a migrated template under var/bench/run/db/template.) DJANGO_DEBUG is honoured:
run it with DJANGO_DEBUG=1 and =0 to see what DEBUG's SQL log costs.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def setup(template: Path) -> Path:
    work = Path(tempfile.mkdtemp(prefix="conveyor-micro-"))
    for path in template.glob("*.sqlite3"):
        shutil.copy2(path, work / path.name)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("DJANGO_DEBUG", "1")
    os.environ.setdefault("DJANGO_SECRET_KEY", "micro-bench")
    os.environ["LOG_LEVEL"] = "WARNING"
    os.environ["DATABASE_URL"] = f"sqlite:///{work / 'default.sqlite3'}"
    for alias in ("shop", "inventory", "shipping", "dashboard"):
        os.environ[f"{alias.upper()}_DATABASE_URL"] = f"sqlite:///{work / f'{alias}.sqlite3'}"
    import django

    django.setup()
    return work


def records(count: int):
    from bench.common import order_placed_message
    from eventbus.dispatch import Record

    out = []
    for i in range(count):
        m = order_placed_message(i)
        headers = [(k, v.encode()) for k, v in m.headers.items()]
        out.append(Record("shop.orders", i % 6, i, m.key, m.value, headers, 0))
    return out


def timed(label: str, count: int, fn) -> float:
    started = time.process_time()
    fn()
    per = (time.process_time() - started) * 1000 / count
    print(f"{label:<58} {per * 1000:8.0f} µs/event")
    return per


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--template", default=str(ROOT / "var" / "bench" / "run" / "db" / "template"))
    args = parser.parse_args()
    work = setup(Path(args.template))
    from django.db import connections, transaction

    from bench.common import SKUS
    from eventbus import envelope
    from eventbus.dispatch import Dispatcher
    from eventbus.service import service
    from inventory.models import StockItem

    StockItem.objects.using("inventory").bulk_create([StockItem(sku=s, on_hand=10**9, reserved=0) for s in SKUS])
    n = args.events
    batch = records(n)
    print(f"DJANGO_DEBUG={os.environ['DJANGO_DEBUG']}, {n} OrderPlaced events, batches of 500")
    sample = batch[0]
    timed(
        "envelope.decode (cloudevents + strict JSON + schema)",
        n,
        lambda: [
            envelope.decode(
                topic=r.topic, partition=r.partition, offset=r.offset, key=r.key, value=r.value, headers=r.headers
            )
            for r in batch
        ],
    )
    decoded = envelope.decode(
        topic=sample.topic, partition=0, offset=0, key=sample.key, value=sample.value, headers=sample.headers
    )
    timed(
        "envelope.encode (validate + cloudevents binary)",
        n,
        lambda: [
            envelope.encode(event_type=decoded.type, source_app="shop", subject=decoded.subject, data=decoded.data)
            for _ in range(n)
        ],
    )

    from eventbus.outbox import publish
    from inventory.events import StockChanged
    from inventory.models import OutboxMessage

    def publishes():
        with transaction.atomic(using="inventory"):
            for i in range(n):
                publish(StockChanged(SKUS[i % len(SKUS)], 100, 1, 99), caused_by=decoded)

    timed("publish() of one StockChanged (encode + outbox INSERT)", n, publishes)
    message = envelope.encode(
        event_type="conveyor.inventory.stock.changed.v1",
        source_app="inventory",
        subject="MUG-001",
        data={"sku": "MUG-001", "on_hand": 100, "reserved": 1, "available": 99},
    )
    rows = lambda: [  # noqa: E731
        OutboxMessage(
            event_id=uuid.uuid4(),
            event_type="t",
            topic=message.topic,
            key="k",
            headers=message.headers,
            value=message.value,
        )
        for _ in range(n)
    ]

    def creates():
        with transaction.atomic(using="inventory"):
            for row in rows():
                row.save(using="inventory", force_insert=True)

    def bulk():
        with transaction.atomic(using="inventory"):
            OutboxMessage.objects.using("inventory").bulk_create(rows(), batch_size=500)

    timed("  outbox row: one INSERT each (as publish does)", n, creates)
    timed("  outbox row: bulk_create per batch", n, bulk)

    svc = service("inventory")
    real = dict(svc.handlers)

    def run(dispatcher, recs):
        for i in range(0, len(recs), 500):
            dispatcher.handle(recs[i : i + 500])

    def fresh():
        return records(n)

    svc.handlers = {k: lambda events: None for k in real}
    recs = fresh()
    noop = timed("dispatcher, no-op handler (decode, savepoint, inbox)", n, lambda: run(Dispatcher(svc), recs))

    def raw_savepoints():
        with transaction.atomic(using="inventory"):
            for _ in range(n):
                with transaction.atomic(using="inventory"):
                    pass

    timed("  of which: an empty savepoint per event", n, raw_savepoints)
    svc.handlers = real
    recs = fresh()
    one = timed("dispatcher, real handler, batches of one", n, lambda: [run(Dispatcher(svc), [r]) for r in recs])
    print(f"{'  => the domain handler, per event':<58} {(one - noop) * 1000:8.0f} µs/event")
    recs = fresh()
    timed("dispatcher, real handler, batches of 500 (reserve_stock)", n, lambda: run(Dispatcher(svc), recs))
    # In the saga a consumer keeps up with a trickle, so it handles a few events per batch, and what a
    # batch costs whatever its size (transaction, inbox lookup, StockChanged) is paid by each of them.
    for size in (1, 3, 10):
        recs, dispatcher, count = fresh(), Dispatcher(svc), min(n, 600)
        per = timed(
            f"dispatcher, batches of {size} events",
            count,
            lambda recs=recs, dispatcher=dispatcher, size=size, count=count: [
                dispatcher.handle(recs[i : i + size]) for i in range(0, count, size)
            ],
        )
        print(f"{'  => per batch':<58} {per * size * 1000:8.0f} µs/batch")
    if os.environ["DJANGO_DEBUG"] == "1":
        connections["inventory"].queries_log.clear()
        recs = fresh()
        with transaction.atomic(using="inventory"):
            pass
        Dispatcher(svc).handle(recs[:100])
        print(f"{'SQL statements per event (real handler)':<58} {len(connections['inventory'].queries) / 100:8.1f}")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
