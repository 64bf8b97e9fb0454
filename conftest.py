"""Session services for the whole suite: a real Redis and a real Kafka broker, started here unless
REDIS_URL / KAFKA_BOOTSTRAP_SERVERS point at running ones. If they cannot start, the tests that need
them fail loudly (they are never skipped)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from tests.support import ROOT, RedisServer, Stack, free_port_pair

_EXTERNAL_REDIS = os.environ.get("REDIS_URL")
_EXTERNAL_KAFKA = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")


@pytest.fixture(scope="session")
def run_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("run")


@pytest.fixture(scope="session")
def redis_url(run_dir):
    """A real Redis for the channel layer and Celery."""
    from channels.layers import channel_layers
    from django.conf import settings

    server = None
    url = _EXTERNAL_REDIS
    if not url:
        server = RedisServer(run_dir / "redis")
        server.start()
        url = server.url
    os.environ["REDIS_URL"] = url
    settings.REDIS_URL = url
    settings.CHANNEL_LAYERS["default"]["CONFIG"]["hosts"] = [{"address": url, "socket_timeout": 15}]
    settings.CELERY_BROKER_URL = url
    channel_layers.backends.clear()
    yield url
    if server:
        server.stop()


@pytest.fixture(scope="session")
def kafka_bootstrap(run_dir):
    """A real Apache Kafka broker (KRaft, from the project's launcher) for the session."""
    from django.conf import settings

    sys.path.insert(0, str(ROOT))
    from broker.launch import Cluster

    cluster = None
    servers = _EXTERNAL_KAFKA
    if not servers:
        cluster = Cluster(
            nodes_count=1, base_port=free_port_pair(), data_dir=run_dir / "kafka", log_dir=run_dir / "kafka-log"
        )
        cluster.start()
        cluster.wait_ready(timeout=120)
        servers = cluster.bootstrap_servers
    os.environ["KAFKA_BOOTSTRAP_SERVERS"] = servers
    settings.KAFKA["bootstrap_servers"] = servers
    from eventbus import kafka_io

    kafka_io.ensure_topics()
    yield servers
    from eventbus import readiness
    from eventbus.tests import kafka_helpers

    kafka_helpers.close()
    readiness.close()
    if cluster:
        cluster.stop()


def database_url(alias: str) -> str:
    """The URL a subprocess needs to open the same test database as this process."""
    from django.db import connections

    conf = connections[alias].settings_dict
    if connections[alias].vendor == "sqlite":
        return f"sqlite:///{conf['NAME']}"
    host, port = conf["HOST"] or "127.0.0.1", conf["PORT"] or 5432
    return f"postgres://{conf['USER']}:{conf['PASSWORD']}@{host}:{port}/{conf['NAME']}"


@pytest.fixture(scope="session")
def stack_env(django_db_setup, django_db_blocker, kafka_bootstrap, redis_url, run_dir) -> dict[str, str]:
    """The environment for real subprocesses: same broker, Redis, topic prefix and test databases."""
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        DJANGO_DEBUG="1",
        KAFKA_BOOTSTRAP_SERVERS=kafka_bootstrap,
        REDIS_URL=redis_url,
        SHIPPING_STEP_SECONDS=os.environ.get("SHIPPING_STEP_SECONDS", "0"),
        LOG_LEVEL="INFO",
        PYTHONUNBUFFERED="1",
    )
    env.pop("CONVEYOR_TEST_DB_DIR", None)
    with django_db_blocker.unblock():
        env["DATABASE_URL"] = database_url("default")
        for alias in ("shop", "inventory", "shipping", "dashboard"):
            env[f"{alias.upper()}_DATABASE_URL"] = database_url(alias)
    return env


_counter = iter(range(1, 1_000_000))


@pytest.fixture
def stack(stack_env, run_dir, request, settings):
    """Start real processes for one test, on topics of its own; stopped (logs printed on failure) after."""
    prefix = f"{stack_env.get('KAFKA_TOPIC_PREFIX', '')}{next(_counter)}."
    settings.KAFKA_TOPIC_PREFIX = prefix
    stack = Stack({**stack_env, "KAFKA_TOPIC_PREFIX": prefix}, run_dir / "logs" / request.node.name[:80])
    from eventbus import kafka_io

    kafka_io.ensure_topics()
    yield stack
    stack.stop_all()
    if getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed:
        for path in sorted(stack.logdir.glob("*.log")):
            print(f"\n===== {path.name} (last 60 lines) =====")
            print("\n".join(path.read_text(errors="replace").splitlines()[-60:]))


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


@pytest.fixture
def courier(monkeypatch):
    """Shipping's courier steps kept for the test to take (tests/courier.py) instead of going to Celery."""
    from shipping import tasks
    from tests.courier import Courier

    fake = Courier()
    monkeypatch.setattr(tasks, "schedule_steps", fake.schedule_steps)
    return fake
