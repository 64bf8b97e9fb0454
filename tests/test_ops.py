import pytest

pytestmark = pytest.mark.django_db(databases=["default", "shop", "inventory", "shipping", "dashboard"])


def test_healthz(client):
    response = client.get("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


def test_readyz_reports_each_dependency_with_latency(client, kafka_bootstrap, redis_url):
    response = client.get("/readyz")
    body = response.json()
    assert response.status_code == 200, body
    assert {"kafka", "redis", "database:default", "database:shop", "database:inventory"} <= set(body["checks"])
    assert all(check["ok"] and check["latency_ms"] >= 0 for check in body["checks"].values())


def test_readyz_says_503_with_a_reason_when_redis_is_away(client, settings, kafka_bootstrap):
    from tests.support import free_port

    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["redis"]["ok"] is False
    assert response.json()["checks"]["redis"]["error"]


def test_metrics_in_prometheus_text_format(client):
    response = client.get("/metrics")
    assert response.status_code == 200
    text = response.content.decode()
    assert 'conveyor_outbox_pending{app="shop"}' in text
    assert "django_http_requests" in text


def test_celery_speaks_json_only():
    from config.celery import app

    assert app.conf.task_serializer == "json"
    assert list(app.conf.accept_content) == ["json"]
    assert app.conf.broker_url.startswith("redis://")


def test_json_log_lines_carry_the_event_fields():
    import json
    import logging

    from config.logging import JsonFormatter

    record = logging.LogRecord("eventbus", logging.INFO, __file__, 1, "handled %s", ("x.v1",), None)
    record.correlation_id = "order-1"
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "handled x.v1" and line["correlation_id"] == "order-1" and line["level"] == "INFO"


def test_relay_up_follows_the_outbox_lease(client):
    from datetime import timedelta

    from django.utils import timezone

    from eventbus.service import service

    assert 'conveyor_relay_up{app="shop"} 0' in client.get("/metrics").content.decode()
    svc = service("shop")
    svc.lease.objects.using(svc.database).create(name="relay", owner="test", expires_at=timezone.now() + timedelta(30))
    assert 'conveyor_relay_up{app="shop"} 1' in client.get("/metrics").content.decode()
