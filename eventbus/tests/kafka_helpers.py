"""Producing and reading raw records in tests, with the same clients the event bus uses."""

from __future__ import annotations

import time
import uuid

from eventbus import envelope, kafka_io, schemas

_producer = None


def producer():
    global _producer
    if _producer is None:
        _producer = kafka_io.make_producer("tests", linger_ms=0)
    return _producer


def send_raw(topic: str, value: bytes | None, headers: list[tuple[str, bytes]] | None = None, key: bytes | None = None):
    """`topic` is logical (e.g. shop.orders); the current prefix is applied."""
    return producer().send(schemas.topic_name(topic), key=key, value=value, headers=headers or []).get(timeout=30)


def send_event(event_type: str, source: str, subject: str, data: dict, **kwargs) -> envelope.Message:
    message = envelope.encode(event_type=event_type, source_app=source, subject=subject, data=data, **kwargs)
    send_raw(message.topic, message.value, [(k, v.encode()) for k, v in message.headers.items()], message.key)
    return message


def close() -> None:
    global _producer
    if _producer is not None:
        _producer.close(timeout=5)
        _producer = None


def read_topic(topic: str, expected: int, timeout: float = 60.0) -> list:
    """Read a physical topic from the beginning until `expected` records arrived (or fail)."""
    consumer = kafka_io.make_consumer(None, f"reader-{uuid.uuid4().hex[:6]}", auto_offset_reset="earliest")
    consumer.subscribe([topic])
    records = []
    deadline = time.monotonic() + timeout
    try:
        while len(records) < expected and time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=500).values():
                records.extend(batch)
    finally:
        consumer.close()
    assert len(records) >= expected, f"{topic}: expected {expected} records, got {len(records)}"
    return records


def placed_data(order_id: str, sku: str, quantity: int = 1) -> dict:
    return {
        "order_id": order_id,
        "email": "test@example.com",
        "name": "Test Buyer",
        "address": "1 Test Street",
        "lines": [{"sku": sku, "quantity": quantity, "unit_price": "1.00"}],
        "total": f"{quantity:.2f}",
    }


def send_placed(sku: str, quantity: int = 1, order_id: str | None = None) -> str:
    order_id = order_id or str(uuid.uuid4())
    send_event("conveyor.shop.order.placed.v1", "shop", order_id, placed_data(order_id, sku, quantity))
    return order_id


def send_cancelled(order_id: str) -> None:
    """Shipping's confirmation of a cancel, which is what releases an order's stock."""
    data = {"order_id": order_id, "shipment_id": str(uuid.uuid4()), "reason": "test"}
    send_event("conveyor.shipping.shipment.cancelled.v1", "shipping", order_id, data)


def commit_offsets(group: str, offsets: dict[tuple[str, int], int]) -> None:
    """Commit offsets for a consumer group that has no members (created if new), without joining it."""
    from kafka import TopicPartition
    from kafka.errors import KafkaError
    from kafka.structs import OffsetAndMetadata

    request = {TopicPartition(t, p): OffsetAndMetadata(o, "", -1) for (t, p), o in offsets.items()}
    admin = kafka_io.make_admin()
    deadline = time.monotonic() + 60
    try:
        while True:  # a group coordinator not yet elected or loading on a new broker: retriable
            try:
                answer = admin.alter_group_offsets(group, request)
                failed = {tp: err for tp, err in answer.items() if err.errno != 0}
            except KafkaError as exc:
                failed = {None: type(exc)}
            if not failed:
                return
            if not all(err.retriable for err in failed.values()) or time.monotonic() > deadline:
                raise AssertionError(f"the broker refused offsets for {group}: {failed}")
            time.sleep(0.2)
    finally:
        admin.close()
