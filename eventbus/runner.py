"""The consumer loop of one service: poll a batch, apply it (dispatch.py), dead-letter, commit offsets.

Offsets are committed only after the database transactions they cover (at most once a second), so a
crash redelivers and the inbox skips what was applied. SIGTERM/SIGINT finish the batch in hand, commit
and exit cleanly.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from contextlib import nullcontext
from datetime import UTC, datetime
from functools import partial

from django.conf import settings
from django.db import close_old_connections, connections
from kafka import ConsumerRebalanceListener
from kafka.errors import (
    KafkaError,
    MessageSizeTooLargeError,
    NoOffsetForPartitionError,
    OffsetOutOfRangeError,
    RecordListTooLargeError,
)
from kafka.structs import MemberState, OffsetAndMetadata

from . import chaos, kafka_io, metrics, offset_loss
from .backoff import next_delay
from .dispatch import TRANSIENT_ERRORS, DeadLetter, Dispatcher, Record, is_dead_letter_topic
from .relay import Relay
from .service import Service

log = logging.getLogger("eventbus.consumer")
POLL_MS = 200  # how long one poll waits for records; the loop does its idle chores in between
UNASSIGNED_POLL_MS = 20
POLL_RETRY_SECONDS = 1.0


# A dead letter carries its record's value and headers plus ours; the producer refuses a request over its
# max_request_size (1 MiB), so a record close to that size could never be dead-lettered whole. Its payload
# is cut to fit, and the header dlt_truncated says how long it was.
MAX_DEAD_LETTER_BYTES = 900 * 1024
MIN_DEAD_LETTER_BYTES = 64 * 1024


def fit_for_dead_letter_topic(
    value: bytes | None, headers: list[tuple[str, bytes]], limit: int = MAX_DEAD_LETTER_BYTES
) -> tuple[bytes | None, list[tuple[str, bytes]]]:
    """The value and headers to dead-letter: as they are when they fit in `limit` bytes, else the value cut."""
    size = len(value or b"") + sum(len(k) + len(v) for k, v in headers)
    if value is None or size <= limit:
        return value, headers
    if any(k == "dlt_truncated" for k, _ in headers):
        original = next(v for k, v in headers if k == "dlt_truncated")
        headers = [(k, v) for k, v in headers if k != "dlt_truncated"]
    else:
        original = str(len(value)).encode()
    room = max(0, limit - (size - len(value)) - 64)
    return value[:room], [*headers, ("dlt_truncated", original)]


class _Rebalance(ConsumerRebalanceListener):
    # Offsets are committed at most every COMMIT_SECONDS and on a clean stop. A revoked partition's
    # uncommitted offset is dropped, never committed late over its next owner's progress: the next owner
    # starts at the last commit and its inbox skips what this member had already applied. (kafka-python
    # calls this listener inside its event loop, where a blocking commit cannot run.)
    def __init__(self, name: str, consumer=None, replay: bool = False, before_revoke=lambda revoked: None):
        self.name = name
        self.consumer = consumer
        self.replay = replay
        self.before_revoke = before_revoke
        self.assigned: set = set()

    def on_partitions_revoked(self, revoked):
        self.before_revoke(revoked)
        self.assigned -= set(revoked)
        if revoked:
            log.info("%s: partitions revoked: %s", self.name, _fmt(revoked))

    def on_partitions_assigned(self, assigned):
        self.assigned |= set(assigned)
        log.info("%s: partitions assigned: %s", self.name, _fmt(assigned) or "none (more copies than partitions?)")
        if self.replay and assigned:
            log.info("%s: replaying assigned partitions from offset 0", self.name)
            self.consumer.seek_to_beginning(*assigned)


def _fmt(partitions) -> str:
    return ", ".join(sorted(f"{tp.topic}[{tp.partition}]" for tp in partitions))


class ConsumerRunner:
    def __init__(self, service: Service, *, relay: bool = True, poll_seconds: float | None = None, replay=False):
        self.service = service
        self.chaos = chaos.Control(service.name) if chaos.enabled() else None
        self.dispatcher = Dispatcher(service, chaos=self.chaos)
        self._paused = False
        self.stopping = threading.Event()
        self.relay = Relay(service, poll_seconds or settings.OUTBOX_POLL_SECONDS) if relay else None
        self.sender = self.relay  # the relay this thread sends its batches' events with, right after commit
        self.dlt_producer = None
        self.consumer = None
        self.replay = replay
        self._next_offsets: dict = {}  # the offset after the last record handled, per partition
        self._uncommitted: dict = {}  # partition -> OffsetAndMetadata applied but not yet committed
        self._committed_at = 0.0
        self._admin = None  # for describing the group when this member has no partitions
        self._idle_said = False

    def install_signal_handlers(self) -> None:
        def _stop(signum, _frame):
            log.info("%s: %s received; finishing the batch in hand", self.service.name, signal.Signals(signum).name)
            self.stopping.set()

        signal.signal(signal.SIGTERM, _stop)
        signal.signal(signal.SIGINT, _stop)

    def run(self) -> None:
        name = self.service.name
        kafka_io.wait_for_broker(name, self.stopping.is_set)
        if self.stopping.is_set():
            return
        kafka_io.ensure_topics()
        relay_thread = self.relay.start() if self.relay else None
        if self.sender is not None:
            self.dispatcher.before_commit = partial(self.sender.mark_sent, self.service)
        topics = self.service.topics()
        # "none": kafka-python reports a partition without a committed offset (started below from the earliest,
        # as a new group should) apart from one whose committed offset retention deleted (offset_loss.py).
        self.client_id = kafka_io.client_id(name)
        self.consumer = kafka_io.make_consumer(
            self.service.group, name, auto_offset_reset="none", client_id=self.client_id
        )
        # A first join before the topics' metadata arrived can leave the member with no partitions
        # until the next rebalance; ask for every topic's partitions first.
        kafka_io.wait_for_partitions(self.consumer, topics, self.stopping)
        self.listener = _Rebalance(name, self.consumer, self.replay, self._forget_partitions)
        self.consumer.subscribe(topics, listener=self.listener)
        log.info("%s: consuming %s as group %s", name, ", ".join(topics), self.service.group)
        self._unassigned_since = time.monotonic()
        try:
            while not self.stopping.is_set():
                # Caught in kafka-python's join race (below), poll() spins inside for its whole timeout, a
                # fetch attempt after another: 0.65-0.87 cores until the rejoin. Without partitions, a short
                # poll per POLL_MS moves the group protocol on just as well (a poll of 0 ms never joins).
                # But never wait outside poll() while a join is under way: kafka-python 3.0 drops a
                # JoinGroup/SyncGroup answer that arrives between polls and joins again, which rebalances
                # every member once more, and the group can go round like that until the watchdog.
                if self.chaos is not None:
                    self._obey_chaos()
                joining = self._joining()
                assigned, polled_at = bool(self.listener.assigned), time.monotonic()
                polled = self._poll(POLL_MS if assigned or joining else UNASSIGNED_POLL_MS)
                self._watch_assignment(topics, name)
                if not polled:
                    self._commit_pending(due_only=True)
                    if self.service.on_idle:
                        self.service.on_idle()
                    if not assigned and not self._joining():
                        self.stopping.wait(POLL_MS / 1000 - (time.monotonic() - polled_at))
                    continue
                self._process(polled)
        finally:
            self._commit_pending()
            self.consumer.close(autocommit=False)
            if self.relay:
                self.relay.stop()
                relay_thread.join(15)
            if self.dlt_producer is not None:
                self.dlt_producer.close(timeout=10)
            if self._admin is not None:
                self._admin.close()
            connections.close_all()
            log.info("%s: stopped cleanly", name)

    def _joining(self) -> bool:
        """True while this member's JoinGroup/SyncGroup round is under way (sent, its answer not yet taken)."""
        return self.consumer.group_metadata().state == MemberState.REBALANCING

    def _poll(self, timeout_ms: int) -> dict:
        """kafka-python 3.0 can raise a retriable error out of poll() while the group coordinator moves (when
        the coordinator's node dies, the metadata refresh of the coordinator lookup meets a refused connection;
        tests/faults/test_cluster.py kills it). A later poll finds the new coordinator, so this waits a moment
        and reports an empty poll instead."""
        try:
            return self.consumer.poll(timeout_ms=timeout_ms, max_records=500)
        except NoOffsetForPartitionError as exc:
            offset_loss.start_from_earliest(self, exc)
            return {}
        except OffsetOutOfRangeError as exc:
            offset_loss.handle_out_of_range(self, exc)  # raises OffsetsLost unless KAFKA_OFFSET_RESET allows
            return {}
        except KafkaError as exc:
            if not getattr(exc, "retriable", False):
                raise
            log.warning(
                "%s: a poll failed (%s: %s); polling again in %.0f s. If this repeats, check that the brokers "
                "at %s are up",
                self.service.name,
                type(exc).__name__,
                exc,
                POLL_RETRY_SECONDS,
                settings.KAFKA["bootstrap_servers"],
            )
            self.stopping.wait(POLL_RETRY_SECONDS)
            return {}

    def _process(self, polled) -> None:
        records = [
            Record(r.topic, r.partition, r.offset, r.key, r.value, list(r.headers or ()), r.timestamp)
            for tp in sorted(polled, key=lambda tp: (tp.topic, tp.partition))
            for r in polled[tp]
        ]
        started = time.perf_counter()
        delay = next_delay()
        while True:
            try:
                with self.sender.sending_after(self.service) if self.sender else nullcontext():
                    result = self.dispatcher.handle(records)
                break
            except TRANSIENT_ERRORS as exc:
                # Nothing of the batch was applied; keep it and try again once the database is back.
                log.warning(
                    "%s: database unavailable (%s); retrying the batch of %s in %.1fs",
                    self.service.name,
                    exc,
                    len(records),
                    delay,
                )
                metrics.consumer_retries.labels(self.service.group).inc()
                connections[self.service.database].close()
                close_old_connections()
                if self.stopping.wait(delay):
                    self._rewind(polled)
                    return
                delay = next_delay(delay)
        if os.environ.get("EVENTBUS_CRASH_AT") == "consumer-after-commit":  # fault-injection tests only
            os.kill(os.getpid(), signal.SIGKILL)
        if result.dead and not self._dead_letter(result.dead):
            return  # stopping while the broker is away: no commit, so the batch comes back on restart
        handled = {tp: batch[-1].offset + 1 for tp, batch in polled.items()}
        self._next_offsets.update(handled)
        self._uncommitted.update({tp: OffsetAndMetadata(offset, "", -1) for tp, offset in handled.items()})
        self._commit_pending(due_only=True)
        if self.chaos is not None and (delay := self.chaos.delay_seconds(len(records))):
            self.stopping.wait(delay)
        elapsed_ms = (time.perf_counter() - started) * 1000
        lags = self._lag_by_partition()
        lag = sum(lags.values())
        metrics.record_batch(self.service.group, result, lag_by_partition=lags)
        log.info(
            "%s: batch of %s events (%s handled, %s duplicate, %s ignored, %s dead-lettered) in %.0f ms; lag %s",
            self.service.name,
            len(records),
            result.handled,
            result.duplicates,
            result.ignored,
            len(result.dead),
            elapsed_ms,
            lag,
        )

    def _obey_chaos(self) -> None:
        """Pause every partition held while a `pause` switch is on (again after each poll: a rebalance
        hands partitions over unpaused), and resume them when it ends. A paused member still polls, so it
        keeps its place in the group."""
        self.chaos.refresh()
        held = self.consumer.assignment()
        if self.chaos.paused:
            if held:
                self.consumer.pause(*held)
            self._paused = True
        elif self._paused:
            self.consumer.resume(*held)
            self._paused = False

    REJOIN_AFTER_SECONDS = 30

    def _watch_assignment(self, topics: list[str], name: str) -> None:
        """kafka-python can leave a member without partitions after a join race (dpkp/kafka-python#3131).
        A member unassigned for a while asks the broker whether that is by design: the group is Stable, this
        member is in it, and the broker gave it nothing (more copies than partitions). Then it waits without
        disturbing the group; otherwise (stuck outside the group, or the broker's assignment for it never
        arrived) it subscribes again, which rebalances the group once."""
        if self.listener.assigned:
            self._unassigned_since = time.monotonic()
            self._idle_said = False
            return
        if time.monotonic() - self._unassigned_since <= self.REJOIN_AFTER_SECONDS:
            return
        self._unassigned_since = time.monotonic()
        verdict = self._membership(topics)
        if verdict == "idle":
            if not self._idle_said:
                log.info("%s: no partitions: the group is stable and has none left for this copy; waiting", name)
                self._idle_said = True
            return
        if verdict == "unknown":
            return  # the broker did not answer: rejoining would not work either; ask again next period
        log.warning("%s: no partitions for %ss (%s); subscribing again", name, self.REJOIN_AFTER_SECONDS, verdict)
        self.consumer.unsubscribe()
        self.listener = _Rebalance(name, self.consumer, self.replay, self._forget_partitions)
        self.consumer.subscribe(topics, listener=self.listener)

    def _membership(self, topics: list[str]) -> str:
        """'idle' when the broker agrees this member has no partitions in a Stable group whose other members
        hold every partition; 'unknown' when the broker cannot say; otherwise what is wrong."""
        group = self.service.group
        try:
            if self._admin is None:
                self._admin = kafka_io.make_admin()
            described = self._admin.describe_groups([group])[group]
        except Exception as exc:
            log.warning("%s: cannot describe group %s (%s: %s)", self.service.name, group, type(exc).__name__, exc)
            if self._admin is not None:
                try:
                    self._admin.close()
                except Exception:
                    pass
                self._admin = None
            return "unknown"
        state = described.get("group_state")
        if state != "Stable":
            return f"the group is {state}"
        mine = [m for m in described.get("members") or () if m.get("client_id") == self.client_id]
        if not mine:
            return "this copy is not a member of the group"
        if any(kafka_io.assigned_partition_count(m.get("member_assignment")) for m in mine):
            return "the broker assigned partitions that never reached this copy"
        # An assignment made from metadata that did not yet hold the topics leaves partitions to nobody.
        held = sum(kafka_io.assigned_partition_count(m.get("member_assignment")) for m in described["members"])
        total = sum(len(self.consumer.partitions_for_topic(t) or ()) for t in topics)
        if held < total:
            return f"{total - held} of {total} partitions are assigned to no member"
        return "idle"

    def _rewind(self, polled) -> None:
        for tp, batch in polled.items():
            self.consumer.seek(tp, batch[0].offset)

    def _lag_by_partition(self) -> dict:
        """Lag from what this consumer already knows: no network round trip, so it costs nothing per batch
        and cannot fail while the broker is away (`KafkaConsumer.position()` may do both)."""
        lags = {}
        for tp in self.consumer.assignment():
            high, position = self.consumer.highwater(tp), self._next_offsets.get(tp)
            if high is not None and position is not None:
                lags[(tp.topic, tp.partition)] = max(0, high - position)
        return lags

    def _dead_letter(self, dead: list[DeadLetter]) -> bool:
        """Send the dead letters; True once all are safe on the broker."""
        if self.dlt_producer is None:
            self.dlt_producer = kafka_io.make_producer(f"{self.service.name}-dlt")
        pending = []
        for letter in dead:
            record = letter.record
            if is_dead_letter_topic(record.topic):
                continue
            headers = [
                (k, v) for k, v in record.headers if not k.startswith("dlt_") and isinstance(v, (bytes, bytearray))
            ]
            headers += [
                ("dlt_reason", letter.reason.encode()),
                ("dlt_error", letter.error[:2000].encode(errors="replace")),
                ("dlt_topic", record.topic.encode()),
                ("dlt_partition", str(record.partition).encode()),
                ("dlt_offset", str(record.offset).encode()),
                ("dlt_group", self.service.group.encode()),
                ("dlt_time", datetime.now(UTC).isoformat().encode()),
            ]
            pending.append((record, headers))
            log.warning(
                "%s: dead-lettered %s[%s]@%s to %s.dlt: %s (%s)",
                self.service.name,
                record.topic,
                record.partition,
                record.offset,
                record.topic,
                letter.reason,
                letter.error[:200],
            )
        # The offsets are committed only once every dead letter is safe, so a failed send is retried (a record
        # too large is cut, below) and never raised: a dead letter must not stop the consumer.
        delay = next_delay()
        pending = [(record, fit_for_dead_letter_topic(record.value, headers)) for record, headers in pending]
        while pending:
            try:
                futures = [
                    self.dlt_producer.send(r.topic + ".dlt", key=r.key, value=value, headers=h)
                    for r, (value, h) in pending
                ]
                for future in futures:
                    future.get(timeout=30)
                break
            except (MessageSizeTooLargeError, RecordListTooLargeError) as exc:
                log.warning("%s: a dead letter is still too large (%s); cutting its payload", self.service.name, exc)
                pending = [
                    (r, fit_for_dead_letter_topic(value, h, limit=MIN_DEAD_LETTER_BYTES)) for r, (value, h) in pending
                ]
            except Exception as exc:  # the broker away, or anything else: the batch waits, the consumer lives
                log.warning(
                    "%s: could not send dead letters (%s: %s); retrying in %.1fs",
                    self.service.name,
                    type(exc).__name__,
                    exc,
                    delay,
                )
                if self.stopping.wait(delay):
                    return False
                delay = next_delay(delay)
        metrics.dead_letters.labels(self.service.group).inc(len(pending))
        return True

    COMMIT_SECONDS = 1.0

    def _commit_pending(self, due_only: bool = False) -> None:
        """Commit the offsets of the batches applied so far: at most every COMMIT_SECONDS when `due_only`.

        Offsets always follow the database transactions they cover. Committing once a second instead of
        after every batch saves a broker round trip per batch (the saga's batches hold a few events each);
        what a crash leaves uncommitted is delivered again and skipped by the inbox.
        """
        if not self._uncommitted or (due_only and time.monotonic() - self._committed_at < self.COMMIT_SECONDS):
            return
        offsets, self._uncommitted = self._uncommitted, {}
        self._committed_at = time.monotonic()
        self._commit(offsets)

    def _forget_partitions(self, revoked) -> None:
        for tp in revoked:
            self._uncommitted.pop(tp, None)
            self._next_offsets.pop(tp, None)

    def _commit(self, offsets) -> None:
        """Commit offsets. If the broker is away or the group moved on, the batches they cover will be
        delivered again and the inbox will skip them: log it and go on, never crash."""
        try:
            self.consumer.commit(offsets)
        except kafka_io.BrokerUnavailable as exc:
            log.warning(
                "%s: could not commit offsets (%s: %s); those events will be redelivered and the inbox will skip them",
                self.service.name,
                type(exc).__name__,
                exc,
            )


def run_together(runners: list[ConsumerRunner], relay: Relay | None = None) -> int:
    """Run several services' consumers in one process, each in a thread of its own with its own group,
    inbox and offsets: fewer processes on a small machine, while each service still scales apart. `relay`
    (one producer and one thread for every hosted service's outbox) runs beside them when given.
    SIGTERM/SIGINT stop them all, each after its batch in hand; if one dies, the others stop too and the
    process exits 1, so that a supervisor restarts the lot. Returns the exit status."""
    stopping = threading.Event()
    failed: list[str] = []
    for runner in runners:
        runner.stopping = stopping
        runner.sender = relay or runner.relay

    def _stop(signum, _frame):
        log.info("%s received; every consumer finishes the batch in hand", signal.Signals(signum).name)
        stopping.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)

    def run(runner: ConsumerRunner) -> None:
        try:
            runner.run()
        except BaseException:
            log.exception("%s: the consumer stopped on an error; stopping the others", runner.service.name)
            failed.append(runner.service.name)
            stopping.set()

    relay_thread = None
    if relay is not None:
        # As a lone consumer does, the relay sends only once the topics exist with their partition counts.
        kafka_io.wait_for_broker("relay", stopping.is_set)
        if not stopping.is_set():
            kafka_io.ensure_topics()
            relay_thread = relay.start()
    threads = [threading.Thread(target=run, args=(r,), name=f"consumer-{r.service.name}") for r in runners]
    for thread in threads:
        thread.start()
    while any(thread.is_alive() for thread in threads):
        for thread in threads:
            thread.join(0.5)  # short joins: the main thread stays free to take a signal
    if relay_thread is not None:
        relay.stop()
        relay_thread.join(15)
    return 1 if failed else 0
