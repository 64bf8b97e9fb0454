"""Cross-process relay wake-ups. A process that commits outbox rows but runs no relay (the web, a Celery
worker, `simulate`) tells the service's relay through Redis pub/sub, so the event leaves at once instead
of at the relay's next poll. Best effort: if Redis is away, the relay's poll still finds the rows."""

from __future__ import annotations

import logging
import threading
import time

import redis
from django.conf import settings

log = logging.getLogger("eventbus.relay")
_client = None
_lock = threading.Lock()


def channel(service_name: str) -> str:
    return f"conveyor:outbox:{settings.KAFKA_TOPIC_PREFIX}{service_name}"


def _redis():
    global _client
    with _lock:
        if _client is None:
            _client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=0.2, socket_connect_timeout=0.2)
        return _client


_quiet_until = 0.0


def notify(service_name: str) -> None:
    global _quiet_until
    if time.monotonic() < _quiet_until:
        return  # Redis failed a moment ago: don't make every commit wait for a connect timeout
    try:
        _redis().publish(channel(service_name), b"1")
    except redis.RedisError:
        _quiet_until = time.monotonic() + 5  # the relay polls anyway


def listen(service_name: str, flag: threading.Event, stopping: threading.Event) -> threading.Thread:
    """Set `flag` whenever another process commits to this service's outbox."""

    def run():
        while not stopping.is_set():
            try:
                client = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=2, socket_timeout=2)
                pubsub = client.pubsub(ignore_subscribe_messages=True)
                pubsub.subscribe(channel(service_name))
                while not stopping.is_set():
                    if pubsub.get_message(timeout=1.0):
                        flag.set()
            except redis.RedisError as exc:
                log.debug("relay wake-ups unavailable (%s); polling only", exc)
                stopping.wait(5)

    thread = threading.Thread(target=run, name=f"{service_name}-wakeups", daemon=True)
    thread.start()
    return thread
