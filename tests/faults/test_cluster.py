"""A three-node KRaft cluster (replication 3, min.insync.replicas 2): the leader of the orders topic is
killed -9 three times under load, and restarted each time; nothing placed is lost."""

from __future__ import annotations

import signal
import threading
import time
from collections import Counter

import pytest
from django.db import connections

from eventbus import kafka_io, schemas
from tests.support import wait_for

from .helpers import buy, dead_letters_in_logs, joined, seed, settled, sweep, wait_terminal

pytestmark = [
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True, databases=["default", "shop", "inventory", "shipping", "dashboard"]),
]

KILLS = 3


def _partitions(topic: str) -> list[dict]:
    admin = kafka_io.make_admin()
    try:
        (described,) = admin.describe_topics([topic])
    finally:
        admin.close()
    return [
        {
            "partition": p.get("partition_index", p.get("partition")),
            "leader": p.get("leader_id", p.get("leader")),
            "replicas": list(p.get("replica_nodes", p.get("replicas")) or []),
            "isr": list(p.get("isr_nodes", p.get("isr")) or []),
        }
        for p in described["partitions"]
    ]


def test_killing_the_orders_leader_three_times_under_load_loses_nothing(kafka_cluster, cluster_stack):
    stack = cluster_stack
    orders_topic = schemas.topic_name("shop.orders")
    described = _partitions(orders_topic)
    assert described and all(len(p["replicas"]) == 3 for p in described), described

    start = seed({"CLUSTER-1": 1_000_000})
    for service in ("shop", "inventory", "shipping"):
        stack.consumer(service)
    stack.celery()
    joined(stack, "shop", "inventory", "shipping", timeout=90)

    placed: list[str] = []
    stop = threading.Event()
    failures: list[BaseException] = []

    def place_steadily():
        try:
            while not stop.is_set():
                placed.append(buy({"CLUSTER-1": 1}))
                stop.wait(0.2)  # ~5 orders a second: steady load, a drain that fits the budget
        except BaseException as exc:
            failures.append(exc)
        finally:
            connections.close_all()

    placer = threading.Thread(target=place_steadily, name="placer")
    placer.start()
    kills = []
    nodes = {node.node_id: node for node in kafka_cluster.nodes}
    try:
        for _ in range(KILLS):
            wait_for(lambda n=len(placed): len(placed) >= n + 25, 60, "more orders under load")
            leaders = Counter(p["leader"] for p in _partitions(orders_topic))
            victim = nodes[leaders.most_common(1)[0][0]]
            kafka_cluster.stop_node(victim, sig=signal.SIGKILL)
            killed_at = len(placed)
            kills.append((victim.node_id, victim.process.returncode, killed_at))
            # the cluster elects new leaders and keeps working on two nodes (min.insync.replicas 2)
            wait_for(
                lambda v=victim.node_id: all(p["leader"] not in (v, -1, None) for p in _partitions(orders_topic)),
                60,
                "new leaders for the orders partitions",
                interval=0.5,
            )
            wait_for(lambda k=killed_at: len(placed) >= k + 25, 60, "orders placed while a node is down")
            kafka_cluster.start_node(victim)
            wait_for(
                lambda: all(len(p["isr"]) == 3 for p in _partitions(orders_topic)),
                120,
                "the restarted node back in sync",
                interval=0.5,
            )
    finally:
        stop.set()
        placer.join(60)
    assert not failures, failures
    assert [rc for _, rc, _ in kills] == [-signal.SIGKILL] * KILLS, kills
    started = time.monotonic()
    wait_terminal(placed, 240, sweep=lambda: sweep(stack))
    result = settled(placed, start)
    print(
        f"\ncluster: {result}; leader kills (node, rc, orders placed by then) {kills}; "
        f"drained in {time.monotonic() - started:.0f}s"
    )
    assert not result.problems, result.problems[:20]
    assert result.by_status == {"delivered": len(placed)}
    assert sum(dead_letters_in_logs(stack).values()) == 0, dead_letters_in_logs(stack)
    assert all(p.poll() is None for p in stack.processes.values()), {n: p.poll() for n, p in stack.processes.items()}
