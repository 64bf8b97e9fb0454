"""The dashboard's frames reach a web process once, whatever the number of its browsers.

The channel-layer group "dashboard" has one member per web process (per event loop): a channel of this
module's, read by one task that hands each frame to every dashboard socket of the process. channels-redis
reads a process's messages one Redis round trip each, so with one member per browser a frame to 100
browsers was 100 round trips in the web process, each waiting for Redis to be scheduled on a busy machine.

If reading the layer fails (Redis away), the task retries every second and, once it can join the group
again, tells every socket to resync: frames may have been lost meanwhile. The dashboard consumer sends a
"resync" frame of its own once it could push again after dropping frames of events (live_feed.py), which
reaches the sockets the same way. The process leaves the group when its last socket closes.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from typing import Protocol

from channels.layers import get_channel_layer

from . import frames

log = logging.getLogger("dashboard")
REJOIN_SECONDS = 3600  # channels-redis forgets a group member after a day (group_expiry)


class Socket(Protocol):
    def deliver(self, frame: frames.SharedFrame) -> None: ...
    def resync(self, reason: str) -> None: ...


class Fanout:
    def __init__(self, layer):
        self.layer = layer
        self.sockets: set[Socket] = set()
        self.channel: str | None = None
        self.tasks: list[asyncio.Task] = []
        self.lock = asyncio.Lock()

    async def join(self, socket: Socket) -> None:
        """Add a socket; the first one makes this process a member of the group (frames flow from here)."""
        async with self.lock:
            if self.channel is None:
                # The default prefix: channels-redis reads all of a process's channels of one prefix with one
                # reader, and a second prefix's reader would wait behind the first's for good.
                channel = await self.layer.new_channel()
                await self.layer.group_add(frames.GROUP, channel)
                self.channel = channel
                self.tasks = [asyncio.ensure_future(self._receive(channel)), asyncio.ensure_future(self._stay(channel))]
            self.sockets.add(socket)

    async def leave(self, socket: Socket) -> None:
        async with self.lock:
            self.sockets.discard(socket)
            if self.sockets or self.channel is None:
                return
            channel, self.channel = self.channel, None
            for task in self.tasks:
                task.cancel()
            try:
                await self.layer.group_discard(frames.GROUP, channel)
            except Exception as exc:  # Redis away: the membership expires on its own
                log.warning("dashboard: could not leave the frames group (%s)", exc)

    async def _receive(self, channel: str) -> None:
        lost = False
        while True:
            try:
                if lost:  # Redis may have restarted and forgotten the group
                    await self.layer.group_add(frames.GROUP, channel)
                    lost = False
                    for socket in list(self.sockets):
                        socket.resync("frames-lost")
                message = await self.layer.receive(channel)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if not lost:
                    log.warning("dashboard: cannot read frames from the channel layer (%s); retrying every second", exc)
                lost = True
                await asyncio.sleep(1)
                continue
            if message.get("kind") == "resync":  # the dashboard consumer dropped frames of events
                for socket in list(self.sockets):
                    socket.resync("frames-lost")
            elif "text" in message:
                frame = frames.shared(message)
                for socket in list(self.sockets):
                    socket.deliver(frame)

    async def _stay(self, channel: str) -> None:
        while True:
            await asyncio.sleep(REJOIN_SECONDS)
            try:
                await self.layer.group_add(frames.GROUP, channel)
            except Exception as exc:  # the receiving task rejoins once Redis is back
                log.warning("dashboard: could not renew the frames group membership (%s)", exc)


_by_loop: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def for_this_loop() -> Fanout:
    loop = asyncio.get_running_loop()
    fanout = _by_loop.get(loop)
    if fanout is None:
        fanout = _by_loop[loop] = Fanout(get_channel_layer())
    return fanout
