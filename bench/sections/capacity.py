"""Section 3b: the saga under open-loop load: its sustained capacity, latency from each order's scheduled
time at 10/s, 50 % and 80 % of it, and CPU per delivery.

Open loop: order i is due at start + i / rate, whatever happened to order i - 1. A generator that falls
behind places late orders at once, and their latency still counts from when they were due, so a stall
shows in the figures instead of hiding in a slower schedule (no coordinated omission). The generator is
`shop.services.place_order` in the bench's own process (its CPU is reported apart as the load generator's).
"""

from __future__ import annotations

import statistics
import time
from datetime import datetime

from bench.common import dist, order_fields, percentile, rnd, say, wait_until
from bench.deliveries import Deliveries, delta
from bench.harness import GROUPS, SAGA_PROCESSES, consumer_processes

# A probe passes when all three hold (see docs/performance.md, "Method").
ACHIEVED_SHARE = 0.99
P99_GROWTH = 1.25
DRAIN_SECONDS = 2.0


def open_loop(
    b,
    rate: float,
    *,
    warm: float,
    seconds: float,
    offset: int,
    tag: str,
    groups=None,
    bootstrap=None,
    cpu=None,
    fields=order_fields,
) -> dict:
    """Orders at `rate` for `warm` + `seconds`; figures over the last `seconds` (the window). `groups`,
    `bootstrap` and `cpu` (a reader of CPU seconds by process, "bench" for the load generator) default to
    the saga of section 3; `fields(i)` gives order i's customer and lines (the demo catalogue's by default)."""
    read_cpu = cpu or (lambda: {k: v for k, v in b.procs.cpu().items() if k in SAGA_PROCESSES})
    from shop.models import Order, OrderHistory
    from shop.services import place_order

    warm_n, window_n = int(rate * warm), max(3, int(rate * seconds))
    total = warm_n + window_n
    counter = Deliveries(groups or [b.prefix + g for g in GROUPS.values()], b.prefix, bootstrap)
    try:
        before, published0 = counter.settled(), counter.published()
        cpu0 = read_cpu()
        start = time.time() + 0.05
        due, placed_at, ids = [], [], []
        for i in range(total):
            at = start + i / rate
            delay = at - time.time()
            if delay > 0:
                time.sleep(delay)
            ids.append(place_order(**fields(offset + i)).order.id)
            due.append(at)
            placed_at.append(time.time())
        end_due = start + total / rate
        wait_until(lambda: _ended(b, ids), 60 + total / max(rate, 1) * 3, f"{total} orders ({tag}) to end")
        cpu1 = read_cpu()
        after, published1 = counter.settled(), counter.published()
    finally:
        counter.close()
    stamps: dict = {}
    for order_id, status, at in (
        OrderHistory.objects.using("shop")
        .filter(order_id__in=ids, status__in=["reserved", "delivered"])
        .values_list("order_id", "status", "at")
    ):
        stamps.setdefault(order_id, {})[status] = at.timestamp()
    statuses: dict = {}
    for status in Order.objects.using("shop").filter(id__in=ids).values_list("status", flat=True):
        statuses[status] = statuses.get(status, 0) + 1
    window = range(warm_n, total)
    delivered = [(stamps[ids[i]]["delivered"] - due[i]) * 1000 for i in window if "delivered" in stamps.get(ids[i], {})]
    reserved = [(stamps[ids[i]]["reserved"] - due[i]) * 1000 for i in window if "reserved" in stamps.get(ids[i], {})]
    thirds = [
        [(stamps[ids[i]]["delivered"] - due[i]) * 1000 for i in part if "delivered" in stamps.get(ids[i], {})]
        for part in (window[: window_n // 3], window[window_n // 3 : 2 * window_n // 3], window[2 * window_n // 3 :])
    ]
    # On schedule, the window's last order goes (window_n - 1) / rate after its first was due.
    achieved = (window_n - 1) / max(placed_at[-1] - due[warm_n], 1e-9)
    last_delivery = max((s["delivered"] for s in stamps.values() if "delivered" in s), default=end_due)
    deliveries = delta(before, after)
    cpu = {k: (cpu1[k] - cpu0.get(k, 0)) * 1000 for k in cpu1}  # CPU-ms over the run, by process
    loadgen_ms = cpu.pop("bench", 0.0)
    saga_ms = sum(cpu.values())
    p99_mid, p99_last = percentile(thirds[1], 99), percentile(thirds[2], 99)
    out = {
        "rate": rnd(rate, 1),
        "achieved_rate": rnd(min(achieved, rate * 10), 1),
        "orders": total,
        "samples": len(delivered),
        "statuses": statuses,
        "placed_to_delivered_ms": dist(delivered),
        "placed_to_reserved_ms": dist(reserved),
        "p99_middle_third_ms": rnd(p99_mid, 1),
        "p99_last_third_ms": rnd(p99_last, 1),
        "drained_after_end_s": rnd(last_delivery - end_due, 2),
        "deliveries": deliveries,
        "events_published": published1 - published0,
        "deliveries_per_order": rnd(deliveries / total, 2),
        "saga_cpu_ms_per_delivery": rnd(saga_ms / max(deliveries, 1), 3),
        "saga_cpu_ms_per_order": rnd(saga_ms / total, 2),
        "cpu_ms_per_order_by_process": {k: round(v / total, 2) for k, v in cpu.items()},
        "loadgen_cpu_ms_per_order": rnd(loadgen_ms / total, 2),
        "saga_deliveries_per_s": rnd(deliveries / max(end_due - start, 1e-9), 1),
        "cores_busy": rnd(saga_ms / 1000 / max(time.time() - start, 1e-9), 2),
        "loadavg": b.loadavg(),
    }
    failed = verdict(
        rate=rate,
        achieved=achieved,
        p99_mid=p99_mid,
        p99_last=p99_last,
        drained_after_end=last_delivery - end_due,
        undelivered=window_n - len(delivered),
    )
    out["sustained"] = not failed
    out["failed"] = failed
    d = out["placed_to_delivered_ms"]
    say(
        f"    {tag}: {rate:.1f}/s → achieved {out['achieved_rate']}/s, placed→delivered p50/p95/p99 "
        f"{d['p50']}/{d['p95']}/{d['p99']} ms (n {d['n']}), thirds p99 {out['p99_middle_third_ms']}→"
        f"{out['p99_last_third_ms']}, last delivery {out['drained_after_end_s']:+}s after the end, "
        f"{out['deliveries_per_order']} deliveries/order, {out['saga_cpu_ms_per_delivery']} CPU-ms/delivery, "
        f"load {out['loadavg'][0]} " + ("SUSTAINED" if not failed else "NOT sustained: " + "; ".join(failed))
    )
    return out


def verdict(
    *, rate: float, achieved: float, p99_mid, p99_last, drained_after_end: float, undelivered: int
) -> list[str]:
    """Why a probe was not sustained (an empty list when it was)."""
    failed = []
    if achieved < ACHIEVED_SHARE * rate:
        failed.append(f"achieved {achieved:.1f}/s < {ACHIEVED_SHARE:.0%} of {rate:.1f}/s")
    if p99_mid is None or p99_last is None or p99_last > P99_GROWTH * p99_mid:
        failed.append(f"last third p99 {rnd(p99_last)} ms > {P99_GROWTH} × middle third's {rnd(p99_mid)} ms")
    if drained_after_end > DRAIN_SECONDS:
        failed.append(f"last delivery {drained_after_end:.1f}s after the end (> {DRAIN_SECONDS:g}s)")
    if undelivered > 0:
        failed.append(f"{undelivered} orders of the window not delivered")
    return failed


def _ended(b, ids) -> bool:
    from shop.models import Order

    b.procs.check_alive(*consumer_processes(), "celery")
    return Order.objects.using("shop").filter(
        id__in=ids, status__in=["delivered", "rejected", "cancelled"]
    ).count() >= len(ids)


def search(
    b, start_rate: float, *, warm: float, seconds: float, probes: int, offset: int, tag: str, down: float = 0.5, **how
):
    """The highest sustained rate found by `probes` rates tried in open-loop runs: up by half while they
    pass, down to `down` × the rate while none has passed, then bisect. A rate fails only when a second
    probe at it fails too (not counted among `probes`): noise fails a probe far more often than it passes
    one, and one unlucky probe would put every rate above it out of reach."""
    lo = hi = None
    rate = max(2.0, start_rate)
    tried = []

    def sustained(rate: float) -> bool:
        k = len(tried)
        run = open_loop(
            b, rate, warm=warm, seconds=seconds, offset=offset + k * 100_000, tag=f"{tag} probe {k + 1}", **how
        )
        tried.append(run)
        return run["sustained"]

    for _ in range(probes):
        if sustained(rate) or sustained(rate):
            lo = rate
            rate = rate * 1.5 if hi is None else (lo + hi) / 2
        else:
            hi = rate
            rate = rate * down if lo is None else (lo + hi) / 2
    return (lo or 0.0), tried


def run(b) -> None:
    size = b.size
    peak = b.result.get("saga_orders_per_s") or 50.0
    short = " (--quick: shorter than the 10 s + 60 s of the definition)" if b.args.quick else ""
    say(
        f"3b capacity: open-loop probes of {size['cap_warm']}s warm-up + {size['cap_window']}s, from half the "
        f"burst peak ({peak / 2:.1f}/s){short} ..."
    )
    capacity, probes = search(
        b,
        peak / 2,
        warm=size["cap_warm"],
        seconds=size["cap_window"],
        probes=size["cap_probes"],
        offset=1_000_000,
        tag="capacity",
    )
    b.result["capacity_orders_per_s"] = rnd(capacity, 1)
    b.result["sections"]["capacity"] = {
        "warm_s": size["cap_warm"],
        "window_s": size["cap_window"],
        "quick": bool(b.args.quick),
        "probes": probes,
        "bound_by": _bound(probes),
    }
    say(f"  capacity {capacity:.1f} orders/s ({b.result['sections']['capacity']['bound_by']})")
    base = capacity or max((p["achieved_rate"] for p in probes), default=peak / 2) / 2
    if not capacity:
        say(f"  no probe was sustained; latency runs use {base:.1f}/s as the capacity")
    b.result["latency_rates"] = {"low": 10.0, "half": rnd(base * 0.5, 1), "80": rnd(base * 0.8, 1)}
    latency = {}
    runs_by = {}
    for name, rate in (("low", 10.0), ("half", base * 0.5), ("80", base * 0.8)):
        runs = [
            open_loop(
                b,
                rate,
                warm=min(3, size["lat_s"] / 3),
                seconds=size["lat_s"],
                offset=2_000_000 + k * 50_000 + len(runs_by) * 500_000,
                tag=f"latency {name} run {k + 1}",
            )
            for k in range(size["lat_runs"])
        ]
        runs_by[name] = runs
    key = {"low": "placed_to_delivered_low", "half": "placed_to_delivered", "80": "placed_to_delivered_80"}
    for name, runs in runs_by.items():
        latency[key[name]] = _summary(runs, "placed_to_delivered_ms")
    latency["placed_to_reserved"] = _summary(runs_by["half"], "placed_to_reserved_ms")
    latency["placed_to_reserved_low"] = _summary(runs_by["low"], "placed_to_reserved_ms")
    latency["placed_to_reserved_80"] = _summary(runs_by["80"], "placed_to_reserved_ms")
    b.result["latency_ms"] = latency
    b.result["sections"]["latency_runs"] = runs_by
    half = runs_by["half"]
    b.result["saga_cpu_ms_per_delivery"] = rnd(statistics.median(r["saga_cpu_ms_per_delivery"] for r in half), 3)
    b.result["deliveries_per_order"] = rnd(statistics.median(r["deliveries_per_order"] for r in half), 2)
    b.result["loadgen_cpu_ms_per_order"] = rnd(statistics.median(r["loadgen_cpu_ms_per_order"] for r in half), 2)
    b.result["saga_cpu_ms_per_order_at_half"] = rnd(statistics.median(r["saga_cpu_ms_per_order"] for r in half), 2)
    b.result["saga_deliveries_per_s_at_half"] = rnd(statistics.median(r["saga_deliveries_per_s"] for r in half), 1)
    say(
        f"  at half capacity: {b.result['deliveries_per_order']} deliveries/order, "
        f"{b.result['saga_cpu_ms_per_delivery']} saga CPU-ms/delivery, load generator "
        f"{b.result['loadgen_cpu_ms_per_order']} CPU-ms/order (apart)"
    )


def _summary(runs: list[dict], field: str) -> dict:
    """Median over runs of each percentile, with the spread (min–max) of the p99, the median achieved rate
    and every sample counted."""
    p = {q: [r[field][q] for r in runs if r[field][q] is not None] for q in ("p50", "p95", "p99")}
    return {
        **{q: rnd(statistics.median(v), 1) if v else None for q, v in p.items()},
        "p99_spread": [rnd(min(p["p99"]), 1), rnd(max(p["p99"]), 1)] if p["p99"] else None,
        "rate": runs[0]["rate"],
        "achieved_rate": rnd(statistics.median(r["achieved_rate"] for r in runs), 1),
        "samples": sum(r[field]["n"] for r in runs),
        "runs": len(runs),
        "loadavg": [r["loadavg"][0] for r in runs],
        "at": datetime.now().astimezone().isoformat(timespec="seconds"),
    }


def _bound(probes: list[dict]) -> str:
    """What stopped the first failing probe above the capacity, the highest rate a probe sustained (taken
    from the probes, as they report it, so an unlucky first probe at that very rate is not above it): the
    generator, the p99 or the drain."""
    capacity = max((p["rate"] for p in probes if p["sustained"]), default=0.0)
    failing = [p for p in probes if not p["sustained"] and p["rate"] > capacity]
    if not failing:
        return "every probe sustained: the capacity is at least the highest probe"
    return "first failure: " + "; ".join(min(failing, key=lambda p: p["rate"])["failed"])
