"""`make bench`: how much an event-driven Django saga costs next to Kafka itself and next to a bare loop.

One run, every ratio taken inside it (ARCHITECTURE 8, issue 6). Starts its own Kafka (KRaft, on free
ports, data under var/bench/run/) and Redis unless KAFKA_BOOTSTRAP_SERVERS / REDIS_URL are set, its own
SQLite databases under var/bench/run/db/, and real processes (`manage.py run_consumer …`, a Celery
worker, daphne). Prints progress and a table; writes var/bench/latest.json.

    .venv/bin/python bench/run.py            # the whole bench (~4 minutes on 2 cores)
    .venv/bin/python bench/run.py --quick    # a ~2-minute smoke run with small counts
    .venv/bin/python bench/run.py --py-spy   # also profile the consumers at the saga's peak and at 10 orders/s

Sections: 1 raw pipe, 2 bare loop, 6 inventory scale / inbox / duplicates, 5 HTTP, 3 saga, 4 websockets,
7 memory (in the order they run; numbered as in the issue).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
import traceback
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    PYTHON,
    ROOT,
    SKUS,
    VAR,
    Procs,
    copy_sqlite,
    cpu_seconds,
    dist,
    free_port,
    machine,
    order_fields,
    order_placed_message,
    port_open,
    rnd,
    say,
    wait_until,
)

ALIASES = ("default", "shop", "inventory", "shipping", "dashboard")
# Consumer groups as named without the topic prefix (the event bus prefixes them like the topics).
GROUPS = {s: f"conveyor.{s}" for s in ("shop", "inventory", "shipping", "dashboard")}
SAGA_PROCESSES = {*GROUPS, "celery", "web", "kafka", "redis", "bench"}  # whose CPU a saga order costs
BIG_STOCK = 1_000_000_000

SIZES = {
    #            raw   bare  inv  http_s  warm  burst  low_s  half_s  ws_orders  idle_s
    "full": dict(raw=30000, hop=12000, http_s=10, warm=30, burst=4000, low_s=20, half_s=30, ws=1500, idle_s=10),
    "quick": dict(raw=5000, hop=800, http_s=4, warm=10, burst=200, low_s=5, half_s=8, ws=120, idle_s=3),
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
            [StockItem(sku=s, on_hand=BIG_STOCK, reserved=0) for s, *_ in PRODUCTS]
        )
        user = get_user_model().objects.create_user("bench", "bench@example.com", uuid.uuid4().hex, is_staff=True)
        session = SessionStore()
        session[SESSION_KEY] = str(user.pk)
        session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
        session[HASH_SESSION_KEY] = user.get_session_auth_hash()
        session.create()
        self.session_key = session.session_key

    # ------------------------------------------------------------------ helpers

    def admin(self):
        from kafka import KafkaAdminClient

        return KafkaAdminClient(bootstrap_servers=os.environ["KAFKA_BOOTSTRAP_SERVERS"], client_id="bench-admin")

    def wait_groups(self, groups: dict[str, int], timeout: float = 90, watch=()) -> None:
        """Until each group is Stable with the given number of members, every member holding partitions, and the
        same members hold the same partitions a second later: a group caught in a rejoin loop passes through
        Stable every second or so (seen once in the two-consumer inventory run, 25 s instead of 3.5)."""
        admin = self.admin()
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

    def produce(self, topic: str, messages) -> float:
        from kafka import KafkaProducer

        producer = KafkaProducer(
            bootstrap_servers=os.environ["KAFKA_BOOTSTRAP_SERVERS"],
            acks="all",
            enable_idempotence=True,
            linger_ms=5,
            batch_size=65536,
        )
        started = time.time()
        for m in messages:
            producer.send(topic, key=m.key, value=m.value, headers=[(k, v.encode()) for k, v in m.headers.items()])
        producer.flush(60)
        producer.close(5)
        return started

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

    # ------------------------------------------------------------------ 1 raw pipe

    def section_raw(self) -> None:
        from bench import raw_pipe

        out = raw_pipe.run(os.environ["KAFKA_BOOTSTRAP_SERVERS"], self.prefix, self.size["raw"])
        self.result["sections"]["raw_pipe"] = out
        self.result["raw_pipe_events_per_s"] = out["kafka_python"]["events_per_s"]
        self.result["produce_ack_p50_ms"] = out["produce_ack_ms"]["p50"]
        self.result["produce_ack_p99_ms"] = out["produce_ack_ms"]["p99"]
        if "confluent_kafka" in out:
            self.result["raw_pipe_confluent_events_per_s"] = out["confluent_kafka"]["events_per_s"]

    def section_viewer(self) -> None:
        from bench import viewer_scan

        count = 20_000 if self.args.quick else 100_000
        out = viewer_scan.run(os.environ["KAFKA_BOOTSTRAP_SERVERS"], self.prefix, count, say)
        self.result["sections"]["viewer_scan"] = out
        self.result["viewer_scan_messages_per_s"] = out["viewer_scan_messages_per_s"]

    # ------------------------------------------------------------------ 2 bare loop

    def section_bare(self) -> None:
        count = self.size["hop"]
        say(f"2 bare loop: consume → one ORM transaction (state, inbox, outbox) → produce; {count} orders + 10% dup")
        copy_sqlite(self.db_dir / "template", self.db_dir / "bare")
        source, target = f"{self.prefix}bare.in", f"{self.prefix}bare.out"
        self.create_topics([source, target])
        messages, _ = self.order_messages(count)
        env = self.env_for("bare")
        self.procs.start(
            "bare-loop",
            [PYTHON, "bench/bare_loop.py", "--in", source, "--out", target, "--events", str(len(messages))],
            env,
        )
        log = self.procs.logdir / "bare-loop.log"
        wait_until(lambda: self.procs.check_alive("bare-loop") or "READY" in log.read_text(), 60, "the bare loop")
        self.produce(source, messages)
        process = self.procs.running["bare-loop"]
        process.wait(300)
        self.procs.stop("bare-loop")
        result = _result_line(log)
        self.result["sections"]["bare_loop"] = result
        self.result["bare_loop_events_per_s"] = result["events_per_s"]
        self.result["bare_loop_cpu_ms_per_event"] = result["cpu_ms_per_event"]
        say(f"  bare loop {result['events_per_s']:.0f} events/s, {result['cpu_ms_per_event']} CPU-ms/event")

    # ------------------------------------------------------------------ 6 inventory: 1 vs 2 consumers, inbox off

    def section_inventory(self) -> None:
        count = self.size["hop"]
        messages, units = self.order_messages(count)
        say(f"6 inventory hop: {count} orders + {len(messages) - count} redeliveries through run_consumer inventory")
        variants = [
            ("inv1", 1, False),
            ("inv2", 2, False),
            ("inbox_off", 1, True),
            ("inv1_debug_on", 1, False),  # the same as inv1 with DJANGO_DEBUG=1: what DEBUG's SQL log costs
        ]
        out = {}
        for name, copies, no_inbox in variants:
            copy_sqlite(self.db_dir / "template", self.db_dir / name)
            db = self.db_dir / name / "inventory.sqlite3"
            with sqlite3.connect(db) as conn:
                now = datetime.now(UTC).isoformat()
                conn.executemany(
                    "INSERT INTO inventory_stockitem (sku, on_hand, reserved, updated_at) VALUES (?, ?, 0, ?)",
                    [(s, BIG_STOCK, now) for s in SKUS],
                )
            prefix = f"{self.prefix}{name}."
            env = self.env_for(name, prefix)
            if name.endswith("debug_on"):
                env.update(DJANGO_DEBUG="1")
            self.ensure_topics(prefix)
            names = []
            for k in range(copies):
                argv = [PYTHON, "bench/inventory_hop.py", "inventory", "--no-inbox"] if no_inbox else None
                self.procs.consumer("inventory", f"{name}-{k}", env, argv)
                names.append(f"{name}-{k}")
            self.wait_groups({prefix + GROUPS["inventory"]: copies}, watch=names)
            spy = (
                self.py_spy({names[0]: self.procs.running[names[0]].pid}) if self.args.py_spy and name == "inv1" else []
            )
            cpu0 = {n: cpu_seconds(self.procs.running[n].pid) for n in names}
            started = self.produce(f"{prefix}shop.orders", messages)

            progress = {"n": -1, "at": time.monotonic()}

            def finished(db=db, progress=progress, name=name):
                with sqlite3.connect(db, timeout=30) as conn:
                    reservations = conn.execute("SELECT count(*) FROM inventory_reservation").fetchone()[0]
                    if reservations != progress["n"]:
                        progress.update(n=reservations, at=time.monotonic())
                    elif time.monotonic() - progress["at"] > 60:
                        raise RuntimeError(f"{name}: no progress for 60 s at {reservations}/{count} orders")
                    pending = conn.execute(
                        "SELECT count(*) FROM inventory_outboxmessage WHERE sent_at IS NULL"
                    ).fetchone()[0]
                    total = conn.execute("SELECT count(*) FROM inventory_outboxmessage").fetchone()[0]
                # one StockReserved per order; StockChanged rows are coalesced per batch, so fewer than one each
                return reservations >= count and pending == 0 and total >= count

            try:
                wait_until(finished, 300, f"{name}: every order reserved and relayed", interval=0.2, raise_errors=True)
            except Exception:
                for n in names:
                    self.procs.stop(n)
                self.stop_py_spy(spy)
                raise
            self.stop_py_spy(spy)
            with sqlite3.connect(db, timeout=30) as conn:
                last_sent = conn.execute("SELECT max(sent_at) FROM inventory_outboxmessage").fetchone()[0]
                reserved_units = conn.execute("SELECT sum(reserved) FROM inventory_stockitem").fetchone()[0]
                reservations = conn.execute("SELECT count(*) FROM inventory_reservation").fetchone()[0]
                lines = conn.execute("SELECT count(*) FROM inventory_reservationline").fetchone()[0]
                inbox = conn.execute("SELECT count(*) FROM inventory_inboxmessage").fetchone()[0]
            seconds = _parse_ts(last_sent) - started
            cpu = sum(cpu_seconds(self.procs.running[n].pid) - cpu0[n] for n in names)
            for n in names:
                self.procs.stop(n)
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
            self.inventory_figures(out)

    def inventory_figures(self, out: dict) -> None:
        self.result["sections"]["inventory"] = out
        one, two, off = out.get("inv1"), out.get("inv2"), out.get("inbox_off")
        if one and two:
            self.result["inventory_1_vs_2_consumers"] = {
                "one_events_per_s": one["events_per_s"],
                "two_events_per_s": two["events_per_s"],
                "ratio": round(two["events_per_s"] / one["events_per_s"], 2),
            }
        if one and off:
            self.result["inbox_on_vs_off"] = {
                "on_events_per_s": one["events_per_s"],
                "off_events_per_s": off["events_per_s"],
                "ratio": round(one["events_per_s"] / off["events_per_s"], 3),
                # CPU per event is far steadier than events/s on a shared machine
                "cpu_ms_per_event_on": one["cpu_ms_per_event"],
                "cpu_ms_per_event_off": off["cpu_ms_per_event"],
                "cpu_ratio": round(off["cpu_ms_per_event"] / one["cpu_ms_per_event"], 3),
            }
        if one:
            self.result["duplicates_double_reservations"] = max(0, one["extra_reservations"]) + max(
                0, one["over_reserved_units"]
            )
        if off:
            self.result["duplicates_double_reservations_inbox_off"] = max(0, off["extra_reservations"]) + max(
                0, off["over_reserved_units"]
            )

    # ------------------------------------------------------------------ 5 HTTP

    def start_web(self) -> None:
        self.web_port = free_port()
        self.procs.start(
            "web",
            [PYTHON, "-m", "config.serve", "-b", "127.0.0.1", "-p", str(self.web_port), "config.asgi:application"],
        )
        wait_until(lambda: self.procs.check_alive("web") or port_open(self.web_port), 60, "daphne")

    def section_http(self) -> None:
        import orjson

        from bench.http_load import load

        seconds = self.size["http_s"]
        say(f"5 HTTP on daphne, concurrency 16, {seconds}s each: GET /healthz, then POST /api/orders ...")
        web = self.procs.running["web"].pid

        def measured(*args, **kwargs) -> dict:
            # The web's own CPU per answered request: steadier than requests/s on a shared machine.
            cpu0 = cpu_seconds(web)
            result = load(*args, **kwargs)
            result["web_cpu_ms_per_request"] = rnd((cpu_seconds(web) - cpu0) * 1000 / max(result["requests"], 1), 2)
            return result

        load(self.web_port, "GET", "/healthz", seconds=1, concurrency=4)  # warm up
        trivial = measured(self.web_port, "GET", "/healthz", seconds=seconds)
        say(
            f"  /healthz {trivial['per_s']:.0f}/s p99 {trivial['latency_ms']['p99']} ms, "
            f"web {trivial['web_cpu_ms_per_request']} CPU-ms per request"
        )

        def order_body(i: int) -> bytes:
            return orjson.dumps(order_fields(i))

        load(self.web_port, "POST", "/api/orders", make_body=order_body, seconds=1, concurrency=4)  # warm up
        spies = self.py_spy({"web-post": self.procs.running["web"].pid}) if self.args.py_spy else []
        orders = measured(self.web_port, "POST", "/api/orders", make_body=order_body, seconds=seconds)
        self.stop_py_spy(spies)
        say(
            f"  POST /api/orders {orders['per_s']:.0f}/s p99 {orders['latency_ms']['p99']} ms {orders['statuses']}, "
            f"web {orders['web_cpu_ms_per_request']} CPU-ms per request"
        )
        # These orders only measure the web path: they do not enter the saga (its sections start empty).
        from django.utils import timezone

        from shop.models import OutboxMessage

        OutboxMessage.objects.using("shop").filter(sent_at__isnull=True).update(sent_at=timezone.now())
        self.result["sections"]["http"] = {"trivial": trivial, "orders": orders}
        self.result["http_orders_per_s"] = orders["per_s"]
        self.result["http_trivial_per_s"] = trivial["per_s"]
        self.result["http_orders_p99_ms"] = orders["latency_ms"]["p99"]
        self.result["http_trivial_p99_ms"] = trivial["latency_ms"]["p99"]

    # ------------------------------------------------------------------ 3 saga

    def start_saga(self) -> None:
        say("3 saga: starting run_consumer shop/inventory/shipping/dashboard and a Celery worker ...")
        self.ensure_topics(self.prefix)
        for svc in GROUPS:
            self.procs.consumer(svc)
        self.procs.start(
            "celery",
            [
                PYTHON,
                "-m",
                "celery",
                "-A",
                "config",
                "worker",
                "-l",
                "warning",
                "-c",
                "2",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                "-P",
                "threads",
            ],  # the Procfile's worker
        )
        self.wait_groups(dict.fromkeys((self.prefix + g for g in GROUPS.values()), 1), watch=list(GROUPS))

    def place(self, count: int, rate: float | None, offset: int) -> list:
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

    def wait_done(self, ids: list, timeout: float) -> None:
        from shop.models import Order

        def done():
            self.procs.check_alive(*GROUPS, "celery")
            ended = Order.objects.using("shop").filter(id__in=ids, status__in=["delivered", "rejected", "cancelled"])
            return ended.count() >= len(ids)

        wait_until(done, timeout, f"{len(ids)} orders to be delivered", interval=0.1)

    def latencies(self, ids: list) -> tuple[list[float], dict]:
        from shop.models import Order, OrderHistory

        created = dict(Order.objects.using("shop").filter(id__in=ids).values_list("id", "created_at"))
        delivered = dict(
            OrderHistory.objects.using("shop")
            .filter(order_id__in=ids, status="delivered")
            .values_list("order_id", "at")
        )
        statuses = {}
        for status in Order.objects.using("shop").filter(id__in=ids).values_list("status", flat=True):
            statuses[status] = statuses.get(status, 0) + 1
        return [(delivered[i] - created[i]).total_seconds() * 1000 for i in ids if i in delivered], statuses

    def stage_latencies(self, ids: list) -> dict:
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

    def outbox_stats(self, since) -> dict:
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

    def section_saga(self) -> None:
        from django.utils import timezone

        warm = self.place(self.size["warm"], 20, 0)
        self.wait_done(warm, 120)
        idle = self.idle_cpu(self.size["idle_s"])
        say(f"  idle for {self.size['idle_s']}s: {sum(idle.values()):.2f} cores busy {idle}")
        self.result["sections"]["saga_idle_cores"] = idle
        count = self.size["burst"]
        say(f"  warm ({len(warm)} orders delivered); peak: placing {count} orders as fast as possible ...")
        spy = self.py_spy(self.saga_pids()) if self.args.py_spy else []
        since = timezone.now()
        cpu0 = self.procs.cpu()
        t0 = time.monotonic()
        ids = self.place(count, None, 100_000)
        placed_s = time.monotonic() - t0
        say(f"  placed {count} in {placed_s:.1f}s; waiting for delivery ...")
        self.wait_done(ids, 600)
        cpu1 = self.procs.cpu()
        self.stop_py_spy(spy)
        lat, statuses = self.latencies(ids)
        from shop.models import Order, OrderHistory

        first = (
            Order.objects.using("shop")
            .filter(id__in=ids)
            .order_by("created_at")
            .values_list("created_at", flat=True)[0]
        )
        last = (
            OrderHistory.objects.using("shop")
            .filter(order_id__in=ids, status="delivered")
            .order_by("-at")
            .values_list("at", flat=True)[0]
        )
        seconds = (last - first).total_seconds()
        box = self.outbox_stats(since)
        cpu = _saga_cpu(cpu0, cpu1, per=count / 1000, digits=2)
        orders_per_s = count / seconds
        self.result["saga_orders_per_s"] = round(orders_per_s, 1)
        self.result["saga_events_per_s"] = round(box["events"] / seconds, 1)
        self.result["cpu_ms_per_order"] = round(sum(cpu.values()), 1)
        self.result["saga_cpu_ms_per_event"] = round(sum(cpu.values()) * count / max(box["events"], 1), 3)
        self.result["sections"]["saga_peak"] = {
            "orders": count,
            "statuses": statuses,
            "seconds": round(seconds, 2),
            "placing_seconds": round(placed_s, 2),
            "events_published": box["events"],
            "events_per_order": round(box["events"] / count, 2),
            "cpu_ms_per_order_by_process": cpu,
            "placed_to_delivered_ms": dist(lat),
            "stages_ms": self.stage_latencies(ids),
            "relay_commit_to_ack_ms": dist(box["commit_to_ack_ms"]),
        }
        say(
            f"  peak {orders_per_s:.1f} orders/s, {self.result['saga_events_per_s']:.0f} events/s, "
            f"{self.result['cpu_ms_per_order']} CPU-ms/order ({statuses})"
        )
        low = self.latency_run(10.0, self.size["low_s"], 200_000, "low")
        self.result["relay_commit_to_ack_p99_ms"] = low["relay_commit_to_ack_ms"]["p99"]
        self.result["relay_commit_to_ack_p50_ms"] = low["relay_commit_to_ack_ms"]["p50"]
        half = self.latency_run(max(1.0, orders_per_s / 2), self.size["half_s"], 300_000, "half")
        for k, rate in enumerate(self.args.rate):  # extra rates, e.g. an earlier round's half peak
            self.latency_run(rate, self.size["half_s"], 350_000 + k * 20_000, f"at_{rate:g}")
        self.result["latency_ms"] = {
            "placed_to_delivered": {k: half["placed_to_delivered_ms"][k] for k in ("p50", "p95", "p99")}
            | {"rate": half["rate"]},
            "placed_to_delivered_low": {k: low["placed_to_delivered_ms"][k] for k in ("p50", "p95", "p99")}
            | {"rate": low["rate"]},
        }

    def idle_cpu(self, seconds: float) -> dict:
        """Cores each process keeps busy while no order moves: what the stack costs at rest."""
        cpu0 = self.procs.cpu()
        time.sleep(seconds)  # a measurement window, not a wait for a condition
        cpu1 = self.procs.cpu()
        return _saga_cpu(cpu0, cpu1, per=seconds, digits=3)

    def latency_run(self, rate: float, seconds: float, offset: int, name: str) -> dict:
        from django.utils import timezone

        count = max(10, int(rate * seconds))
        say(f"  latency at {rate:.1f} orders/s ({name}): {count} orders ...")
        since = timezone.now()
        spy = []
        if self.args.py_spy and name == "low":  # where a lone event's batch goes (the peak has its own)
            spy = self.py_spy(self.saga_pids(), tag="low-")
        cpu0, t0 = self.procs.cpu(), time.monotonic()
        ids = self.place(count, rate, offset)
        self.wait_done(ids, 300)
        cpu1, elapsed = self.procs.cpu(), time.monotonic() - t0
        self.stop_py_spy(spy)
        lat, statuses = self.latencies(ids)
        box = self.outbox_stats(since)
        cpu = _saga_cpu(cpu0, cpu1, per=count / 1000, digits=2)
        out = {
            "rate": round(rate, 1),
            "orders": count,
            "statuses": statuses,
            "cpu_ms_per_order": round(sum(cpu.values()), 1),
            "cpu_ms_per_order_by_process": cpu,
            # the share of the machine's cores the saga kept busy while it ran
            "cores_busy": round(sum(cpu.values()) * count / 1000 / elapsed, 2),
            "placed_to_delivered_ms": dist(lat),
            "stages_ms": self.stage_latencies(ids),
            "relay_commit_to_ack_ms": dist(box["commit_to_ack_ms"]),
        }
        self.result["sections"][f"saga_latency_{name}"] = out
        d = out["placed_to_delivered_ms"]
        c2a = out["relay_commit_to_ack_ms"]["p99"]
        say(f"    placed→delivered p50 {d['p50']} p95 {d['p95']} p99 {d['p99']} ms; relay commit→ack p99 {c2a} ms")
        say(f"    {out['cpu_ms_per_order']} CPU-ms/order, {out['cores_busy']} cores busy")
        say("    per hop p50/p99 ms: " + ", ".join(f"{k} {v['p50']}/{v['p99']}" for k, v in out["stages_ms"].items()))
        return out

    # ------------------------------------------------------------------ 4 websockets

    def section_ws(self) -> None:
        from bench.fanout import group_send_bench

        frames = 2000 if not self.args.quick else 500
        say(f"4 websockets: raw channel-layer group_send of {frames} frames to 20 receivers ...")
        raw = group_send_bench(20, frames)
        self.result["sections"]["group_send"] = raw
        self.result["group_send_frames_per_s"] = raw["frames_per_s"]
        self.result["group_send_p99_ms"] = raw["latency_ms"]["p99"]
        say(f"  group_send {raw['frames_per_s']:.0f} frames/s, p99 {raw['latency_ms']['p99']} ms, lost {raw['lost']}")
        runs = {}
        for clients in (20, 100):
            runs[clients] = self.ws_run(clients, self.size["ws"], 400_000 + clients * 10_000)
        self.result["sections"]["websockets"] = {str(k): v for k, v in runs.items()}
        self.result["ws_clients"] = runs[100]["held"]
        self.result["ws_clients_held_of_20"] = runs[20]["held"]
        self.result["ws_frames_per_s"] = runs[20]["batch_frames_per_s"]
        self.result["ws_all_frames_per_s"] = runs[20]["frames_per_s"]
        self.result["ws_events_per_s"] = runs[20]["events_per_s"]
        self.result["ws_frames_lost"] = runs[20]["frames_lost"] + runs[100]["frames_lost"]
        self.result["ws_commit_to_frame_p99_ms"] = runs[20]["commit_to_frame_p99_ms"]
        self.result["ws_100"] = {
            k: runs[100][k] for k in ("held", "frames_per_s", "events_per_s", "frames_lost", "commit_to_frame_p99_ms")
        }

    def ws_run(self, clients: int, orders: int, offset: int) -> dict:
        from django.db.models import Max

        from dashboard.models import EventLog

        final = self.run_dir / f"ws-{clients}.final"
        name = f"ws-{clients}"
        self.procs.start(
            name,
            [
                PYTHON,
                "bench/ws_clients.py",
                "--port",
                str(self.web_port),
                "--cookie",
                self.session_key,
                "--clients",
                str(clients),
                "--final-seq-file",
                str(final),
            ],
        )
        log = self.procs.logdir / f"{name}.log"
        wait_until(
            lambda: self.procs.check_alive(name) or "READY" in log.read_text(), 90, f"{clients} websocket clients"
        )
        say(f"  {clients} staff clients on /ws/dashboard/; placing {orders} orders at peak ...")
        ids = self.place(orders, None, offset)
        self.wait_done(ids, 300)

        def settled():
            top = EventLog.objects.using("dashboard").aggregate(m=Max("seq"))["m"] or 0
            time.sleep(1.0)
            return top == (EventLog.objects.using("dashboard").aggregate(m=Max("seq"))["m"] or 0) and top

        top = wait_until(settled, 120, "the dashboard to settle")
        final.write_text(str(top))
        try:
            self.procs.running[name].wait(90)
        except subprocess.TimeoutExpired:
            pass
        self.procs.stop(name)
        result = _result_line(log)
        say(
            f"  {clients} clients: held {result['held']}, {result['frames_per_s']:.0f} frames/s "
            f"({result['events_per_s']:.0f} events/s), lost {result['frames_lost']}, "
            f"commit→frame p99 {result['commit_to_frame_p99_ms']} ms"
        )
        return result

    # ------------------------------------------------------------------ py-spy (opt-in)

    def saga_pids(self) -> dict[str, int]:
        """The consumers' and the Celery worker's pids: the processes worth profiling in the saga."""
        return {s: self.procs.running[s].pid for s in (*GROUPS, "celery")}

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

    # ------------------------------------------------------------------ 7 memory and the verdict

    def section_memory(self) -> None:
        self.procs.remember_peaks()
        peaks = {k: v for k, v in self.procs.peaks.items() if not k.startswith(("py-spy", "ws-"))}
        self.result["rss_mb"] = peaks
        say("7 peak RSS (MB): " + ", ".join(f"{k} {v}" for k, v in sorted(peaks.items())))

    def goals(self) -> dict:
        r = self.result
        # The issue bounds commit→ack by 2 × produce→ack p99 + one poll interval. The relay wakes on commit
        # and polls only to catch a missed wake-up (every 0.5 s since change 28), so the bound keeps the
        # 50 ms interval the relay polled at when the goal was set.
        poll_ms = min(float(os.environ.get("OUTBOX_POLL_SECONDS", "0.5")), 0.05) * 1000
        consumers = [v for k, v in r.get("rss_mb", {}).items() if k in GROUPS]
        rows = []

        def goal(name, measured, target, ok, unit=""):
            rows.append(
                {
                    "goal": name,
                    "measured": measured,
                    "target": target,
                    "unit": unit,
                    "pass": bool(ok) if ok is not None else None,
                }
            )

        def ratio(a, b):
            return round(a / b, 3) if a is not None and b else None

        g = ratio(r.get("saga_events_per_s"), r.get("raw_pipe_events_per_s"))
        goal("saga events/s ÷ raw pipe events/s", g, "≥ 0.30", g is not None and g >= 0.30)
        g = ratio(r.get("saga_events_per_s"), r.get("bare_loop_events_per_s"))
        goal("saga events/s ÷ bare-loop events/s", g, "≥ 0.70", g is not None and g >= 0.70)
        # The same yardstick for one hop doing the bare loop's work (not a goal of its own: what the framework
        # itself costs, where the line above also prices nine events, four apps and Celery per order).
        hop = (r.get("sections", {}).get("inventory") or {}).get("inv1", {}).get("events_per_s")
        g = ratio(hop, r.get("bare_loop_events_per_s"))
        goal("  per hop: inventory hop ÷ bare loop (information)", g, "(0.70)", None)
        p99 = (r.get("latency_ms") or {}).get("placed_to_delivered", {}).get("p99")
        goal("placed→delivered p99 at half max", p99, "≤ 100", p99 is not None and p99 <= 100, "ms")
        limit = 2 * (r.get("produce_ack_p99_ms") or 0) + poll_ms
        c2a = r.get("relay_commit_to_ack_p99_ms")
        goal("relay commit→ack p99", c2a, f"≤ {limit:.1f}", c2a is not None and c2a <= limit, "ms")
        g = (r.get("inbox_on_vs_off") or {}).get("ratio")
        goal("inbox on ÷ off throughput", g, "≥ 0.90", g is not None and g >= 0.90)
        d = r.get("duplicates_double_reservations")
        goal("10% redeliveries → double reservations", d, "= 0", d == 0)
        g = ratio(r.get("ws_events_per_s"), r.get("group_send_frames_per_s"))
        goal("dashboard events/s ÷ raw group_send frames/s (20 clients)", g, "≥ 0.50", g is not None and g >= 0.5)
        lost = r.get("ws_frames_lost")
        goal("dashboard frames lost (20 + 100 clients)", lost, "= 0", lost == 0)
        held = r.get("ws_clients")
        goal("dashboard clients held (of 100)", held, "= 100", held == 100)
        g = ratio(r.get("http_orders_per_s"), r.get("http_trivial_per_s"))
        goal("POST /api/orders ÷ trivial view", g, "≥ 0.70", g is not None and g >= 0.7)
        worst = max(consumers) if consumers else None
        goal("max consumer RSS", worst, "≤ 150", worst is not None and worst <= 150, "MB")
        web = r.get("rss_mb", {}).get("web")
        goal("web RSS", web, "≤ 200", web is not None and web <= 200, "MB")
        return rows

    # ------------------------------------------------------------------ run

    def run(self) -> int:
        started = time.monotonic()
        try:
            self.start_services()
            self.migrate()
            self.setup_django()
            only = set(self.args.only.split(",")) if self.args.only else None
            needs = {"web": {"http", "saga", "ws"}, "saga start": {"saga", "ws"}}
            for name, section in (
                ("raw", self.section_raw),
                ("viewer", self.section_viewer),
                ("bare", self.section_bare),
                ("inventory", self.section_inventory),
                ("web", self.start_web),
                ("http", self.section_http),
                ("saga start", self.start_saga),
                ("saga", self.section_saga),
                ("ws", self.section_ws),
            ):
                if only is not None and name not in only and not (needs.get(name, set()) & only):
                    continue
                try:
                    section()
                except (KeyboardInterrupt, SystemExit):
                    raise
                except Exception as exc:
                    say(f"!! section {name} failed: {type(exc).__name__}: {exc}")
                    traceback.print_exc()
                    self.result.setdefault("errors", []).append(f"{name}: {type(exc).__name__}: {exc}"[:2000])
                    if name in ("web", "saga start"):
                        break
            self.section_memory()
        finally:
            self.shutdown()
        self.result["seconds"] = round(time.monotonic() - started, 1)
        self.result["goals"] = self.goals()
        self.result["finished_at"] = datetime.now(UTC).isoformat()
        VAR.mkdir(parents=True, exist_ok=True)
        (VAR / "latest.json").write_text(json.dumps(self.result, indent=2, default=str) + "\n")
        print_table(self.result)
        say(f"wrote {VAR / 'latest.json'} in {self.result['seconds']}s")
        return 1 if self.result.get("errors") else 0

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


def _saga_cpu(cpu0: dict, cpu1: dict, *, per: float, digits: int) -> dict[str, float]:
    """CPU seconds each saga process spent between two `Procs.cpu()` readings, divided by `per`."""
    return {k: round((cpu1.get(k, 0) - cpu0.get(k, 0)) / per, digits) for k in cpu1 if k in SAGA_PROCESSES}


def _result_line(log: Path) -> dict:
    for line in reversed(log.read_text(errors="replace").splitlines()):
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    raise RuntimeError(f"no RESULT in {log}:\n" + "\n".join(log.read_text(errors="replace").splitlines()[-20:]))


def _parse_ts(text: str) -> float:
    return datetime.fromisoformat(text.replace(" ", "T")).replace(tzinfo=UTC).timestamp()


def _viewer(r: dict) -> str:
    scan = r.get("sections", {}).get("viewer_scan") or {}
    return f"{scan.get('viewer_scan_messages_per_s')} ({scan.get('viewer_scan_ratio_to_raw')})"


def print_table(r: dict) -> None:
    lat = r.get("latency_ms") or {}
    http = r.get("sections", {}).get("http") or {}
    rows = [
        ("raw pipe (kafka-python) events/s", r.get("raw_pipe_events_per_s")),
        ("raw pipe (confluent-kafka) events/s", r.get("raw_pipe_confluent_events_per_s")),
        ("viewer search msgs/s (ratio to raw consume)", _viewer(r)),
        ("produce→ack p50 / p99 ms", f"{r.get('produce_ack_p50_ms')} / {r.get('produce_ack_p99_ms')}"),
        ("bare loop events/s", r.get("bare_loop_events_per_s")),
        (
            "inventory hop events/s 1 → 2 consumers",
            _pair(r.get("inventory_1_vs_2_consumers"), "one_events_per_s", "two_events_per_s"),
        ),
        (
            "inventory hop events/s inbox on / off",
            _pair(r.get("inbox_on_vs_off"), "on_events_per_s", "off_events_per_s"),
        ),
        ("saga orders/s", r.get("saga_orders_per_s")),
        ("saga events/s", r.get("saga_events_per_s")),
        ("CPU-ms per order (all processes)", r.get("cpu_ms_per_order")),
        (
            "CPU-ms per event: bare loop / inventory hop / saga",
            f"{r.get('bare_loop_cpu_ms_per_event')} / "
            f"{(r.get('inbox_on_vs_off') or {}).get('cpu_ms_per_event_on')} / {r.get('saga_cpu_ms_per_event')}",
        ),
        ("placed→delivered p50/p95/p99 ms @low", _lat(lat.get("placed_to_delivered_low"))),
        ("placed→delivered p50/p95/p99 ms @half", _lat(lat.get("placed_to_delivered"))),
        (
            "relay commit→ack p50 / p99 ms @low",
            f"{r.get('relay_commit_to_ack_p50_ms')} / {r.get('relay_commit_to_ack_p99_ms')}",
        ),
        ("group_send frames/s (20 receivers)", r.get("group_send_frames_per_s")),
        ("dashboard frames/s / events/s (20)", f"{r.get('ws_frames_per_s')} / {r.get('ws_events_per_s')}"),
        ("dashboard frames lost / clients held", f"{r.get('ws_frames_lost')} / {r.get('ws_clients')}"),
        ("HTTP POST /api/orders/s vs /healthz/s", f"{r.get('http_orders_per_s')} vs {r.get('http_trivial_per_s')}"),
        ("HTTP p99 ms orders vs healthz", f"{r.get('http_orders_p99_ms')} vs {r.get('http_trivial_p99_ms')}"),
        (
            "HTTP web CPU-ms per request orders vs healthz",
            f"{http.get('orders', {}).get('web_cpu_ms_per_request')} vs "
            f"{http.get('trivial', {}).get('web_cpu_ms_per_request')}",
        ),
    ]
    width = max(len(k) for k, _ in rows)
    print()
    print(
        f"Conveyor bench — {r['machine']['cores']} cores, {r['machine']['memory_mb']} MB"
        + (" (quick)" if r.get("quick") else "")
    )
    print("-" * (width + 30))
    for key, value in rows:
        print(f"{key:<{width}}  {value}")
    if r.get("rss_mb"):
        print(f"{'peak RSS MB':<{width}}  " + ", ".join(f"{k} {v}" for k, v in sorted(r["rss_mb"].items())))
    print()
    gw = max(len(g["goal"]) for g in r["goals"])
    print(f"{'goal':<{gw}}  {'measured':>10}  {'target':>12}  result")
    print("-" * (gw + 36))
    for g in r["goals"]:
        verdict = "" if g["pass"] is None else "PASS" if g["pass"] else "FAIL"
        measured = "—" if g["measured"] is None else g["measured"]
        target = g["target"] + (" " + g["unit"] if g["unit"] else "")
        print(f"{g['goal']:<{gw}}  {measured!s:>10}  {target:>12}  {verdict}")
    for error in r.get("errors", []):
        print(f"error: {error.splitlines()[0]}")
    print()


def _pair(d, a, b):
    return f"{d.get(a)} → {d.get(b)}" if d else None


def _lat(d):
    return f"{d.get('p50')} / {d.get('p95')} / {d.get('p99')} (rate {d.get('rate')}/s)" if d else None


def ensure_extras() -> None:
    """bench/requirements.txt (confluent-kafka for the raw pipe's second peer), installed once, best effort."""
    try:
        import confluent_kafka  # noqa: F401

        if (Path(PYTHON).parent / "py-spy").exists():
            return
    except ImportError:
        pass
    say("installing bench/requirements.txt (confluent-kafka, py-spy) ...")
    done = subprocess.run(
        [PYTHON, "-m", "pip", "install", "-q", "-r", str(ROOT / "bench" / "requirements.txt")],
        capture_output=True,
        text=True,
    )
    if done.returncode:
        say("  could not install it; the confluent-kafka peer (and --py-spy) may be unavailable")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Conveyor's benchmark (issue 6, ARCHITECTURE 8)")
    parser.add_argument("--quick", action="store_true", help="a ~2-minute smoke run with small counts")
    parser.add_argument("--py-spy", action="store_true", help="record py-spy profiles of the saga's processes")
    parser.add_argument(
        "--rate", type=float, action="append", default=[], help="also measure placed→delivered at this orders/s"
    )
    parser.add_argument("--only", default="", help="comma-separated sections: raw,viewer,bare,inventory,http,saga,ws")
    args = parser.parse_args(argv)
    os.chdir(ROOT)
    import logging

    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("kafka").setLevel(logging.ERROR)  # "not leader yet" on fresh topics is expected
    ensure_extras()

    def _term(signum, _frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _term)
    bench = Bench(args)
    try:
        return bench.run()
    except KeyboardInterrupt:
        say("interrupted; everything the bench started is stopped")
        return 130


if __name__ == "__main__":
    sys.exit(main())
