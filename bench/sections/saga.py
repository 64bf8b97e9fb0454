"""Section 3: the whole saga (every consumer, Celery) fed by `shop.services.place_order` in the bench process."""

from __future__ import annotations

import time

from bench.common import CELERY_WORKER, PYTHON, dist, order_fields, say, wait_until
from bench.harness import GROUPS, consumer_processes, saga_cpu


def start(b) -> None:
    say("3 saga: starting run_consumer shop/inventory/shipping/dashboard and a Celery worker ...")
    b.ensure_topics(b.prefix)
    for name, services in consumer_processes().items():
        b.procs.consumer(services[0], name, argv=[PYTHON, "manage.py", "run_consumer", *services])
    b.procs.start("celery", CELERY_WORKER)
    b.wait_groups(dict.fromkeys((b.prefix + g for g in GROUPS.values()), 1), watch=list(consumer_processes()))


def place(b, count: int, rate: float | None, offset: int) -> list:
    from shop.services import place_order

    ids = []
    started = time.monotonic()
    for i in range(count):
        if rate:
            delay = started + i / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        ids.append(place_order(**order_fields(offset + i)).order.id)
    return ids


def wait_done(b, ids: list, timeout: float) -> None:
    from shop.models import Order

    def done():
        b.procs.check_alive(*consumer_processes(), "celery")
        ended = Order.objects.using("shop").filter(id__in=ids, status__in=["delivered", "rejected", "cancelled"])
        return ended.count() >= len(ids)

    wait_until(done, timeout, f"{len(ids)} orders to be delivered", interval=0.1)


def latencies(b, ids: list) -> tuple[list[float], dict]:
    from shop.models import Order, OrderHistory

    created = dict(Order.objects.using("shop").filter(id__in=ids).values_list("id", "created_at"))
    delivered = dict(
        OrderHistory.objects.using("shop").filter(order_id__in=ids, status="delivered").values_list("order_id", "at")
    )
    statuses = {}
    for status in Order.objects.using("shop").filter(id__in=ids).values_list("status", flat=True):
        statuses[status] = statuses.get(status, 0) + 1
    return [(delivered[i] - created[i]).total_seconds() * 1000 for i in ids if i in delivered], statuses


def stage_latencies(b, ids: list) -> dict:
    """Where placed→delivered goes: the shop's time stamps of each stage, one hop to the next."""
    from shop.models import OrderHistory

    stamps: dict = {}
    for order_id, status, at in (
        OrderHistory.objects.using("shop").filter(order_id__in=ids).values_list("order_id", "status", "at")
    ):
        stamps.setdefault(order_id, {})[status] = at
    path = ["placed", "reserved", "packed", "dispatched", "delivered"]
    return {
        f"{a}→{b}": dist([(s[b] - s[a]).total_seconds() * 1000 for s in stamps.values() if a in s and b in s])
        for a, b in zip(path, path[1:], strict=False)
    }


def outbox_stats(b, since) -> dict:
    """Rows published since `since` per app and their commit→ack (created_at → sent_at)."""
    from inventory.models import OutboxMessage as InventoryOutbox
    from shipping.models import OutboxMessage as ShippingOutbox
    from shop.models import OutboxMessage as ShopOutbox

    out = {"events": 0, "commit_to_ack_ms": []}
    for alias, model in (("shop", ShopOutbox), ("inventory", InventoryOutbox), ("shipping", ShippingOutbox)):
        rows = model.objects.using(alias).filter(created_at__gte=since).values_list("created_at", "sent_at")
        for created, sent in rows:
            out["events"] += 1
            if sent:
                out["commit_to_ack_ms"].append((sent - created).total_seconds() * 1000)
    return out


def run(b) -> None:
    from django.utils import timezone

    warm = place(b, b.size["warm"], 20, 0)
    wait_done(b, warm, 120)
    idle = idle_cpu(b, b.size["idle_s"])
    say(f"  idle for {b.size['idle_s']}s: {sum(idle.values()):.2f} cores busy {idle}")
    b.result["sections"]["saga_idle_cores"] = idle
    count = b.size["burst"]
    say(f"  warm ({len(warm)} orders delivered); peak: placing {count} orders as fast as possible ...")
    spy = b.py_spy(b.saga_pids()) if b.args.py_spy else []
    since = timezone.now()
    cpu0 = b.procs.cpu()
    t0 = time.monotonic()
    ids = place(b, count, None, 100_000)
    placed_s = time.monotonic() - t0
    say(f"  placed {count} in {placed_s:.1f}s; waiting for delivery ...")
    wait_done(b, ids, 600)
    cpu1 = b.procs.cpu()
    b.stop_py_spy(spy)
    lat, statuses = latencies(b, ids)
    from shop.models import Order, OrderHistory

    first = (
        Order.objects.using("shop").filter(id__in=ids).order_by("created_at").values_list("created_at", flat=True)[0]
    )
    last = (
        OrderHistory.objects.using("shop")
        .filter(order_id__in=ids, status="delivered")
        .order_by("-at")
        .values_list("at", flat=True)[0]
    )
    seconds = (last - first).total_seconds()
    box = outbox_stats(b, since)
    cpu = saga_cpu(cpu0, cpu1, per=count / 1000, digits=2)
    orders_per_s = count / seconds
    b.result["saga_orders_per_s"] = round(orders_per_s, 1)
    b.result["saga_events_per_s"] = round(box["events"] / seconds, 1)
    b.result["cpu_ms_per_order"] = round(sum(cpu.values()), 1)
    b.result["saga_cpu_ms_per_event"] = round(sum(cpu.values()) * count / max(box["events"], 1), 3)
    b.result["sections"]["saga_peak"] = {
        "orders": count,
        "statuses": statuses,
        "seconds": round(seconds, 2),
        "placing_seconds": round(placed_s, 2),
        "events_published": box["events"],
        "events_per_order": round(box["events"] / count, 2),
        "cpu_ms_per_order_by_process": cpu,
        "placed_to_delivered_ms": dist(lat),
        "stages_ms": stage_latencies(b, ids),
        "relay_commit_to_ack_ms": dist(box["commit_to_ack_ms"]),
    }
    say(
        f"  peak {orders_per_s:.1f} orders/s, {b.result['saga_events_per_s']:.0f} events/s, "
        f"{b.result['cpu_ms_per_order']} CPU-ms/order ({statuses})"
    )
    low = latency_run(b, 10.0, b.size["low_s"], 200_000, "low")
    b.result["relay_commit_to_ack_p99_ms"] = low["relay_commit_to_ack_ms"]["p99"]
    b.result["relay_commit_to_ack_p50_ms"] = low["relay_commit_to_ack_ms"]["p50"]
    for k, rate in enumerate(b.args.rate):  # extra rates, e.g. an earlier round's half peak
        latency_run(b, rate, b.size["half_s"], 350_000 + k * 20_000, f"at_{rate:g}")
    # From the order's insert; the capacity section replaces it with latency from the scheduled time.
    b.result["latency_ms"] = {
        "placed_to_delivered_low": {k: low["placed_to_delivered_ms"][k] for k in ("p50", "p95", "p99")}
        | {"rate": low["rate"]},
    }


def idle_cpu(b, seconds: float) -> dict:
    """Cores each process keeps busy while no order moves: what the stack costs at rest."""
    cpu0 = b.procs.cpu()
    time.sleep(seconds)  # a measurement window, not a wait for a condition
    cpu1 = b.procs.cpu()
    return saga_cpu(cpu0, cpu1, per=seconds, digits=3)


def latency_run(b, rate: float, seconds: float, offset: int, name: str) -> dict:
    from django.utils import timezone

    count = max(10, int(rate * seconds))
    say(f"  latency at {rate:.1f} orders/s ({name}): {count} orders ...")
    since = timezone.now()
    spy = []
    if b.args.py_spy and name == "low":  # where a lone event's batch goes (the peak has its own)
        spy = b.py_spy(b.saga_pids(), tag="low-")
    cpu0, t0 = b.procs.cpu(), time.monotonic()
    ids = place(b, count, rate, offset)
    wait_done(b, ids, 300)
    cpu1, elapsed = b.procs.cpu(), time.monotonic() - t0
    b.stop_py_spy(spy)
    lat, statuses = latencies(b, ids)
    box = outbox_stats(b, since)
    cpu = saga_cpu(cpu0, cpu1, per=count / 1000, digits=2)
    out = {
        "rate": round(rate, 1),
        "orders": count,
        "statuses": statuses,
        "cpu_ms_per_order": round(sum(cpu.values()), 1),
        "cpu_ms_per_order_by_process": cpu,
        # the share of the machine's cores the saga kept busy while it ran
        "cores_busy": round(sum(cpu.values()) * count / 1000 / elapsed, 2),
        "placed_to_delivered_ms": dist(lat),
        "stages_ms": stage_latencies(b, ids),
        "relay_commit_to_ack_ms": dist(box["commit_to_ack_ms"]),
    }
    b.result["sections"][f"saga_latency_{name}"] = out
    d = out["placed_to_delivered_ms"]
    c2a = out["relay_commit_to_ack_ms"]["p99"]
    say(f"    placed→delivered p50 {d['p50']} p95 {d['p95']} p99 {d['p99']} ms; relay commit→ack p99 {c2a} ms")
    say(f"    {out['cpu_ms_per_order']} CPU-ms/order, {out['cores_busy']} cores busy")
    say("    per hop p50/p99 ms: " + ", ".join(f"{k} {v['p50']}/{v['p99']}" for k, v in out["stages_ms"].items()))
    return out


def stop(b) -> None:
    """Stop the saga's consumers and worker (once the sections that need them are done)."""
    for name in (*consumer_processes(), "celery"):
        b.procs.stop(name)
