"""Section 8: scale-out. N = 1, 2 and 4 copies of every consumer (and of the Celery worker) against
PostgreSQL and a three-node Kafka cluster, every copy held to the same CPU quota, the offered rate scaled
with N. `scale_efficiency[N]` = capacity(N) ÷ (N × capacity(1)), each capacity found as in section 3b.

Quotas: systemd-run needs systemd as PID 1, so the bench writes the cgroup filesystem itself: one cgroup
per copy with `cpu.cfs_quota_us` (cgroup v1 `cpu` controller, or `cpu.max` on a cgroup v2 hierarchy). If
neither can be written, the figures are taken without quotas and say so, with the error.

Shared points watched while it runs: each app's relay commit→ack (outbox created_at → sent_at), PostgreSQL
backends waiting on a lock (pg_stat_activity, sampled twice a second), each broker's CPU, and how often
the quota throttled each copy (a copy that is throttled is the bound, not something it shares).
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from pathlib import Path

from bench.common import CELERY_WORKER, PYTHON, cpu_seconds, dist, process_tree, rnd, say
from bench.harness import BIG_STOCK, GROUPS, consumer_processes
from bench.sections.capacity import search

COPIES = (1, 2, 4)
PARTITIONS = 12  # divides evenly among 1, 2 and 4 copies
# Cores per copy. At 0.06 a copy spent most periods throttled even at 3 orders/s and every hop waited for
# its next period; at 0.1, 4 copies of 4 consumers and a worker (20 processes) may use the whole 2 cores,
# so on a 2-core machine N = 4 is bound by the machine as much as by the quotas.
QUOTA = float(os.environ.get("BENCH_SCALE_QUOTA", "0.1"))
CGROUP_V1 = Path("/sys/fs/cgroup/cpu")
CGROUP_V2 = Path("/sys/fs/cgroup/unified")


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
    say(f"8 scale-out: 1, 2, 4 copies of every consumer and worker on PostgreSQL + 3 Kafka nodes, {QUOTA} cores each")
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
    out = {"quota": quotas.label, "partitions": PARTITIONS, "runs": {}}
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
        for n in COPIES:
            start_rate = n * capacity[1] if 1 in capacity and capacity[1] else _first_rate(b)
            run_n = _one(b, n, pg, pg_pid, cluster, quotas, start_rate, size, env_for, django_databases)
            out["runs"][str(n)] = run_n
            capacity[n] = run_n["capacity_orders_per_s"]
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


def _first_rate(b) -> float:
    """Where N = 1 starts: the saga's capacity scaled to the quotas' share of the machine, and by 0.4 more
    for PostgreSQL, three brokers and the time a copy waits for its next period (a first full run started
    at 44.5/s and found 12 s of latency there)."""
    if os.environ.get("BENCH_SCALE_START_RATE"):  # e.g. for `--only scale`, which has no capacity to start from
        return float(os.environ["BENCH_SCALE_START_RATE"])
    base = b.result.get("capacity_orders_per_s") or b.result.get("saga_orders_per_s") or 40.0
    return max(3.0, 0.4 * base * min(1.0, QUOTA * (len(GROUPS) + 1) / (os.cpu_count() or 2)))


def _seed() -> None:
    from demo.catalog import PRODUCTS
    from inventory.models import StockItem
    from shop.models import Product

    Product.objects.using("shop").bulk_create(
        [Product(sku=s, name=n, description=d, price=p, available=BIG_STOCK) for s, n, d, p, _ in PRODUCTS]
    )
    StockItem.objects.using("inventory").bulk_create(
        [StockItem(sku=s, on_hand=BIG_STOCK, reserved=0, received=BIG_STOCK) for s, *_ in PRODUCTS]
    )


def _one(b, n, pg, pg_pid, cluster, quotas, start_rate, size, env_for, django_databases) -> dict:
    from django.db import connections
    from django.utils import timezone
    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic

    from bench.sections.saga import outbox_stats
    from eventbus import schemas

    tag = f"scale{n}-"
    prefix = f"{b.prefix}scale{n}."
    urls = pg.create_databases(f"scale{n}", template="tmpl")
    env = {
        **env_for(urls),
        "KAFKA_BOOTSTRAP_SERVERS": cluster.bootstrap_servers,
        "KAFKA_TOPIC_PREFIX": prefix,
        "KAFKA_TOPIC_PARTITIONS": str(PARTITIONS),
    }
    admin = KafkaAdminClient(bootstrap_servers=cluster.bootstrap_servers, client_id="bench-scale")
    try:
        logical = schemas.all_topics()
        names = [prefix + t for t in logical] + [prefix + t + ".dlt" for t in logical]
        admin.create_topics([NewTopic(t, PARTITIONS, 3) for t in names])
    finally:
        admin.close()
    time.sleep(1)
    names = []
    for k in range(n):
        for process, services in consumer_processes().items():
            names.append(f"{tag}{process}-{k}")
            b.procs.consumer(services[0], names[-1], env, argv=[PYTHON, "manage.py", "run_consumer", *services])
        names.append(f"{tag}celery-{k}")
        b.procs.start(names[-1], [*CELERY_WORKER, "-n", f"scale{n}-{k}@%h"], env)
    groups = [prefix + g for g in GROUPS.values()]
    b.wait_groups(dict.fromkeys(groups, n), timeout=180, watch=names, bootstrap=cluster.bootstrap_servers)
    # The quotas hold from here on: starting Django under 6 % of a core would only make the wait longer.
    for name in names:
        quotas.hold(name, b.procs.running[name].pid)
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

    locks = LockWaits(pg.port)
    with django_databases({a: urls[a] for a in ("shop", "inventory", "shipping")}):
        since = timezone.now()
        locks.start()
        try:
            capacity, probes = search(
                b,
                start_rate,
                warm=size["scale_warm"],
                seconds=size["scale_window"],
                probes=size["scale_probes"],
                offset=5_000_000 + n * 1_000_000,
                tag=f"N={n}",
                groups=groups,
                bootstrap=cluster.bootstrap_servers,
                cpu=read_cpu,
            )
        finally:
            locks.halt.set()
            locks.join(5)
        box = outbox_stats(b, since)
        connections.close_all()
    throttled = {name: quotas.throttled(name) for name in names}
    for name in names:
        b.procs.stop(name)
    best = max((p for p in probes if p["sustained"]), key=lambda p: p["rate"], default=probes[-1])
    by_process = best["cpu_ms_per_order_by_process"]
    result = {
        "copies": n,
        "capacity_orders_per_s": rnd(capacity, 1),
        "probes": probes,
        "cpu_ms_per_order": best["saga_cpu_ms_per_order"],
        "cpu_ms_per_order_at": best["rate"],
        "kafka_cpu_ms_per_order_by_node": {k: v for k, v in by_process.items() if k.startswith("kafka")},
        "postgres_cpu_ms_per_order": by_process.get("postgres"),
        "relay_commit_to_ack_ms": dist(box["commit_to_ack_ms"]),
        "postgres_lock_waits": locks.summary(),
        "throttled_share_by_copy": throttled,
        "kafka_request_handler_idle": "not read: the brokers run without JMX; their CPU per order is above",
        "loadavg": b.loadavg(),
    }
    say(
        f"  N={n}: capacity {capacity:.1f}/s, {result['cpu_ms_per_order']} CPU-ms/order, relay commit→ack p99 "
        f"{result['relay_commit_to_ack_ms']['p99']} ms, PG lock waits in "
        f"{result['postgres_lock_waits']['share_with_lock_wait']:.0%} of samples, throttled "
        f"{max((v or 0) for v in throttled.values()):.0%} of periods at most"
    )
    return result
