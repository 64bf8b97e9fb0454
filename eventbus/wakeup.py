"""Cross-process relay wake-ups. A process that commits outbox rows but runs no relay (the web, a Celery
worker, `simulate`) tells the service's relay through Redis pub/sub, so the event leaves at once instead
of at the relay's next poll. Best effort: if Redis is away, the relay's poll still finds the rows."""

from __future__ import annotations

import logging
import os
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


def _publish(service_name: str) -> None:
    global _quiet_until
    if time.monotonic() < _quiet_until:
        return  # Redis failed a moment ago: don't make every wake-up wait for a connect timeout
    try:
        _redis().publish(channel(service_name), b"1")
    except redis.RedisError:
        _quiet_until = time.monotonic() + 5  # the relay polls anyway


class _Notifier:
    """Publishes wake-ups from a thread of its own. A commit only marks its service as due, so it never
    waits for a Redis round trip (a tenth of a web request's CPU under `POST /api/orders`), and the commits
    that land while one publish is on its way share the next one."""

    def __init__(self) -> None:
        self.due: set[str] = set()
        self.changed = threading.Condition()
        self.thread: threading.Thread | None = None

    def mark(self, service_name: str) -> None:
        with self.changed:
            self.due.add(service_name)
            if self.thread is None or not self.thread.is_alive():  # first use, or its thread died
                self.thread = threading.Thread(target=self.run, name="relay-wakeups-out", daemon=True)
                self.thread.start()
            self.changed.notify()

    def run(self) -> None:
        while True:
            with self.changed:
                while not self.due:
                    self.changed.wait()
                due, self.due = self.due, set()
            for service_name in sorted(due):
                _publish(service_name)


_notifier = _Notifier()


def _after_fork_in_child() -> None:
    global _notifier, _client
    _notifier, _client = _Notifier(), None  # neither the thread nor the socket crossed the fork


os.register_at_fork(after_in_child=_after_fork_in_child)


def notify(service_name: str) -> None:
    _notifier.mark(service_name)


def listen(service_names: str | list[str], flag: threading.Event, stopping: threading.Event) -> threading.Thread:
    """Set `flag` whenever another process commits to the outbox of this service (or of any of these)."""
    names = [service_names] if isinstance(service_names, str) else list(service_names)

    def run():
        while not stopping.is_set():
            try:
                client = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=2, socket_timeout=2)
                pubsub = client.pubsub(ignore_subscribe_messages=True)
                pubsub.subscribe(*(channel(name) for name in names))
                while not stopping.is_set():
                    if pubsub.get_message(timeout=1.0):
                        flag.set()
            except redis.RedisError as exc:
                log.debug("relay wake-ups unavailable (%s); polling only", exc)
                stopping.wait(5)

    thread = threading.Thread(target=run, name=f"{'+'.join(names)}-wakeups", daemon=True)
    thread.start()
    return thread
