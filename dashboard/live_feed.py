"""The live feed of the dashboard consumer process: frames for browsers, throughput and consumer lag.

Handlers hand over what they wrote once the batch commits (`feed.note`, through eventbus.unit_of_work);
that and `Service.on_idle` call `feed.tick()`, which at most every FLUSH_SECONDS turns what was noted into one
frame — its events, the latest card of each order touched (coalesced), counters and stage counts — and
the seqs it covers. Frames go to the channel-layer group "dashboard" as text (frames.py) from a thread of
their own through a bounded queue, so neither Redis nor a browser can ever slow the consumer: when the
queue is full or Redis is away, frames are dropped, and once the layer can be tried again a "resync" frame
asks every browser to catch up from the read model (the gap in seqs would show only with the next events).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import Counter, defaultdict

from channels.layers import get_channel_layer
from django.conf import settings
from django.db import DatabaseError
from django.utils import timezone

from eventbus.push import BackgroundPusher

from . import frames, read_model

log = logging.getLogger("dashboard")
FLUSH_SECONDS = 0.1
METRICS_SECONDS = 1.0
LAG_SECONDS = 2.0
# The tail shows the newest events of each frame (the page says how many it skipped); cards and counters in
# a frame are always complete. Every event sent is sent to every browser: at 210 orders/s a frame every
# 0.3 s held about 350 events, and 300 of them to each of 100 browsers was 45 MB/s through the web and the
# slowest browser's frame over 1 s late; at 100, 0.56 s.
MAX_EVENTS_PER_FRAME = 100
LAG_HISTORY = 90
EVENT_FRAMES = ("batch", "resync")  # frames whose loss leaves a browser behind the read model


class FrameSender:
    """Sends frames to the channel layer from the pusher's thread and event loop; never blocks the caller."""

    MAX_QUEUED = 200

    def __init__(self):
        self.pusher = BackgroundPusher("dashboard-frames", max_pending=self.MAX_QUEUED)
        self.sent = 0
        self.events_lost = False  # a frame of events was dropped and the browsers have not been told yet
        self._down_until = 0.0

    @property
    def dropped(self) -> int:
        return self.pusher.dropped

    def send(self, frame: dict) -> bool:
        """Queue a frame; False when it was dropped (queue full, or Redis recently unreachable)."""
        if time.monotonic() < self._down_until:
            self._dropped(frame)
            return False

        async def deliver() -> None:
            try:
                message = frames.message_for(frame)
                await asyncio.wait_for(get_channel_layer().group_send(frames.GROUP, message), timeout=5)
                self.sent += 1
            except Exception as exc:
                self._dropped(frame)
                if time.monotonic() >= self._down_until:
                    log.warning("dashboard: cannot push frames to the channel layer (%s); retrying in 2 s", exc)
                self._down_until = time.monotonic() + 2

        if self.pusher.submit(deliver):
            return True
        self._dropped(frame, counted=True)
        return False

    def tell_of_losses(self) -> None:
        """Once Redis may be back after frames of events were dropped, ask every browser to catch up from the
        read model. A browser also sees the gap in seqs, but only when the next events come, which on a
        quiet shop may be never."""
        if self.events_lost and time.monotonic() >= self._down_until:
            self.events_lost = False
            self.send({"kind": "resync", "reason": "frames-lost"})

    def _dropped(self, frame: dict, *, counted: bool = False) -> None:
        if not counted:  # the pusher counts the frames it refuses itself
            self.pusher.dropped += 1
        self.events_lost = self.events_lost or frame.get("kind") in EVENT_FRAMES


class LagSampler:
    """Reads consumer lag from the broker in a thread of its own (the broker may be slow or away).

    Seconds behind is an estimate per group: its lag divided by the rate at which it has been committing
    offsets lately (an average over the last samples); when it is lagging and has not moved at all, the
    time since it last made progress or was caught up.
    """

    def __init__(self, groups: list[str], interval: float = LAG_SECONDS):
        self.groups = groups
        self.interval = interval
        self.latest: list[dict] | None = None  # handed to the consumer thread, which writes and pushes it
        self._thread: threading.Thread | None = None
        self._reader = None
        self._prev: dict[str, tuple[float, int]] = {}
        self._rate: dict[str, float] = {}
        self._progress: dict[str, float] = {}
        self._warned = 0.0

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="dashboard-lag", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while True:  # a daemon thread: it lives as long as the consumer process
            time.sleep(self.interval)
            try:
                if self._reader is None:
                    from eventbus.lag import LagReader

                    self._reader = LagReader()
                rows = self._reader.read(self.groups)
            except Exception as exc:
                if time.monotonic() - self._warned > 60:
                    log.warning("dashboard: cannot read consumer lag (%s)", exc)
                    self._warned = time.monotonic()
                self._close_reader()
                continue
            self.latest = self.estimate(rows, time.time())

    def _close_reader(self) -> None:
        reader, self._reader = self._reader, None
        if reader is not None:
            reader.close()

    def estimate(self, rows, now: float) -> list[dict]:
        """Turn PartitionLag rows into one sample per group (see the class docstring for seconds behind)."""
        by_group: dict[str, list] = defaultdict(list)
        for row in rows:
            by_group[row.group].append(row)
        samples = []
        for group in self.groups:
            parts = by_group.get(group, [])
            lag = sum(p.lag for p in parts)
            committed = sum(p.committed for p in parts)
            prev = self._prev.get(group)
            if prev and now > prev[0]:
                rate = max(0.0, (committed - prev[1]) / (now - prev[0]))
                self._rate[group] = rate if group not in self._rate else 0.5 * self._rate[group] + 0.5 * rate
                if committed > prev[1]:
                    self._progress[group] = now
            self._prev[group] = (now, committed)
            if lag == 0:
                self._progress[group] = now
                behind = 0.0
            elif self._rate.get(group, 0.0) > 0.01:
                behind = lag / self._rate[group]
            else:
                behind = now - self._progress.setdefault(group, now)
            samples.append(
                {
                    "group": group,
                    "lag": lag,
                    "seconds_behind": round(behind, 1),
                    "partitions": [[p.topic, p.partition, p.committed, p.end] for p in parts],
                    "t": now,
                }
            )
        return samples


def consumer_groups() -> list[str]:
    from eventbus.service import service

    groups = []
    for name in settings.CONVEYOR_SERVICES:
        try:
            groups.append(service(name).group)
        except Exception:
            groups.append(f"conveyor.{name}")
    return groups


class LiveFeed:
    def __init__(self):
        self.sender = FrameSender()
        self.lag: LagSampler | None = None
        self.reset()

    def reset(self) -> None:
        self.pending: list = []
        self.last_flush = 0.0
        self.last_metrics = time.monotonic()
        self.rates: dict[int, Counter] = defaultdict(Counter)  # unix second -> events per type
        self.rate_emitted = int(time.time()) - 1

    # ------------------------------------------------------------------ called by the handlers

    def note(self, entries: list) -> None:
        """EventLog rows whose transaction has committed; sent on in a frame when one is due."""
        self.pending += entries
        second = self.rates[int(time.time())]
        for entry in entries:
            if entry.kind == "event":
                second[entry.event_type] += 1
        if time.monotonic() - self.last_flush >= FLUSH_SECONDS:
            try:
                self.flush()
            except DatabaseError as exc:  # what was noted waits for the next tick
                log.warning("dashboard: live feed skipped a beat (%s)", exc)

    # ------------------------------------------------------------------ after each batch, and Service.on_idle

    def tick(self) -> None:
        now = time.monotonic()
        self.sender.tell_of_losses()
        try:
            if self.pending and now - self.last_flush >= FLUSH_SECONDS:
                self.flush()
            if now - self.last_metrics >= METRICS_SECONDS:
                self.push_metrics()
            if self.lag is None:
                self.lag = LagSampler(consumer_groups())
                self.lag.start()
            elif self.lag.latest is not None:
                samples, self.lag.latest = self.lag.latest, None
                self.push_lag(samples)
        except DatabaseError as exc:
            log.warning("dashboard: live feed skipped a beat (%s)", exc)

    def flush(self) -> dict | None:
        """Turn what was noted into one frame and send it; returns the frame (None when there was nothing)."""
        entries, self.pending = self.pending, []
        self.last_flush = time.monotonic()
        if not entries:
            return None
        seqs = [e.seq for e in entries]
        orders = {e.order_id for e in entries if e.order_id and e.kind == "event"}
        types = {e.event_type for e in entries}
        dead = [e.seq for e in entries if e.kind == "dead-letter"]
        shown = entries[-MAX_EVENTS_PER_FRAME:]
        frame = {
            "kind": "batch",
            "built": round(time.time(), 3),
            "from_seq": min(seqs),
            "to_seq": max(seqs),
            "count": len(entries),
            "dropped": len(entries) - len(shown),
            "events": [read_model.event_row(e) for e in shown],
            "cards": read_model.cards_for(orders) if orders else [],
            "stage_counts": read_model.stage_counts() if orders else None,
            "counters": read_model.counters(types),
            "dead_letters": [read_model.dead_letter_row(d) for d in _dead_letters_by_seq(dead)] if dead else [],
        }
        self.sender.send(frame)
        return frame

    def push_metrics(self) -> dict | None:
        """Events per second and type for every whole second since the last push (sparkline points)."""
        self.last_metrics = time.monotonic()
        current = int(time.time())
        points = []
        for second in range(max(self.rate_emitted + 1, current - 60), current):
            points.append([second, dict(self.rates.pop(second, {}))])
        for second in [s for s in self.rates if s < current]:
            self.rates.pop(second, None)
        self.rate_emitted = current - 1
        if not points:
            return None
        frame = {"kind": "metrics", "points": points}
        self.sender.send(frame)
        return frame

    def push_lag(self, samples: list[dict]) -> dict:
        from .models import GroupLag

        rows = []
        now = timezone.now()
        for sample in samples:
            row = GroupLag.objects.using("dashboard").filter(group=sample["group"]).first() or GroupLag(
                group=sample["group"]
            )
            row.lag = sample["lag"]
            row.seconds_behind = sample["seconds_behind"]
            row.partitions = sample["partitions"]
            row.history = (
                list(row.history or []) + [[round(sample["t"], 1), sample["lag"], sample["seconds_behind"]]]
            )[-LAG_HISTORY:]
            row.sampled_at = now
            row.save(using="dashboard")
            rows.append(read_model.lag_row(row))
        frame = {"kind": "lag", "groups": rows}
        self.sender.send(frame)
        return frame


def _dead_letters_by_seq(seqs):
    from .models import DeadLetter

    return DeadLetter.objects.using("dashboard").filter(seq__in=seqs)


feed = LiveFeed()


def send_frame(frame: dict) -> None:
    """Push one frame from a web process (e.g. a dead letter was replayed); never raises."""
    feed.sender.send(frame)
