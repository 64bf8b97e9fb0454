"""A frame is encoded once, by the process that makes it, and travels as text.

The dashboard consumer (or a web process, e.g. after a dead letter is replayed) encodes a frame to JSON and
sends the channel-layer group "dashboard" that text and the frame's kind. The group has one member per web
process (`fanout.py`), which hands the same text to each of its browsers: a frame crosses Redis once per web
process and is never decoded or encoded again on its way to a browser.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from django.core.serializers.json import DjangoJSONEncoder

GROUP = "dashboard"
FRAME_TYPE = "dashboard.frame"


@dataclass(frozen=True)
class SharedFrame:
    kind: str
    text: str


def encode(frame: dict) -> str:
    return json.dumps(frame, cls=DjangoJSONEncoder, separators=(",", ":"))


def message_for(frame: dict) -> dict:
    """The channel-layer message that carries `frame` to the web processes."""
    return {"type": FRAME_TYPE, "kind": frame.get("kind", ""), "text": encode(frame)}


def shared(message: dict) -> SharedFrame:
    return SharedFrame(message.get("kind", ""), message["text"])
