"""Fixtures of the fault tests: a throwaway PostgreSQL (fresh databases per test, copied from migrated
templates) and a three-node KRaft cluster with its own stack environment."""

from __future__ import annotations

import itertools

import pytest

from tests.support import Stack, free_port_run

from .postgres import PostgresServer, django_databases, env_for

_pg_counter = itertools.count(1)


@pytest.fixture(scope="session")
def pg_server():
    server = PostgresServer().init().start()
    try:
        urls = server.create_databases("tpl")
        server.migrate(urls)
        yield server
    finally:
        server.destroy()


@pytest.fixture
def pg(pg_server, stack):
    """Fresh PostgreSQL databases (one per app) for this test: the stack's processes and this process's
    Django connections both point at them. Yields {alias: url}."""
    urls = pg_server.create_databases(f"t{next(_pg_counter)}", template="tpl")
    stack.env.update(env_for(urls))
    with django_databases(urls):
        yield urls
    stack.stop_all()  # before the databases go away under them


@pytest.fixture(scope="module")
def kafka_cluster(tmp_path_factory):
    """Three combined broker+controller nodes on loopback: replication 3, min.insync.replicas 2."""
    from broker.launch import Cluster

    root = tmp_path_factory.mktemp("kafka3")
    cluster = Cluster(nodes_count=3, base_port=free_port_run(6), data_dir=root / "data", log_dir=root / "log")
    cluster.start()
    try:
        cluster.wait_ready(timeout=180)
        yield cluster
    finally:
        cluster.stop()


_cluster_counter = itertools.count(1)


@pytest.fixture
def cluster_stack(kafka_cluster, stack_env, run_dir, request, settings):
    """Like `stack`, but every process (and this one) talks to the three-node cluster."""
    from eventbus import kafka_io, readiness
    from eventbus.tests import kafka_helpers

    servers = kafka_cluster.bootstrap_servers
    prefix = f"{stack_env.get('KAFKA_TOPIC_PREFIX', '')}c{next(_cluster_counter)}."
    kafka_helpers.close()
    readiness.close()
    settings.KAFKA = {**settings.KAFKA, "bootstrap_servers": servers}
    settings.KAFKA_TOPIC_PREFIX = prefix
    env = {**stack_env, "KAFKA_BOOTSTRAP_SERVERS": servers, "KAFKA_TOPIC_PREFIX": prefix}
    stack = Stack(env, run_dir / "logs" / f"cluster-{request.node.name[:70]}")
    kafka_io.ensure_topics()
    yield stack
    stack.stop_all()
    kafka_helpers.close()
    readiness.close()
    if getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed:
        for path in sorted(stack.logdir.glob("*.log")):
            print(f"\n===== {path.name} (last 60 lines) =====")
            print("\n".join(path.read_text(errors="replace").splitlines()[-60:]))
        print(kafka_cluster.log_tail(40))
