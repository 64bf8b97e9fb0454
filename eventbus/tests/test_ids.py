"""Event ids are UUID version 7: valid UUIDs whose order follows the clock, so inbox and outbox indexes
grow at one end."""

import time
import uuid

from eventbus import envelope
from eventbus.ids import new_event_id, uuid7


def test_an_event_id_is_a_version_7_uuid_carrying_the_current_millisecond():
    before = time.time_ns() // 1_000_000
    made = uuid7()
    after = time.time_ns() // 1_000_000
    assert made.version == 7 and made.variant == uuid.RFC_4122
    assert before <= made.int >> 80 <= after
    assert uuid.UUID(new_event_id()).version == 7


def test_ids_made_in_a_later_millisecond_sort_after_earlier_ones():
    first = new_event_id()
    start = time.time_ns() // 1_000_000
    while time.time_ns() // 1_000_000 == start:  # until the clock ticks over; a spin of at most 1 ms
        pass
    assert new_event_id() > first


def test_ids_do_not_repeat():
    assert len({new_event_id() for _ in range(20_000)}) == 20_000


def test_the_envelope_gives_an_event_a_version_7_id_unless_it_has_one():
    message = envelope.encode(
        event_type="conveyor.shop.order.cancel_requested.v1",
        source_app="shop",
        subject="o1",
        data={"order_id": "7d3f6f52-9a3e-4a55-8f0e-0b8d0e6b1a11", "reason": "customer"},
    )
    assert uuid.UUID(message.headers["ce_id"]).version == 7
