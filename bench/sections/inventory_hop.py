"""Section 6: the real `run_consumer inventory` on a prefilled topic: 1 and 2 copies, inbox off, DEBUG on."""

from __future__ import annotations

import sqlite3
import time
from datetime import UTC, datetime

from bench.common import PYTHON, SKUS, copy_sqlite, cpu_seconds, say, wait_until
from bench.harness import BIG_STOCK, GROUPS, parse_ts


def run(b) -> None:
    count = b.size["hop"]
    messages, units = b.order_messages(count)
    say(f"6 inventory hop: {count} orders + {len(messages) - count} redeliveries through run_consumer inventory")
    variants = [
        ("inv1", 1, False),
        ("inv2", 2, False),
        ("inbox_off", 1, True),
        ("inv1_debug_on", 1, False),  # the same as inv1 with DJANGO_DEBUG=1: what DEBUG's SQL log costs
    ]
    out = {}
    for name, copies, no_inbox in variants:
        copy_sqlite(b.db_dir / "template", b.db_dir / name)
        db = b.db_dir / name / "inventory.sqlite3"
        with sqlite3.connect(db) as conn:
            now = datetime.now(UTC).isoformat()
            conn.executemany(
                "INSERT INTO inventory_stockitem (sku, on_hand, reserved, received, updated_at) VALUES (?, ?, 0, ?, ?)",
                [(s, BIG_STOCK, BIG_STOCK, now) for s in SKUS],
            )
        prefix = f"{b.prefix}{name}."
        env = b.env_for(name, prefix)
        if name.endswith("debug_on"):
            env.update(DJANGO_DEBUG="1")
        b.ensure_topics(prefix)
        names = []
        for k in range(copies):
            argv = [PYTHON, "bench/inventory_hop.py", "inventory", "--no-inbox"] if no_inbox else None
            b.procs.consumer("inventory", f"{name}-{k}", env, argv)
            names.append(f"{name}-{k}")
        b.wait_groups({prefix + GROUPS["inventory"]: copies}, watch=names)
        spy = b.py_spy({names[0]: b.procs.running[names[0]].pid}) if b.args.py_spy and name == "inv1" else []
        cpu0 = {n: cpu_seconds(b.procs.running[n].pid) for n in names}
        started = b.produce(f"{prefix}shop.orders", messages)

        progress = {"n": -1, "at": time.monotonic()}

        def finished(db=db, progress=progress, name=name):
            with sqlite3.connect(db, timeout=30) as conn:
                reservations = conn.execute("SELECT count(*) FROM inventory_reservation").fetchone()[0]
                if reservations != progress["n"]:
                    progress.update(n=reservations, at=time.monotonic())
                elif time.monotonic() - progress["at"] > 60:
                    raise RuntimeError(f"{name}: no progress for 60 s at {reservations}/{count} orders")
                pending = conn.execute("SELECT count(*) FROM inventory_outboxmessage WHERE sent_at IS NULL").fetchone()[
                    0
                ]
                total = conn.execute("SELECT count(*) FROM inventory_outboxmessage").fetchone()[0]
            # one StockReserved per order; StockChanged rows are coalesced per batch, so fewer than one each
            return reservations >= count and pending == 0 and total >= count

        try:
            wait_until(finished, 300, f"{name}: every order reserved and relayed", interval=0.2, raise_errors=True)
        except Exception:
            for n in names:
                b.procs.stop(n)
            b.stop_py_spy(spy)
            raise
        b.stop_py_spy(spy)
        with sqlite3.connect(db, timeout=30) as conn:
            last_sent = conn.execute("SELECT max(sent_at) FROM inventory_outboxmessage").fetchone()[0]
            reserved_units = conn.execute("SELECT sum(reserved) FROM inventory_stockitem").fetchone()[0]
            reservations = conn.execute("SELECT count(*) FROM inventory_reservation").fetchone()[0]
            lines = conn.execute("SELECT count(*) FROM inventory_reservationline").fetchone()[0]
            inbox = conn.execute("SELECT count(*) FROM inventory_inboxmessage").fetchone()[0]
        seconds = parse_ts(last_sent) - started
        cpu = sum(cpu_seconds(b.procs.running[n].pid) - cpu0[n] for n in names)
        for n in names:
            b.procs.stop(n)
        out[name] = {
            "consumers": copies,
            "inbox": not no_inbox,
            "records": len(messages),
            "orders": count,
            "seconds": round(seconds, 3),
            "events_per_s": round(len(messages) / seconds, 1),
            "orders_per_s": round(count / seconds, 1),
            "cpu_ms_per_event": round(cpu * 1000 / len(messages), 3),
            "over_reserved_units": reserved_units - units,
            "extra_reservations": reservations - count + (lines - 2 * count) // 2,
            "inbox_rows": inbox,
        }
        say(
            f"  {name}: {out[name]['events_per_s']:.0f} events/s, {out[name]['cpu_ms_per_event']} CPU-ms/event, "
            f"over-reserved units {reserved_units - units}"
        )
        inventory_figures(b, out)


def inventory_figures(b, out: dict) -> None:
    b.result["sections"]["inventory"] = out
    one, two, off = out.get("inv1"), out.get("inv2"), out.get("inbox_off")
    if one and two:
        b.result["inventory_1_vs_2_consumers"] = {
            "one_events_per_s": one["events_per_s"],
            "two_events_per_s": two["events_per_s"],
            "ratio": round(two["events_per_s"] / one["events_per_s"], 2),
        }
    if one and off:
        b.result["inbox_on_vs_off"] = {
            "on_events_per_s": one["events_per_s"],
            "off_events_per_s": off["events_per_s"],
            "ratio": round(one["events_per_s"] / off["events_per_s"], 3),
            # CPU per event is far steadier than events/s on a shared machine
            "cpu_ms_per_event_on": one["cpu_ms_per_event"],
            "cpu_ms_per_event_off": off["cpu_ms_per_event"],
            "cpu_ratio": round(off["cpu_ms_per_event"] / one["cpu_ms_per_event"], 3),
        }
    if one:
        b.result["duplicates_double_reservations"] = max(0, one["extra_reservations"]) + max(
            0, one["over_reserved_units"]
        )
    if off:
        b.result["duplicates_double_reservations_inbox_off"] = max(0, off["extra_reservations"]) + max(
            0, off["over_reserved_units"]
        )
