"""The outbox relay: sends an app's committed events to Kafka in publish order, then marks them sent.

Runs as a thread inside the app's `run_consumer` process (one thread for every service a process hosts).
Only the holder of the app's lease sends, so two processes never relay side by side; a relay that dies
between send and mark sends again on restart and the consumers' inboxes absorb the duplicate.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from functools import partial

from django.db import DatabaseError, IntegrityError, close_old_connections, transaction
from django.db.models import Q
from django.utils import timezone

from . import kafka_io
from .backoff import next_delay
from .outbox import claim_wakeups, physical_topic, register_waker
from .rows import oldest_unset, set_on_rows
from .service import Service

log = logging.getLogger("eventbus.relay")
LEASE_SECONDS = 10
BATCH = 1000
MARK_LATER_SECONDS = 0.2  # rows a consumer's thread sent are marked by its next batch, or then by the relay


class Relay:
    """The relay of one service, or of every service one process hosts: one producer and one thread drain
    each service's outbox in turn, each under that service's own lease. A commit in this process wakes it
    at once (outbox.wake_relays); another process's commit wakes it through Redis (wakeup.py)."""

    def __init__(self, services: Service | list[Service], poll_seconds: float = 0.05):
        self.services = [services] if isinstance(services, Service) else list(services)
        self.poll_seconds = poll_seconds
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.leases_until: dict[str, object] = {}  # service name -> when this relay's lease on it expires
        self.wake = threading.Event()
        self.stopping = threading.Event()
        self.producer = None
        self._producer_lock = threading.Lock()
        self.locks = {svc.name: threading.Lock() for svc in self.services}  # held while one outbox is sent
        self._unmarked_lock = threading.Lock()  # held only to read or change `unmarked`, never across I/O
        # Per service: rows sent by a consumer's thread and not yet marked: position -> (ack time, monotonic)
        self.unmarked: dict[str, dict] = {svc.name: {} for svc in self.services}
        self.sent_total = 0
        for svc in self.services:
            register_waker(svc.name, self.wake)

    @property
    def service(self) -> Service:
        return self.services[0]

    @property
    def lease_until(self):
        """When the lease of a single-service relay expires (None when it holds none)."""
        return self.leases_until.get(self.service.name)

    @property
    def names(self) -> str:
        return "+".join(svc.name for svc in self.services)

    # -- lease

    def hold_lease(self, svc: Service | None = None) -> bool:
        svc = svc or self.service
        now = timezone.now()
        until = self.leases_until.get(svc.name)
        if until and now < until - timedelta(seconds=LEASE_SECONDS / 2):
            return True
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
                self.leases_until[svc.name] = None
                return False
        self.leases_until[svc.name] = expires
        return True

    def release_lease(self) -> None:
        for svc in self.services:
            try:
                svc.lease.objects.using(svc.database).filter(name="relay", owner=self.owner).delete()
            except DatabaseError:
                pass

    # -- sending

    def relay_once(self, svc: Service | None = None, *, mark_later: bool = False) -> int:
        """Send one service's unsent rows (the first service's when none is named); return how many.

        The relay's thread marks them sent at once. A consumer's thread (`mark_later`, see `sending_after`)
        leaves the marks to its next batch transaction (`mark_sent`), or to the relay's thread once they are
        MARK_LATER_SECONDS old; until then this relay skips them. A crash before the mark sends them again."""
        svc = svc or self.service
        with self.locks[svc.name]:  # the rows of one outbox leave in order, from one thread at a time
            if not self.hold_lease(svc):
                return 0
            if not mark_later:
                self._mark(svc, older_than=MARK_LATER_SECONDS)
            with self._unmarked_lock:
                unmarked = set(self.unmarked[svc.name])
            fields = ("position", "topic", "key", "headers", "value")
            rows = oldest_unset(svc.outbox, fields, unset="sent_at", limit=BATCH + len(unmarked), using=svc.database)
            rows = [row for row in rows if row[0] not in unmarked][:BATCH]
            if not rows:
                return 0
            producer = self._producer()
            futures = [
                (
                    position,
                    producer.send(
                        physical_topic(topic),
                        key=key.encode(),
                        value=bytes(value),
                        headers=[(name, text.encode()) for name, text in headers.items()],
                    ),
                )
                for position, topic, key, headers, value in rows
            ]
            producer.flush(timeout=30)
            acked = []
            for position, future in futures:
                if not future.succeeded():
                    log.warning("%s relay: send failed (%s); will retry", svc.name, future.exception)
                    break
                acked.append(position)
            if os.environ.get("EVENTBUS_CRASH_AT") == "relay-after-send":  # fault-injection tests only
                os.kill(os.getpid(), signal.SIGKILL)
            if acked:
                with self._unmarked_lock:
                    self.unmarked[svc.name].update(dict.fromkeys(acked, (timezone.now(), time.monotonic())))
                if not mark_later:
                    self._mark(svc)
            self.sent_total += len(acked)
            return len(acked)

    def _producer(self):
        with self._producer_lock:
            if self.producer is None:
                self.producer = kafka_io.make_producer(f"{self.names}-relay")
            return self.producer

    def _mark(self, svc: Service, older_than: float = 0.0) -> None:
        """Mark the rows sent but not yet marked (those acked `older_than` seconds ago or more, if any is),
        in a transaction of their own. Under the service's lock."""
        with self._unmarked_lock:
            unmarked = dict(self.unmarked[svc.name])
        if not unmarked or time.monotonic() - min(at for _, at in unmarked.values()) < older_than:
            return
        # In a transaction so that, on SQLite, it queues behind the consumer's batch (runtime/sqlite).
        with transaction.atomic(using=svc.database):
            _set_sent_at(svc, unmarked)
        self._forget(svc.name, unmarked)

    @contextmanager
    def sending_after(self, svc: Service) -> Iterator[None]:
        """Around a consumer's batch: the rows that the batch, and what runs after its commit in this thread,
        write to `svc`'s outbox are sent by this thread when the block ends (no wake-up of the relay's thread,
        no poll), and marked sent by the next batch's transaction (`mark_sent`)."""
        with claim_wakeups(svc.name) as woken:
            yield
        if woken:
            try:
                if self.relay_once(svc, mark_later=True) == BATCH:
                    self.wake.set()  # more are waiting: the relay's thread sends the rest
            except (*kafka_io.BrokerUnavailable, DatabaseError) as exc:
                log.warning("%s relay: could not send after the commit (%s); the relay's thread will", svc.name, exc)
                self.wake.set()

    def mark_sent(self, svc: Service) -> None:
        """Inside a transaction on `svc`'s database (a consumer's batch): mark the rows this process sent but
        has not marked yet; forgotten once that transaction commits, kept for the next try if it rolls back.
        Takes no lock that is held across database work, so it cannot wait for a thread that waits for it."""
        with self._unmarked_lock:
            unmarked = dict(self.unmarked[svc.name])
        if unmarked:
            _set_sent_at(svc, unmarked)
            transaction.on_commit(partial(self._forget, svc.name, unmarked), using=svc.database)

    def _forget(self, name: str, marked: dict) -> None:
        with self._unmarked_lock:
            for position in marked:
                self.unmarked[name].pop(position, None)

    def run(self) -> None:
        delay = self.poll_seconds
        while not self.stopping.is_set():
            sent, failed = 0, False
            for svc in self.services:  # one service's outage holds up no other's events
                try:
                    sent += self.relay_once(svc)
                except kafka_io.BrokerUnavailable as exc:
                    log.warning("%s relay: Kafka unreachable (%s); events stay in the outbox; retrying", svc.name, exc)
                    failed = True
                except DatabaseError as exc:
                    log.warning("%s relay: database unavailable (%s); retrying", svc.name, exc)
                    close_old_connections()
                    failed = True
            delay = next_delay(delay) if failed else self.poll_seconds
            if sent == 0:
                # A relay that holds no lease only checks now and then whether one is free.
                self.wake.wait(delay if any(self.leases_until.values()) else max(delay, 1.0))
                self.wake.clear()
        for svc in self.services:
            try:
                with self.locks[svc.name]:
                    self._mark(svc)
            except DatabaseError as exc:
                log.warning("%s relay: could not mark sent rows (%s); they will be sent again", svc.name, exc)
        self.release_lease()
        if self.producer is not None:
            self.producer.close(timeout=10)

    def start(self) -> threading.Thread:
        from . import wakeup

        wakeup.listen([svc.name for svc in self.services], self.wake, self.stopping)
        thread = threading.Thread(target=self._run_in_thread, name=f"{self.names}-relay", daemon=True)
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


def _set_sent_at(svc: Service, unmarked: dict) -> None:
    """sent_at = when each row's send was acknowledged (one UPDATE per acknowledgement)."""
    by_time: dict = {}
    for position, (sent_at, _) in unmarked.items():
        by_time.setdefault(sent_at, []).append(position)
    for sent_at, positions in by_time.items():
        set_on_rows(svc.outbox, "sent_at", sent_at, positions, using=svc.database)
