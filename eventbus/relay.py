"""The outbox relay: sends an app's committed events to Kafka in publish order, then marks them sent.

Runs as a thread inside the app's `run_consumer` process. Only the holder of the app's lease sends, so
two processes never relay side by side; a relay that dies between send and mark sends again on restart
and the consumers' inboxes absorb the duplicate.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import uuid
from datetime import timedelta

from django.db import DatabaseError, IntegrityError, close_old_connections, transaction
from django.db.models import Q
from django.utils import timezone

from . import kafka_io
from .backoff import next_delay
from .outbox import physical_topic, register_waker
from .rows import oldest_unset, set_on_rows
from .service import Service

log = logging.getLogger("eventbus.relay")
LEASE_SECONDS = 10
BATCH = 1000


class Relay:
    def __init__(self, service: Service, poll_seconds: float = 0.05):
        self.service = service
        self.poll_seconds = poll_seconds
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.lease_until = None
        self.wake = threading.Event()
        self.stopping = threading.Event()
        self.producer = None
        self.sent_total = 0
        register_waker(service.name, self.wake)

    # -- lease

    def hold_lease(self) -> bool:
        now = timezone.now()
        if self.lease_until and now < self.lease_until - timedelta(seconds=LEASE_SECONDS / 2):
            return True
        svc = self.service
        expires = now + timedelta(seconds=LEASE_SECONDS)
        leases = svc.lease.objects.using(svc.database)
        # A conditional UPDATE is atomic on SQLite and PostgreSQL alike: of two relays, one wins.
        with transaction.atomic(using=svc.database):
            won = leases.filter(Q(owner=self.owner) | Q(expires_at__lte=now), name="relay").update(
                owner=self.owner, expires_at=expires
            )
        if not won:
            try:
                with transaction.atomic(using=svc.database):
                    leases.create(name="relay", owner=self.owner, expires_at=expires)
            except IntegrityError:
                self.lease_until = None
                return False
        self.lease_until = expires
        return True

    def release_lease(self) -> None:
        svc = self.service
        try:
            svc.lease.objects.using(svc.database).filter(name="relay", owner=self.owner).delete()
        except DatabaseError:
            pass

    # -- sending

    def relay_once(self) -> int:
        if not self.hold_lease():
            return 0
        svc = self.service
        fields = ("position", "topic", "key", "headers", "value")
        rows = oldest_unset(svc.outbox, fields, unset="sent_at", limit=BATCH, using=svc.database)
        if not rows:
            return 0
        if self.producer is None:
            self.producer = kafka_io.make_producer(f"{svc.name}-relay")
        futures = [
            (
                position,
                self.producer.send(
                    physical_topic(topic),
                    key=key.encode(),
                    value=bytes(value),
                    headers=[(name, text.encode()) for name, text in headers.items()],
                ),
            )
            for position, topic, key, headers, value in rows
        ]
        self.producer.flush(timeout=30)
        acked = []
        for position, future in futures:
            if not future.succeeded():
                log.warning("%s relay: send failed (%s); will retry", svc.name, future.exception)
                break
            acked.append(position)
        if os.environ.get("EVENTBUS_CRASH_AT") == "relay-after-send":  # fault-injection tests only
            os.kill(os.getpid(), signal.SIGKILL)
        if acked:
            # In a transaction so that, on SQLite, it queues behind the consumer's batch (config/sqlite).
            with transaction.atomic(using=svc.database):
                set_on_rows(svc.outbox, "sent_at", timezone.now(), acked, using=svc.database)
        self.sent_total += len(acked)
        return len(acked)

    def run(self) -> None:
        delay = self.poll_seconds
        while not self.stopping.is_set():
            try:
                sent = self.relay_once()
                delay = self.poll_seconds
            except kafka_io.BrokerUnavailable as exc:
                log.warning(
                    "%s relay: Kafka unreachable (%s); events stay in the outbox; retrying", self.service.name, exc
                )
                sent, delay = 0, next_delay(delay)
            except DatabaseError as exc:
                log.warning("%s relay: database unavailable (%s); retrying", self.service.name, exc)
                close_old_connections()
                sent, delay = 0, next_delay(delay)
            if sent == 0:
                # A relay that does not hold the lease only checks now and then whether it is free.
                self.wake.wait(delay if self.lease_until else max(delay, 1.0))
                self.wake.clear()
        self.release_lease()
        if self.producer is not None:
            self.producer.close(timeout=10)

    def start(self) -> threading.Thread:
        from . import wakeup

        wakeup.listen(self.service.name, self.wake, self.stopping)
        thread = threading.Thread(target=self._run_in_thread, name=f"{self.service.name}-relay", daemon=True)
        thread.start()
        return thread

    def _run_in_thread(self) -> None:
        try:
            self.run()
        finally:
            from django.db import connections

            connections.close_all()

    def stop(self) -> None:
        self.stopping.set()
        self.wake.set()
