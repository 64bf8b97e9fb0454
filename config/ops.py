"""/healthz, /readyz and /metrics. Thin: each check is a few lines and reports its own latency."""

from __future__ import annotations

import os
import socket
import time
from urllib.parse import urlparse

from django.conf import settings
from django.db import connections
from django.http import HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache

from eventbus import readiness


@never_cache
def healthz(request):
    return JsonResponse({"status": "ok"})


def _timed(check) -> dict:
    started = time.perf_counter()
    try:
        check()
        result = {"ok": True}
    except Exception as exc:
        result = {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:300]}
    result["latency_ms"] = round((time.perf_counter() - started) * 1000, 1)
    return result


def _database(alias: str):
    def check():
        with connections[alias].cursor() as cursor:
            cursor.execute("SELECT 1")

    return check


def _redis():
    url = urlparse(settings.REDIS_URL)
    with socket.create_connection((url.hostname or "127.0.0.1", url.port or 6379), timeout=1) as sock:
        sock.settimeout(1)
        sock.sendall(b"PING\r\n")
        if not sock.recv(64).startswith((b"+PONG", b"-NOAUTH")):
            raise ConnectionError("no PONG")


@never_cache
def readyz(request):
    checks = {"kafka": _timed(readiness.kafka_reachable), "redis": _timed(_redis)}
    for alias in settings.DATABASES:
        checks[f"database:{alias}"] = _timed(_database(alias))
    ready = all(c["ok"] for c in checks.values())
    return JsonResponse({"status": "ready" if ready else "unavailable", "checks": checks}, status=200 if ready else 503)


@never_cache
def metrics(request):
    from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

    from eventbus import metrics as bus_metrics

    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        from prometheus_client import REGISTRY as registry
    body = generate_latest(registry) + bus_metrics.outbox_and_lag_text()
    return HttpResponse(body, content_type=CONTENT_TYPE_LATEST)
