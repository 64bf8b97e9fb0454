"""Section 8: scale-out. N = 1, 2 and 4 copies of the consumers against PostgreSQL and a three-node Kafka
cluster, every copy held to the same CPU quota, the offered rate scaled with N. `scale_efficiency[N]` =
capacity(N) ÷ (N × capacity(1)), each capacity found as in section 3b (same three rules): N = 1 searched up
from a low rate, N = 2 and 4 from N × capacity(1) down by steps of 0.8 while no probe passes, then N = 1
again from its first capacity up: capacity(1) is the higher of its two searches.

A copy is what `make run` runs for the consumers: ONE `run_consumer shop inventory shipping dashboard`
process (each service in its own consumer group, so N copies are N members of every group) and its Celery
worker, both in one cgroup with quota `QUOTA`. Before the probes each copy's idle CPU is read over a few
seconds with no orders: what the copy pays for polls, heartbeats and relay checks out of its quota.

The orders use a catalogue of `CATALOGUE` generated products, each order a few of them at random, not the
demo's 9 SKUs: with 9 SKUs every inventory copy's transaction locks the same few stock rows and N copies
queue on them, which measures the demo catalogue rather than the design.

Quotas: systemd-run needs systemd as PID 1, so the bench writes the cgroup filesystem itself: one cgroup
per copy with `cpu.cfs_quota_us` (cgroup v1 `cpu` controller, or `cpu.max` on a cgroup v2 hierarchy). If
neither can be written, the figures are taken without quotas and say so, with the error.

Shared points watched while it runs: each app's relay commit→ack (outbox created_at → sent_at), PostgreSQL
backends waiting on a lock (pg_stat_activity, sampled twice a second), each broker's CPU and its busiest
request handler thread's CPU share (bench/kafka_handlers.py), and how often the quota throttled each copy
(a copy that is throttled is the bound, not something it shares).
"""

from __future__ import annotations

import os
import random
import shutil
import threading
import time
from pathlib import Path

from bench.common import CELERY_WORKER, PYTHON, cpu_seconds, dist, order_fields, process_tree, rnd, say
from bench.harness import BIG_STOCK, GROUPS
from bench.kafka_handlers import RequestHandlers
from bench.sections.capacity import search

# BENCH_SCALE_COPIES=1 (say) runs only some of them, for a look at one N; the efficiency needs N = 1.
COPIES = tuple(int(n) for n in os.environ.get("BENCH_SCALE_COPIES", "1,2,4").split(","))
PARTITIONS = 12  # divides evenly among 1, 2 and 4 copies
# Cores per copy (one combined consumer process and its Celery worker). N = 4 copies take 4 × QUOTA of the
# 2 cores; the three brokers, PostgreSQL, Redis and the load generator need the rest. At 0.3, N = 4's copies
# got their quota in little more than half of their periods: the machine and the stock rows bound it.
QUOTA = float(os.environ.get("BENCH_SCALE_QUOTA", "0.25"))
CATALOGUE = 500  # generated products for the scale-out orders
CGROUP_V1 = Path("/sys/fs/cgroup/cpu")
CGROUP_V2 = Path("/sys/fs/cgroup/unified")
# From N = 2 on, the search starts at N × capacity(1) and, while no probe has passed, goes down to 0.8 of
# the rate (the goal's efficiency) instead of half, so the figure is resolved where the goal is decided.
DOWN = 0.8


def catalogue_sku(k: int) -> str:
    return f"SCL-{k:04d}"


def scale_order_fields(i: int) -> dict:
    """Order i of the scale-out runs: the usual customer, and 2 or 3 distinct products of the catalogue
    drawn at random (seeded by i, so a run can be repeated)."""
    draw = random.Random(i)
    skus = draw.sample(range(CATALOGUE), 2 + i % 2)
    return {**order_fields(i), "lines": [{"sku": catalogue_sku(k), "quantity": draw.randint(1, 3)} for k in skus]}


class Quotas:
    """One cgroup per copy under a parent of ours; `error` says why none could be made."""

    def __init__(self, cores: float):
        self.cores = cores
        # A short period: with the default 100 ms a copy at 6 % runs 6 ms then waits 94, which adds up to a
        # tenth of a second to every hop. The kernel refuses a quota under 1 ms, so 6 % needs 17 ms.
        self.period = max(10_000, int(1_000 / cores) + 1)
        self.root = None
        self.error = None
        for base, v2 in ((CGROUP_V1, False), (CGROUP_V2, True)):
            try:
                root = base / f"conveyor-bench-{os.getpid()}"
                root.mkdir(exist_ok=True)
                if v2:
                    (base / "cgroup.subtree_control").write_text("+cpu")
                    (root / "cgroup.subtree_control").write_text("+cpu")
                self.root, self.v2 = root, v2
                return
            except OSError as exc:
                self.error = f"{base}: {type(exc).__name__}: {exc}"

    @property
    def label(self) -> str:
        if self.root is None:
            return f"no quotas ({self.error})"
        return f"{self.cores:g} cores per copy ({'cgroup v2 cpu.max' if self.v2 else 'cgroup v1 cpu.cfs_quota_us'})"

    def hold(self, name: str, pid: int) -> None:
        if self.root is None:
            return
        group = self.root / name
        group.mkdir(exist_ok=True)
        quota = int(self.cores * self.period)
        if self.v2:
            (group / "cpu.max").write_text(f"{quota} {self.period}")
        else:
            (group / "cpu.cfs_period_us").write_text(str(self.period))
            (group / "cpu.cfs_quota_us").write_text(str(quota))
        for each in process_tree(pid):
            (group / "cgroup.procs").write_text(str(each))

    def throttled(self, name: str) -> float | None:
        """The share of scheduler periods in which the quota stopped the copy."""
        if self.root is None:
            return None
        try:
            stat = dict(line.split() for line in (self.root / name / "cpu.stat").read_text().splitlines())
        except OSError:
            return None
        if self.v2:
            periods, throttled = int(stat.get("nr_periods", 0)), int(stat.get("nr_throttled", 0))
        else:
            periods, throttled = int(stat["nr_periods"]), int(stat["nr_throttled"])
        return round(throttled / periods, 3) if periods else 0.0

    def release(self) -> None:
        if self.root is None:
            return
        parent = self.root.parent
        for group in sorted(self.root.iterdir()) if self.root.exists() else ():
            if group.is_dir():
                for pid in (group / "cgroup.procs").read_text().split():
                    try:
                        (parent / "cgroup.procs").write_text(pid)
                    except OSError:
                        pass
                group.rmdir()
        self.root.rmdir()


class LockWaits(threading.Thread):
    """Samples pg_stat_activity: how many backends wait on a heavyweight lock (Lock) or an LWLock."""

    def __init__(self, port: int):
        super().__init__(daemon=True)
        self.port = port
        self.samples: list[tuple[int, int, int]] = []
        self.waiting_on: dict[str, int] = {}  # "wait_event: the statement's start" → samples
        self.halt = threading.Event()

    def run(self) -> None:
        import psycopg

        with psycopg.connect(host="127.0.0.1", port=self.port, user="conveyor", dbname="postgres") as conn:
            conn.autocommit = True
            while not self.halt.wait(0.5):
                row = conn.execute(
                    "SELECT count(*) FILTER (WHERE wait_event_type = 'Lock'), "
                    "count(*) FILTER (WHERE wait_event_type = 'LWLock'), "
                    "count(*) FILTER (WHERE state = 'active') "
                    "FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()"
                ).fetchone()
                self.samples.append(tuple(row))
                if row[0]:
                    for event, query in conn.execute(
                        "SELECT wait_event, left(regexp_replace(query, '\\s+', ' ', 'g'), 70) FROM pg_stat_activity "
                        "WHERE wait_event_type = 'Lock' AND backend_type = 'client backend'"
                    ).fetchall():
                        key = f"{event}: {query}"
                        self.waiting_on[key] = self.waiting_on.get(key, 0) + 1

    def summary(self) -> dict:
        n = max(len(self.samples), 1)
        return {
            "samples": len(self.samples),
            "share_with_lock_wait": round(sum(1 for s in self.samples if s[0]) / n, 3),
            "mean_lock_waiters": round(sum(s[0] for s in self.samples) / n, 3),
            "max_lock_waiters": max((s[0] for s in self.samples), default=0),
            "mean_lwlock_waiters": round(sum(s[1] for s in self.samples) / n, 3),
            "mean_active_backends": round(sum(s[2] for s in self.samples) / n, 2),
            "top_lock_waits": dict(sorted(self.waiting_on.items(), key=lambda kv: -kv[1])[:5]),
        }


def run(b) -> None:
    from broker.launch import Cluster
    from tests.faults.postgres import PostgresServer, django_databases, env_for
    from tests.support import free_port_pair

    size = b.size
    say(
        f"8 scale-out: 1, 2, 4 copies (a combined consumer process and its Celery worker each) on PostgreSQL "
        f"+ 3 Kafka nodes, {QUOTA:g} cores per copy, a catalogue of {CATALOGUE} products"
    )
    pg = PostgresServer()
    cluster = Cluster(
        nodes_count=3,
        base_port=free_port_pair(),
        data_dir=b.run_dir / "kafka3",
        log_dir=b.run_dir / "kafka3-log",
        partitions=PARTITIONS,
    )
    quotas = Quotas(QUOTA)
    say(f"  quotas: {quotas.label}")
    out = {
        "quota": quotas.label,
        "copy": "run_consumer shop inventory shipping dashboard + a Celery worker, one cgroup",
        "catalogue_products": CATALOGUE,
        "partitions": PARTITIONS,
        "runs": {},
    }
    b.result["sections"]["scale"] = out
    b.result["scale_quota"] = quotas.label
    try:
        pg.init().start()
        cluster.start()
        took = cluster.wait_ready(timeout=180)
        say(f"  PostgreSQL on {pg.port}; Kafka cluster {cluster.bootstrap_servers} ready in {took:.1f}s")
        template = pg.create_databases("tmpl")
        pg.migrate(template)
        with django_databases({a: template[a] for a in ("shop", "inventory")}):
            _seed()
        from django.db import connections

        connections.close_all()
        pg_pid = int((pg.data / "postmaster.pid").read_text().split()[0])
        capacity: dict[int, float] = {}

        def measure(n: int, start_rate: float, down: float, label: str | None = None) -> dict:
            return _one(b, n, pg, pg_pid, cluster, quotas, start_rate, probes, down, env_for, django_databases, label)

        # Four rates each (three with --quick; a failed rate is probed twice): N = 1 from a low rate up;
        # N = 2 and 4 from N × capacity(1) down to 0.8, 0.64 and 0.51 of it while none passes.
        probes = size["scale_probes"] + 1
        for n in COPIES:
            if n == 1 or 1 not in capacity:
                out["runs"][str(n)] = measure(n, _first_rate(), 0.5)
            else:
                out["runs"][str(n)] = measure(n, n * (capacity[1] or 1.0), DOWN)
            capacity[n] = out["runs"][str(n)]["capacity_orders_per_s"]
        if 1 in capacity and len(capacity) > 1:
            # N = 1 once more, after the others, searched up from its first capacity: a probe fails on noise
            # far more often than it passes on it, so one search reads capacity(1) low, and a low capacity(1)
            # makes every efficiency look better. The higher of the two is the reference.
            out["runs"]["1again"] = measure(1, capacity[1] or _first_rate(), 0.5, label="1again")
            out["capacity_1_runs"] = [capacity[1], out["runs"]["1again"]["capacity_orders_per_s"]]
            capacity[1] = max(out["capacity_1_runs"])
        one = capacity.get(1) or 0
        b.result["scale_capacity_orders_per_s"] = {str(n): c for n, c in capacity.items()}
        b.result["scale_efficiency"] = {str(n): (rnd(c / (n * one), 2) if one else None) for n, c in capacity.items()}
        b.result["scale_cpu_ms_per_order"] = {str(n): r["cpu_ms_per_order"] for n, r in out["runs"].items()}
        say(f"  scale efficiency {b.result['scale_efficiency']} ({quotas.label})")
    finally:
        for name in [n for n in b.procs.running if n.startswith("scale")]:
            b.procs.stop(name)
        quotas.release()
        cluster.stop()
        pg.destroy()
        shutil.rmtree(b.run_dir / "kafka3", ignore_errors=True)


def _first_rate() -> float:
    """Where N = 1 starts: BENCH_SCALE_START_RATE, else low (12 orders/s per core of quota, 3/s at 0.25) so
    that the search goes up from a probe that passes: a failed first probe leaves minutes of backlog."""
    if os.environ.get("BENCH_SCALE_START_RATE"):
        return float(os.environ["BENCH_SCALE_START_RATE"])
    return max(2.0, 12 * QUOTA)


def _seed() -> None:
    from inventory.models import StockItem
    from shop.models import Product

    skus = [catalogue_sku(k) for k in range(CATALOGUE)]
    Product.objects.using("shop").bulk_create(
        [Product(sku=s, name=f"Scale item {s}", description="", price="10.00", available=BIG_STOCK) for s in skus]
    )
    StockItem.objects.using("inventory").bulk_create(
        [StockItem(sku=s, on_hand=BIG_STOCK, reserved=0, received=BIG_STOCK) for s in skus]
    )


def _one(b, n, pg, pg_pid, cluster, quotas, start_rate, probes, down, env_for, django_databases, label=None) -> dict:
    from django.db import connections
    from django.test import override_settings
    from django.utils import timezone
    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic

    from bench.sections.saga import outbox_stats
    from eventbus import schemas

    size = b.size
    label = label or str(n)  # names this run's databases, topics and processes
    tag = f"scale{label}-"
    prefix = f"{b.prefix}scale{label}."
    urls = pg.create_databases(f"scale{label}", template="tmpl")
    env = {
        **env_for(urls),
        "KAFKA_BOOTSTRAP_SERVERS": cluster.bootstrap_servers,
        "KAFKA_TOPIC_PREFIX": prefix,
        "KAFKA_TOPIC_PARTITIONS": str(PARTITIONS),
    }
    admin = KafkaAdminClient(bootstrap_servers=cluster.bootstrap_servers, client_id="bench-scale")
    try:
        logical = schemas.all_topics()
        topics = [prefix + t for t in logical] + [prefix + t + ".dlt" for t in logical]
        admin.create_topics([NewTopic(t, PARTITIONS, 3) for t in topics])
    finally:
        admin.close()
    time.sleep(1)
    copies: dict[str, list[str]] = {}  # copy (its cgroup) -> its processes
    for k in range(n):
        consumer, worker = f"{tag}consumers-{k}", f"{tag}celery-{k}"
        b.procs.consumer("consumers", consumer, env, argv=[PYTHON, "manage.py", "run_consumer", *GROUPS])
        b.procs.start(worker, [*CELERY_WORKER, "-n", f"scale{label}-{k}@%h"], env)
        copies[f"{tag}copy-{k}"] = [consumer, worker]
    names = [name for processes in copies.values() for name in processes]
    groups = [prefix + g for g in GROUPS.values()]
    b.wait_groups(dict.fromkeys(groups, n), timeout=180, watch=names, bootstrap=cluster.bootstrap_servers)
    # The quotas hold from here on: starting Django under a fraction of a core would only make the wait longer.
    for copy, processes in copies.items():
        for name in processes:
            quotas.hold(copy, b.procs.running[name].pid)
    kafka_pids = [node.process.pid for node in cluster.nodes]
    redis_pid = b.redis.process.pid if b.redis else None

    def read_cpu() -> dict:
        out = {name: cpu_seconds(p.pid, descendants=True) for name, p in b.procs.running.items() if name in names}
        out |= {f"kafka{i + 1}": cpu_seconds(pid) for i, pid in enumerate(kafka_pids)}
        out["postgres"] = cpu_seconds(pg_pid, descendants=True)
        if redis_pid:
            out["redis"] = cpu_seconds(redis_pid)
        out["bench"] = cpu_seconds(os.getpid())
        return out

    idle = _idle(read_cpu, copies, size["idle_s"])
    say(
        f"  N={label}: idle, no orders, over {size['idle_s']}s: "
        + ", ".join(f"{c} {v['cores']} cores ({v['share_of_quota']:.0%} of quota)" for c, v in idle["copies"].items())
        + f"; brokers {idle['kafka_cores']}, PostgreSQL {idle['postgres_cores']} cores"
    )
    # With --py-spy: where the first copy's consumer process spends its quota during the probes.
    spy = b.py_spy({"consumers-0": b.procs.running[f"{tag}consumers-0"].pid}, tag=tag) if b.args.py_spy else []
    locks = LockWaits(pg.port)
    handlers = RequestHandlers({f"kafka{i + 1}": pid for i, pid in enumerate(kafka_pids)})
    # The generator places orders as the web would, so its relay wake-ups go to the copies' channels.
    with (
        django_databases({a: urls[a] for a in ("shop", "inventory", "shipping")}),
        override_settings(KAFKA_TOPIC_PREFIX=prefix),
    ):
        since = timezone.now()
        locks.start()
        handlers.start()
        try:
            capacity, tried = search(
                b,
                start_rate,
                warm=size["scale_warm"],
                seconds=size["scale_window"],
                probes=probes,
                offset=5_000_000 + n * 1_000_000 + (0 if label == str(n) else 500_000),
                tag=f"N={label}",
                down=down,
                groups=groups,
                bootstrap=cluster.bootstrap_servers,
                cpu=read_cpu,
                fields=scale_order_fields,
            )
        finally:
            locks.halt.set()
            handlers.halt.set()
            locks.join(5)
            handlers.join(5)
            b.stop_py_spy(spy)
        box = outbox_stats(b, since)
        connections.close_all()
    throttled = {copy: quotas.throttled(copy) for copy in copies}
    for name in names:
        b.procs.stop(name)
    _delete_topics(cluster.bootstrap_servers, topics)
    best = max((p for p in tried if p["sustained"]), key=lambda p: p["rate"], default=tried[-1])
    by_process = best["cpu_ms_per_order_by_process"]
    result = {
        "copies": n,
        "capacity_orders_per_s": rnd(capacity, 1),
        "probes": tried,
        "idle": idle,
        "cpu_ms_per_order": best["saga_cpu_ms_per_order"],
        "cpu_ms_per_order_at": best["rate"],
        "copies_cpu_ms_per_order": rnd(sum(v for k, v in by_process.items() if k in names), 2),
        "kafka_cpu_ms_per_order_by_node": {k: v for k, v in by_process.items() if k.startswith("kafka")},
        "postgres_cpu_ms_per_order": by_process.get("postgres"),
        "loadgen_cpu_ms_per_order": best["loadgen_cpu_ms_per_order"],
        "relay_commit_to_ack_ms": dist(box["commit_to_ack_ms"]),
        "postgres_lock_waits": locks.summary(),
        "throttled_share_by_copy": throttled,
        "kafka_request_handlers": handlers.summary(),
        "loadavg": b.loadavg(),
    }
    say(
        f"  N={label}: capacity {capacity:.1f}/s, {result['cpu_ms_per_order']} CPU-ms/order "
        f"({result['copies_cpu_ms_per_order']} in the copies), relay commit→ack p99 "
        f"{result['relay_commit_to_ack_ms']['p99']} ms, PG lock waits in "
        f"{result['postgres_lock_waits']['share_with_lock_wait']:.0%} of samples, throttled "
        f"{max((v or 0) for v in throttled.values()):.0%} of periods at most; busiest Kafka request handler "
        + _handlers_text(result["kafka_request_handlers"])
    )
    return result


def _handlers_text(summary: dict | str) -> str:
    if isinstance(summary, str):
        return summary
    return ", ".join(
        f"{node} {v['busiest_thread_share_mean']} (max {v['busiest_thread_share_max']})" for node, v in summary.items()
    )


def _delete_topics(bootstrap: str, topics: list[str]) -> None:
    """This N's topics go once its copies have stopped: every partition costs the brokers' replica fetchers
    CPU even when idle, so the next N's brokers carry only their own topics."""
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="bench-scale")
    try:
        admin.delete_topics(topics)
    finally:
        admin.close()


def _idle(read_cpu, copies: dict[str, list[str]], seconds: float) -> dict:
    """Each copy's CPU (in cores) with no orders at all, and its share of the quota; the brokers' and
    PostgreSQL's too."""
    cpu0, t0 = read_cpu(), time.monotonic()
    time.sleep(seconds)
    cpu1, took = read_cpu(), time.monotonic() - t0

    def cores(names) -> float:
        return sum(cpu1[k] - cpu0.get(k, 0) for k in names if k in cpu1) / took

    by_copy = {}
    for copy, processes in copies.items():
        used = cores(processes)
        by_copy[copy] = {
            "cores": rnd(used, 3),
            "share_of_quota": rnd(used / QUOTA, 3),
            "by_process": {p: rnd(cores([p]), 3) for p in processes},
        }
    return {
        "seconds": rnd(took, 1),
        "copies": by_copy,
        "kafka_cores": rnd(cores([k for k in cpu1 if k.startswith("kafka")]), 3),
        "postgres_cores": rnd(cores(["postgres"]), 3),
    }
