"""The benchmark's shared infrastructure: Kafka, Redis, template databases, the processes it owns and the
helpers every section uses. `bench/run.py` builds one `Bench` and hands it to the sections in
`bench/sections/`."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    PYTHON,
    ROOT,
    VAR,
    Procs,
    copy_sqlite,
    cpu_seconds,
    machine,
    order_fields,
    order_placed_message,
    say,
    wait_until,
)

ALIASES = ("default", "shop", "inventory", "shipping", "dashboard")
# Consumer groups as named without the topic prefix (the event bus prefixes them like the topics).
GROUPS = {s: f"conveyor.{s}" for s in ("shop", "inventory", "shipping", "dashboard")}
# How the saga's consumers run, BENCH_CONSUMERS: "per-service" (the default: one `run_consumer <service>`
# process each), "combined" (one `run_consumer shop inventory shipping dashboard` process), or processes
# separated by commas and their services by "+", e.g. "shop+inventory,shipping+dashboard". Each service
# keeps its own consumer group in every layout.
LAYOUT = os.environ.get("BENCH_CONSUMERS", "per-service")


def consumer_processes() -> dict[str, list[str]]:
    """The saga's consumer processes: name → the services it runs."""
    if LAYOUT == "per-service":
        return {s: [s] for s in GROUPS}
    if LAYOUT == "combined":
        return {"consumers": list(GROUPS)}
    processes = {name: name.split("+") for name in LAYOUT.split(",")}
    hosted = sorted(s for services in processes.values() for s in services)
    if hosted != sorted(GROUPS):
        raise SystemExit(
            f"BENCH_CONSUMERS={LAYOUT!r} must name each of {', '.join(GROUPS)} once, e.g. "
            "'shop+inventory,shipping+dashboard' (or 'per-service', 'combined')"
        )
    return processes


def consumer_process_of(service: str) -> str:
    return next(name for name, services in consumer_processes().items() if service in services)


# whose CPU a saga order costs (the load generator, "bench", is reported apart)
SAGA_PROCESSES = {*consumer_processes(), "celery", "web", "kafka", "redis", "bench"}


BIG_STOCK = 1_000_000_000

SIZES = {
    #            raw   bare  inv  http_s  warm  burst  low_s  half_s  ws_orders  idle_s
    "full": dict(raw=30000, hop=12000, http_s=10, warm=30, burst=4000, low_s=20, half_s=30, ws=1500, idle_s=10)
    # paced bare loop; open-loop capacity probes (warm-up, window, probes); latency runs; scale-out probes
    | dict(bare_rate=1500, bare_paced_s=20, cap_warm=10, cap_window=60, cap_probes=5, lat_s=30, lat_runs=3)
    | dict(scale_warm=5, scale_window=30, scale_probes=3, ws_s=30),
    "quick": dict(raw=5000, hop=800, http_s=4, warm=10, burst=200, low_s=5, half_s=8, ws=120, idle_s=3)
    | dict(bare_rate=600, bare_paced_s=5, cap_warm=3, cap_window=12, cap_probes=3, lat_s=6, lat_runs=3)
    | dict(scale_warm=3, scale_window=9, scale_probes=2, ws_s=8),
}


class Bench:
    def __init__(self, args):
        self.args = args
        self.size = SIZES["quick" if args.quick else "full"]
        self.run_dir = VAR / "run"
        self.db_dir = self.run_dir / "db"
        self.prefix = os.environ.get("KAFKA_TOPIC_PREFIX") or f"bench{int(time.time())}."
        self.cluster = None
        self.redis = None
        self.procs: Procs | None = None
        self.result: dict = {"quick": bool(args.quick), "machine": machine(), "sections": {}}
        self.web_port = None

    # ------------------------------------------------------------------ setup

    def env_for(self, db: str, prefix: str | None = None) -> dict[str, str]:
        env = {
            "DATABASE_URL": f"sqlite:///{self.db_dir / db / 'default.sqlite3'}",
            "KAFKA_TOPIC_PREFIX": prefix or self.prefix,
        }
        for alias in ALIASES[1:]:
            env[f"{alias.upper()}_DATABASE_URL"] = f"sqlite:///{self.db_dir / db / f'{alias}.sqlite3'}"
        return env

    def start_services(self) -> None:
        if self.run_dir.exists():
            shutil.rmtree(self.run_dir)
        (self.run_dir / "logs").mkdir(parents=True)
        base = dict(os.environ)
        base.pop("PROMETHEUS_MULTIPROC_DIR", None)
        base.pop("CONVEYOR_TEST_DB_DIR", None)
        for name, value in {
            "DJANGO_SETTINGS_MODULE": "config.settings",
            # Production settings: DEBUG's SQL log costs 3-14 % of every process (one variant below measures it).
            "DJANGO_DEBUG": "0",
            "DJANGO_SECRET_KEY": "bench-" + uuid.uuid4().hex,
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
            "DJANGO_SECURE_SSL_REDIRECT": "0",  # plain HTTP on loopback; TLS would end at a proxy
            "SHIPPING_STEP_SECONDS": "0",
            "ORDER_RATE_LIMIT": "",
            "LOG_LEVEL": os.environ.get("BENCH_LOG_LEVEL", "WARNING"),  # INFO: rebalances in the logs
            "PYTHONUNBUFFERED": "1",
        }.items():
            base.setdefault(name, value)
        base["CONVEYOR_VAR_DIR"] = str(self.run_dir)
        if not base.get("KAFKA_BOOTSTRAP_SERVERS"):
            from broker.launch import Cluster
            from tests.support import free_port_pair

            say("starting Kafka (KRaft) on free ports ...")
            self.cluster = Cluster(
                nodes_count=1,
                base_port=free_port_pair(),
                data_dir=self.run_dir / "kafka",
                log_dir=self.run_dir / "kafka-log",
            )
            self.cluster.start()
            took = self.cluster.wait_ready(timeout=120)
            base["KAFKA_BOOTSTRAP_SERVERS"] = self.cluster.bootstrap_servers
            say(f"Kafka ready on {self.cluster.bootstrap_servers} in {took:.1f}s")
        else:
            say(f"using Kafka at {base['KAFKA_BOOTSTRAP_SERVERS']}")
        if not base.get("REDIS_URL"):
            from tests.support import RedisServer

            self.redis = RedisServer(self.run_dir / "redis")
            self.redis.start()
            base["REDIS_URL"] = self.redis.url
            say(f"Redis ready on {self.redis.url}")
        else:
            say(f"using Redis at {base['REDIS_URL']}")
        base.update(self.env_for("saga"))
        os.environ.clear()
        os.environ.update(base)
        self.procs = Procs(base, self.run_dir / "logs")
        if self.cluster:
            self.procs.extra_pids["kafka"] = self.cluster.nodes[0].process.pid
        if self.redis:
            self.procs.extra_pids["redis"] = self.redis.process.pid

    def migrate(self) -> None:
        say("migrating a template of every database ...")
        env = {**os.environ, **self.env_for("template")}
        (self.db_dir / "template").mkdir(parents=True)

        def one(alias):
            done = subprocess.run(
                [PYTHON, "manage.py", "migrate", "--database", alias, "-v", "0"],
                cwd=ROOT,
                env=env,
                capture_output=True,
                text=True,
            )
            if done.returncode:
                raise RuntimeError(f"migrate --database {alias} failed:\n{done.stdout}{done.stderr}")

        with ThreadPoolExecutor(len(ALIASES)) as pool:
            list(pool.map(one, ALIASES))
        copy_sqlite(self.db_dir / "template", self.db_dir / "saga")

    def setup_django(self) -> None:
        import logging

        import django

        django.setup()
        logging.getLogger("kafka").setLevel(logging.ERROR)  # "not leader yet" on fresh topics is expected
        from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
        from django.contrib.sessions.backends.db import SessionStore

        from demo.catalog import PRODUCTS
        from inventory.models import StockItem
        from shop.models import Product

        Product.objects.using("shop").bulk_create(
            [Product(sku=s, name=n, description=d, price=p, available=BIG_STOCK) for s, n, d, p, _ in PRODUCTS]
        )
        StockItem.objects.using("inventory").bulk_create(
            [StockItem(sku=s, on_hand=BIG_STOCK, reserved=0, received=BIG_STOCK) for s, *_ in PRODUCTS]
        )
        user = get_user_model().objects.create_user("bench", "bench@example.com", uuid.uuid4().hex, is_staff=True)
        session = SessionStore()
        session[SESSION_KEY] = str(user.pk)
        session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
        session[HASH_SESSION_KEY] = user.get_session_auth_hash()
        session.create()
        self.session_key = session.session_key

    # ------------------------------------------------------------------ helpers

    def admin(self, bootstrap: str | None = None):
        from kafka import KafkaAdminClient

        return KafkaAdminClient(
            bootstrap_servers=bootstrap or os.environ["KAFKA_BOOTSTRAP_SERVERS"], client_id="bench-admin"
        )

    def wait_groups(self, groups: dict[str, int], timeout: float = 90, watch=(), bootstrap: str | None = None) -> None:
        """Until each group is Stable with the given number of members, every member holding partitions, and the
        same members hold the same partitions a second later: a group caught in a rejoin loop passes through
        Stable every second or so (seen once in the two-consumer inventory run, 25 s instead of 3.5)."""
        admin = self.admin(bootstrap)
        last = None

        def assignments() -> list | None:
            """Who holds what in every group, or None while a group is not Stable, short of members, or has a
            member without partitions."""
            self.procs.check_alive(*watch)
            found = admin.describe_groups(list(groups))
            held_by = []
            for group, members in groups.items():
                info = found.get(group) or {}
                state = str(info.get("group_state") or info.get("state") or "")
                got = info.get("members") or []
                if state.lower() != "stable" or len(got) != members:
                    return None
                for member in got:
                    held = (member.get("member_assignment") or {}).get("assigned_partitions") or []
                    if not any(t.get("partitions") for t in held):
                        return None
                    held_by.append((group, member.get("member_id"), repr(held)))
            return held_by

        def settled():
            nonlocal last
            now = assignments()
            same, last = now is not None and now == last, now
            return same

        try:
            wait_until(settled, timeout, f"consumer groups {', '.join(groups)} to settle", interval=1.0)
        finally:
            admin.close()

    def order_messages(self, count: int, duplicates: float = 0.1) -> tuple[list, int]:
        """Enveloped OrderPlaced events (the real encoder); every tenth record is a redelivery."""
        messages = []
        for i in range(count):
            messages.append(order_placed_message(i))
            if duplicates and i % int(1 / duplicates) == int(1 / duplicates) - 1:
                messages.append(messages[-5])
        units = sum(line["quantity"] for i in range(count) for line in order_fields(i)["lines"])
        return messages, units

    @staticmethod
    def _producer(linger_ms: int):
        from kafka import KafkaProducer

        return KafkaProducer(
            bootstrap_servers=os.environ["KAFKA_BOOTSTRAP_SERVERS"],
            acks="all",
            enable_idempotence=True,
            linger_ms=linger_ms,
            batch_size=65536,
        )

    def produce(self, topic: str, messages) -> float:
        producer = self._producer(linger_ms=5)
        started = time.time()
        for m in messages:
            producer.send(topic, key=m.key, value=m.value, headers=[(k, v.encode()) for k, v in m.headers.items()])
        producer.flush(60)
        producer.close(5)
        return started

    def feed(self, topic: str, messages, rate: float) -> float:
        """Send `messages` at `rate` per second on a fixed schedule (a late send goes at once, the schedule
        stays); returns the seconds it took."""
        producer = self._producer(linger_ms=2)
        started = time.monotonic()
        for i, m in enumerate(messages):
            delay = started + i / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            producer.send(topic, key=m.key, value=m.value, headers=[(k, v.encode()) for k, v in m.headers.items()])
        producer.flush(60)
        took = time.monotonic() - started
        producer.close(5)
        return took

    def kafka_pids(self) -> list[int]:
        return [node.process.pid for node in self.cluster.nodes if node.process] if self.cluster else []

    def kafka_cpu(self) -> float:
        """CPU seconds of the broker's JVM(s) so far (0 with an outside broker: its share is then unknown)."""
        return sum(cpu_seconds(pid) for pid in self.kafka_pids())

    @staticmethod
    def loadavg() -> list[float]:
        """The machine's 1, 5 and 15 minute load averages now: the noise every figure is read against."""
        return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]

    def ensure_topics(self, prefix: str) -> None:
        """Every catalogue topic (and .dlt) under `prefix`, created before any consumer starts: a consumer
        that joins before its topic's metadata exists may be assigned nothing until a metadata refresh."""
        from eventbus import kafka_io, schemas

        logical = schemas.all_topics()
        kafka_io.ensure_topics([prefix + t for t in logical] + [prefix + t + ".dlt" for t in logical])
        time.sleep(0.5)

    def create_topics(self, names: list[str]) -> None:
        from bench.raw_pipe import create_topics

        create_topics(os.environ["KAFKA_BOOTSTRAP_SERVERS"], names)

    # ------------------------------------------------------------------ py-spy (opt-in)

    def saga_pids(self) -> dict[str, int]:
        """The consumers' and the Celery worker's pids: the processes worth profiling in the saga."""
        return {s: self.procs.running[s].pid for s in (*consumer_processes(), "celery")}

    def py_spy(self, pids: dict[str, int], tag: str = "") -> list:
        spy = str(Path(PYTHON).parent / "py-spy")
        if not Path(spy).exists():
            say("  py-spy not installed (.venv/bin/pip install py-spy==0.4.3); no profile")
            return []
        started = []
        for svc, pid in pids.items():
            out = self.run_dir / f"profile-{tag}{svc}.txt"
            argv = [spy, "record", "-p", str(pid), "-f", "raw", "-o", str(out), "-r", "200", "-s"]
            started.append(self.procs.start(f"py-spy-{tag}{svc}", argv))
        return started

    def stop_py_spy(self, started: list) -> None:
        if not started:
            return
        for name in [n for n in list(self.procs.running) if n.startswith("py-spy-")]:
            process = self.procs.running[name]
            process.send_signal(signal.SIGINT)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                pass
            self.procs.stop(name)
        from bench.profile_summary import summarise

        text = "".join(summarise(p) for p in sorted(self.run_dir.glob("profile-*.txt")))
        (VAR / "profile-summary.txt").write_text(text)
        say(f"  py-spy profiles summarised in {VAR / 'profile-summary.txt'}")

    def shutdown(self) -> None:
        if self.procs:
            self.procs.remember_peaks()
            self.procs.stop_all()
        try:
            from django.db import connections

            connections.close_all()
        except Exception:
            pass
        if self.cluster:
            self.cluster.stop()
        if self.redis:
            self.redis.stop()


def saga_cpu(cpu0: dict, cpu1: dict, *, per: float, digits: int) -> dict[str, float]:
    """CPU seconds each saga process spent between two `Procs.cpu()` readings, divided by `per`."""
    return {k: round((cpu1.get(k, 0) - cpu0.get(k, 0)) / per, digits) for k in cpu1 if k in SAGA_PROCESSES}


def result_line(log: Path) -> dict:
    for line in reversed(log.read_text(errors="replace").splitlines()):
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    raise RuntimeError(f"no RESULT in {log}:\n" + "\n".join(log.read_text(errors="replace").splitlines()[-20:]))


def parse_ts(text: str) -> float:
    return datetime.fromisoformat(text.replace(" ", "T")).replace(tzinfo=UTC).timestamp()
