"""Big frames travel once. The dashboard process stores a frame's JSON in Redis under a fresh key and
sends the channel-layer group only that key and the frame's kind; each web process fetches a frame once
for all of its browsers and sends them the same text. It never parses it: a parsed 250 kB frame is a few
MB of Python objects, and a browser that lags keeps hundreds of frames in its queue.

Without this, `group_send` serialises and stores one copy per browser (channels-redis has no fan-out of
its own): a 250 kB frame to 100 dashboards was 25 MB through Redis and 100 decodes and encodes in the
web process, ten times a second.
"""

from __future__ import annotations

import asyncio
import json
import uuid
import weakref
from collections import OrderedDict
from dataclasses import dataclass

import redis.asyncio as aioredis
from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder

INLINE_BYTES = 4096  # smaller frames (metrics, lag) go inline: one more round trip would cost more
KEY_SECONDS = 15  # a web process further behind than this tells its browsers to resync
CACHE_FRAMES = 64


@dataclass(frozen=True)
class SharedFrame:
    kind: str
    text: str


def encode(frame: dict) -> str:
    return json.dumps(frame, cls=DjangoJSONEncoder, separators=(",", ":"))


def new_key() -> str:
    return f"conveyor:dashboard-frame:{settings.KAFKA_TOPIC_PREFIX}{uuid.uuid4().hex}"


class _LoopState:
    """What one event loop needs: its own Redis client and the frames it fetched lately."""

    def __init__(self):
        self.client = aioredis.Redis.from_url(settings.REDIS_URL, socket_timeout=5, socket_connect_timeout=5)
        self.fetches: OrderedDict[str, asyncio.Future] = OrderedDict()


_loops: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _state() -> _LoopState:
    loop = asyncio.get_running_loop()
    state = _loops.get(loop)
    if state is None:
        state = _loops[loop] = _LoopState()
    return state


async def message_for(frame: dict) -> dict:
    """The channel-layer message that carries `frame`: inline when small, else by reference."""
    text = encode(frame)
    if len(text) <= INLINE_BYTES:
        return {"frame": frame}
    key = new_key()
    await _state().client.set(key, text, ex=KEY_SECONDS)
    return {"ref": key, "kind": frame.get("kind", "")}


async def fetch(key: str) -> str | None:
    """The text of the frame stored under `key`, fetched once per process however many browsers ask; None if
    expired."""
    state = _state()
    pending = state.fetches.get(key)
    if pending is None:
        pending = state.fetches[key] = asyncio.ensure_future(_get(state.client, key))
        while len(state.fetches) > CACHE_FRAMES:
            state.fetches.popitem(last=False)
    return await asyncio.shield(pending)


async def _get(client, key: str) -> str | None:
    raw = await client.get(key)
    return None if raw is None else raw.decode()
