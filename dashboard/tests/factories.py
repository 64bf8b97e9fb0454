"""Real records for the dashboard's tests: encoded by the bus's own writer, decoded by its reader."""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, datetime, timedelta

from eventbus import envelope, schemas
from eventbus.dispatch import Record

T0 = datetime(2030, 1, 1, 12, 0, 0, tzinfo=UTC)
_offsets = itertools.count(1000)

SOURCE = {"shop": "shop", "inventory": "inventory", "shipping": "shipping"}
LINES = [{"sku": "MUG-001", "quantity": 2, "unit_price": "12.50"}]


def data_for(event_type: str, order_id: str) -> dict:
    kind = event_type.split(".")[2:4]
    if kind == ["order", "placed"]:
        return {
            "order_id": order_id,
            "email": "a@example.com",
            "name": "Ada",
            "address": "1 Loop",
            "lines": LINES,
            "total": "25.00",
        }
    if kind == ["stock", "reserved"]:
        return {"order_id": order_id, "lines": [{"sku": "MUG-001", "quantity": 2}]}
    if kind == ["stock", "rejected"]:
        return {
            "order_id": order_id,
            "reasons": [{"sku": "MUG-001", "requested": 2, "available": 0, "reason": "insufficient-stock"}],
        }
    if kind == ["shipment", "cancelled"]:
        shipment_id = str(uuid.uuid5(uuid.NAMESPACE_URL, order_id))
        return {"order_id": order_id, "shipment_id": shipment_id, "reason": "customer"}
    if kind[0] == "shipment":
        return {"order_id": order_id, "shipment_id": str(uuid.uuid5(uuid.NAMESPACE_URL, order_id))}
    raise ValueError(event_type)


TYPES = {
    "placed": "conveyor.shop.order.placed.v1",
    "reserved": "conveyor.inventory.stock.reserved.v1",
    "rejected": "conveyor.inventory.stock.rejected.v1",
    "packed": "conveyor.shipping.shipment.packed.v1",
    "dispatched": "conveyor.shipping.shipment.dispatched.v1",
    "delivered": "conveyor.shipping.shipment.delivered.v1",
    "cancelled": "conveyor.shipping.shipment.cancelled.v1",
}


def message(stage: str, order_id: str, *, seconds: float = 0, causation_id: str | None = None):
    event_type = TYPES[stage]
    return envelope.encode(
        event_type=event_type,
        source_app=event_type.split(".")[1],
        subject=order_id,
        data=data_for(event_type, order_id),
        correlation_id=order_id,
        causation_id=causation_id,
        time=T0 + timedelta(seconds=seconds),
    )


def record(stage: str, order_id: str, *, offset: int | None = None, topic: str | None = None, **kwargs) -> Record:
    msg = message(stage, order_id, **kwargs)
    return Record(
        topic=topic or schemas.topic_name(msg.topic),
        partition=0,
        offset=next(_offsets) if offset is None else offset,
        key=msg.key,
        value=msg.value,
        headers=[(k, v.encode()) for k, v in msg.headers.items()],
    )


def event(stage: str, order_id: str, **kwargs):
    """An Envelope as a handler receives it."""
    r = record(stage, order_id, **kwargs)
    return envelope.decode(
        topic=r.topic, partition=r.partition, offset=r.offset, key=r.key, value=r.value, headers=r.headers
    )


def dead_lettered(original: Record, *, reason: str = "handler-error", group: str = "conveyor.inventory") -> Record:
    """What the runner writes to `<topic>.dlt` for `original`."""
    headers = list(original.headers) + [
        ("dlt_reason", reason.encode()),
        ("dlt_error", b"ValueError: boom"),
        ("dlt_topic", original.topic.encode()),
        ("dlt_partition", str(original.partition).encode()),
        ("dlt_offset", str(original.offset).encode()),
        ("dlt_group", group.encode()),
        ("dlt_time", b"2030-01-01T12:00:05+00:00"),
    ]
    return Record(original.topic + ".dlt", 0, next(_offsets), original.key, original.value, headers)


def new_order_id() -> str:
    return str(uuid.uuid4())
