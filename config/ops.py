"""/healthz, /readyz and /metrics. Thin: each check is a few lines and reports its own latency.

/healthz is public. /readyz tells the public only its status code (200 or 503, with `{"status"}`); its
checks, and /metrics, are for private clients (config/private.py).
"""

from __future__ import annotations

import os
import time
from functools import lru_cache

import redis
from django.conf import settings
from django.db import connections
from django.http import HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from redis.backoff import NoBackoff
from redis.retry import Retry

from eventbus import readiness

from .private import is_private

PRIVATE_ONLY = (
    "/metrics answers only to CONVEYOR_PRIVATE_NETWORKS or to 'Authorization: Bearer <CONVEYOR_METRICS_TOKEN>': "
    "scrape from an allowed network or send the token."
)


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


@lru_cache(maxsize=4)
def _redis_client(url: str) -> redis.Redis:
    # The URL the app uses (rediss:// TLS, password, CA options in its query) through the same client library.
    return redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1, retry=Retry(NoBackoff(), 0))


def _redis():
    if not _redis_client(settings.REDIS_URL).ping():
        raise ConnectionError("Redis did not answer PING")


@never_cache
def readyz(request):
    checks = {"kafka": _timed(readiness.kafka_reachable), "redis": _timed(_redis)}
    for alias in settings.DATABASES:
        checks[f"database:{alias}"] = _timed(_database(alias))
    ready = all(c["ok"] for c in checks.values())
    body = {"status": "ready" if ready else "unavailable"}
    if is_private(request):
        body["checks"] = checks
    return JsonResponse(body, status=200 if ready else 503)


@never_cache
def metrics(request):
    from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

    from eventbus import metrics as bus_metrics

    if not is_private(request):
        return JsonResponse({"detail": PRIVATE_ONLY}, status=403)
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        from prometheus_client import REGISTRY as registry
    from eventbus.lag_scrape import SCRAPER

    body = generate_latest(registry) + bus_metrics.outbox_and_lag_text() + SCRAPER.text()
    return HttpResponse(body, content_type=CONTENT_TYPE_LATEST)
