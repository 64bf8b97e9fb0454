"""Event ids: UUID version 7 (RFC 9562), whose first 48 bits are the Unix time in milliseconds.

Every consumer writes each event's id into its inbox's unique index, and every producer into its
outbox's. Random (version 4) ids land anywhere in those indexes, so each batch dirties pages all over the
B-tree; ids that grow with time are appended at its right edge. Python has `uuid.uuid7` only from 3.14.
Order ids stay version 4: they are shown to customers, and need not tell when an order was placed.
"""

from __future__ import annotations

import os
import time
import uuid


def uuid7() -> uuid.UUID:
    """48 bits of Unix milliseconds, the version (7), 12 random bits, the variant (0b10), 62 random bits."""
    millis = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")  # 80 bits: 12 for rand_a, 62 for rand_b, 6 unused
    value = (millis & 0xFFFF_FFFF_FFFF) << 80 | 0x7 << 76 | (rand >> 68) << 64 | 0b10 << 62 | rand & (2**62 - 1)
    return uuid.UUID(int=value)


def new_event_id() -> str:
    return str(uuid7())
