"""The dashboard's websocket: live frames for staff, with a bounded queue per connection.

Protocol (JSON):
- server → client: `hello`; `batch` frames (`from_seq`..`to_seq`, events, coalesced cards, counters);
  `metrics`, `lag`, `dead_letters`; `catchup`/`snapshot` answers; `resync` when it dropped frames (its
  queue overflowed, or the process could not read the channel layer for a while).
- client → server: `{"type": "catchup", "since": <last seq or null>}` after connecting, after `resync`,
  and whenever it sees a gap in the seqs; `{"type": "ack", "frames": <frames handled on this connection>}`
  after each frame it handled.

Flow control: the server's socket buffer under a websocket has no bound of its own (daphne writes whatever
the application sends, and ASGI gives the application no view of it). So once a browser acknowledges
frames, the server keeps at most `window_bytes` of frames unacknowledged on its way to that browser; the
next frames wait in the browser's bounded queue, by reference (a frame's text is shared by every browser
of the process, fanout.py). A browser that never acknowledges (an older page) is not paced.

Until a client has asked for its catch-up, and again after its queue overflowed, batch frames are not
queued for it at all: the catch-up it is about to get is read from the read model after those frames
were committed, so it holds them. Frames that arrive while the catch-up is read follow its answer. A
stalled browser therefore costs a bounded queue, never the consumer.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings
from django.contrib.auth import get_user_model

from eventbus.metrics import websocket_clients

from . import fanout, frames, read_model

CLOSE_FORBIDDEN = 4403
SEQ_FRAMES = {"batch"}


class DashboardConsumer(AsyncJsonWebsocketConsumer):
    queue_size = 500
    window_bytes = 256 * 1024  # unacknowledged bytes on their way to one pacing browser

    async def connect(self):
        user = self.scope.get("user")
        if not (user and user.is_authenticated and user.is_active and user.is_staff):
            await self.accept()
            await self.close(code=CLOSE_FORBIDDEN)
            return
        self.queue: asyncio.Queue = asyncio.Queue(maxsize=self.queue_size)
        self.synced = False
        self.held: list[frames.SharedFrame] | None = None  # frames that arrive while a catch-up is read
        self.overflows = 0
        self.paced = False  # until the browser's first ack
        self.frames_sent = 0
        self.in_flight: deque[tuple[int, int]] = deque()  # (frame number, bytes) not acknowledged yet
        self.unacked_bytes = 0
        self.acked = asyncio.Event()
        self.joined = True
        self.fanout = fanout.for_this_loop()
        await self.fanout.join(self)
        await self.accept()
        self.sender = asyncio.ensure_future(self._send_loop())
        self.watcher = asyncio.ensure_future(self._watch_staff())
        websocket_clients.labels("dashboard").inc()
        self.offer({"kind": "hello", "queue": self.queue_size})

    async def disconnect(self, code):
        if getattr(self, "joined", False):
            self.joined = False
            websocket_clients.labels("dashboard").dec()
            await self.fanout.leave(self)
        current = asyncio.current_task()
        for task in (getattr(self, "sender", None), getattr(self, "watcher", None)):
            if task is not None and task is not current:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    async def receive_json(self, content, **kwargs):
        if not getattr(self, "joined", False) or not isinstance(content, dict):
            return
        if content.get("type") in ("catchup", "gap"):
            if not await self._still_staff():  # a catch-up reads the whole board: ask again first
                await self._revoke()
                return
            since = content.get("since")
            since = since if isinstance(since, int) and not isinstance(since, bool) and since >= 0 else None
            self.held = []
            try:
                answer = await database_sync_to_async(read_model.catch_up)(since)
            finally:
                held, self.held = self.held, None
            self.synced = True
            self.offer(answer, force=True)
            for frame in held:
                self.offer(frame)
        elif content.get("type") == "ping":
            self.offer({"kind": "pong"})
        elif content.get("type") == "ack":
            self._acknowledged(content.get("frames"))

    async def _watch_staff(self) -> None:
        """A socket lives for hours: every DASHBOARD_STAFF_RECHECK_SECONDS, close it (4403) once its user is
        no longer active staff or its session has ended (logged out, expired, deleted)."""
        while True:
            await asyncio.sleep(settings.DASHBOARD_STAFF_RECHECK_SECONDS)
            if not await self._still_staff():
                await self._revoke()
                return

    async def _revoke(self) -> None:
        if self.joined:
            self.joined = False
            websocket_clients.labels("dashboard").dec()
            await self.fanout.leave(self)
        self.sender.cancel()  # nothing more is sent on this socket
        await self.close(code=CLOSE_FORBIDDEN)

    @database_sync_to_async
    def _still_staff(self) -> bool:
        user, session = self.scope.get("user"), self.scope.get("session")
        key = getattr(session, "session_key", None)
        if not key or not session.exists(key):
            return False
        return get_user_model().objects.filter(pk=user.pk, is_active=True, is_staff=True).exists()

    def _acknowledged(self, frames_handled) -> None:
        if not isinstance(frames_handled, int) or isinstance(frames_handled, bool):
            return
        self.paced = True
        while self.in_flight and self.in_flight[0][0] <= frames_handled:
            self.unacked_bytes -= self.in_flight.popleft()[1]
        self.acked.set()

    def deliver(self, frame: frames.SharedFrame) -> None:
        """A frame of the group "dashboard", handed over by this process's fan-out."""
        if frame.kind in SEQ_FRAMES and not self.synced:
            if self.held is not None and len(self.held) < self.queue_size:
                self.held.append(frame)  # it may be newer than the catch-up being read: it follows the answer
            return  # else the coming catch-up includes it (or the browser sees the gap and asks again)
        self.offer(frame)

    def resync(self, reason: str) -> None:
        if self.synced:
            self._resync(reason)

    def offer(self, frame: dict | frames.SharedFrame, force: bool = False) -> None:
        """Queue a frame for this browser; on overflow drop the queue and ask the browser to resync."""
        if force and self.queue.full():
            self._drop_all()
        try:
            self.queue.put_nowait(frame)
        except asyncio.QueueFull:
            self.overflows += 1
            self._resync("overflow")

    def _resync(self, reason: str) -> None:
        self.synced = False
        self._drop_all()
        self.queue.put_nowait({"kind": "resync", "reason": reason})

    def _drop_all(self) -> None:
        while not self.queue.empty():
            self.queue.get_nowait()

    async def _send_loop(self) -> None:
        while True:
            frame = await self.queue.get()
            while self.in_flight and self.unacked_bytes >= self.window_bytes:
                self.acked.clear()
                await self.acked.wait()
            await self.transmit(frame)

    async def transmit(self, frame: dict | frames.SharedFrame) -> None:
        # a shared frame is encoded once for every browser of this process
        text = frame.text if isinstance(frame, frames.SharedFrame) else await self.encode_json(frame)
        await self.send(text_data=text)
        self.frames_sent += 1
        if self.paced:
            self.in_flight.append((self.frames_sent, len(text)))
            self.unacked_bytes += len(text)
