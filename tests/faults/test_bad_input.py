"""Bad events straight into every topic: each is dead-lettered with its reason by every consumer group
that reads the topic, no consumer dies, the next order still goes through (issue 7, "Bad input")."""

from __future__ import annotations

import uuid
from collections import Counter

import pytest
from django.conf import settings

from eventbus import schemas, strict_json
from eventbus.tests.kafka_helpers import read_topic, send_raw

from .helpers import buy, joined, seed, settled, sweep, wait_terminal

pytestmark = [
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True, databases=["default", "shop", "inventory", "shipping", "dashboard"]),
]

# topic -> (an event type that travels on it, the consumer groups that dead-letter its poison)
TOPICS = {
    "shop.orders": ("conveyor.shop.order.placed.v1", {"conveyor.inventory", "conveyor.shipping"}),
    "inventory.reservations": ("conveyor.inventory.stock.reserved.v1", {"conveyor.shop", "conveyor.shipping"}),
    "inventory.stock": ("conveyor.inventory.stock.changed.v1", {"conveyor.shop"}),
    "shipping.shipments": ("conveyor.shipping.shipment.packed.v1", {"conveyor.shop", "conveyor.inventory"}),
}

# kind -> (how to build it, the dead-letter reason every group must give)
KINDS = {
    "garbage-bytes": (dict(value=b"\x00\xff\xfe garbage \x9c"), "bad-json"),
    "empty-value": (dict(value=b""), "bad-json"),
    "missing-headers": (dict(value=b"{}", headers=[]), "missing-header"),
    "missing-ce-id": (dict(drop="ce_id"), "missing-header"),
    "wrong-schema": (dict(data={"order_id": "not-a-uuid", "sku": 5}), "schema"),
    "unknown-version": (dict(version="v9"), "unknown-type"),
    "unknown-type": (dict(event_type="conveyor.evil.thing.v1"), "unknown-type"),
    "900kb": (dict(value=b'{"order_id": "' + b"x" * 900_000 + b'"}'), "schema"),
    "nan": (dict(value=b'{"order_id": NaN, "available": NaN}'), "bad-json"),
    "huge-number": (dict(value=b'{"available": 1' + b"0" * 400 + b"}"), "bad-json"),
    "deep-nesting": (dict(value=b'{"a":' * 5000 + b"1" + b"}" * 5000), "bad-json"),
}


def _poison(topic: str, kind: str) -> None:
    event_type, _ = TOPICS[topic]
    spec, _ = KINDS[kind]
    subject = str(uuid.uuid4())
    event_type = spec.get("event_type", event_type)
    if "version" in spec:
        event_type = event_type.rsplit(".", 1)[0] + "." + spec["version"]
    headers = [
        ("ce_specversion", b"1.0"),
        ("ce_id", str(uuid.uuid4()).encode()),
        ("ce_source", b"/conveyor/attacker"),
        ("ce_type", event_type.encode()),
        ("ce_time", b"2026-11-25T10:00:00Z"),
        ("ce_subject", subject.encode()),
        ("ce_correlationid", subject.encode()),
        ("content-type", b"application/json"),
    ]
    headers = [(k, v) for k, v in headers if k != spec.get("drop")]
    value = spec.get("value", strict_json.dumps(spec.get("data", {"order_id": subject})))
    send_raw(topic, value, spec.get("headers", headers), key=kind.encode())


def test_poison_in_every_topic_is_dead_lettered_by_every_group_and_the_next_order_goes_through(stack):
    start = seed({"BAD-1": 100})
    for service in ("shop", "inventory", "shipping", "dashboard"):
        stack.consumer(service)
    stack.celery()
    joined(stack, "shop", "inventory", "shipping", "dashboard")
    for topic in TOPICS:
        for kind in KINDS:
            _poison(topic, kind)
    order = buy({"BAD-1": 2})
    wait_terminal([order], 120, sweep=lambda: sweep(stack))
    result = settled([order], start)
    assert result.by_status == {"delivered": 1} and not result.problems, result

    summary = {}
    for topic, (_, groups) in TOPICS.items():
        expected = {(kind, group) for kind in KINDS for group in groups}
        records = read_topic(schemas.topic_name(topic) + ".dlt", len(expected), timeout=60)
        got = Counter()
        for record in records:
            headers = {k: v.decode(errors="replace") for k, v in record.headers}
            kind = record.key.decode()
            got[(kind, headers["dlt_group"].removeprefix(settings.KAFKA_TOPIC_PREFIX))] += 1
            assert headers["dlt_reason"] == KINDS[kind][1], (topic, kind, headers["dlt_reason"], headers["dlt_error"])
            assert headers["dlt_topic"] == schemas.topic_name(topic)
            assert headers["dlt_offset"].isdigit() and headers["dlt_error"]
            if kind == "900kb":
                assert len(record.value) > 900_000  # the dead letter keeps the original bytes
        assert set(got) == expected, (topic, sorted(set(got) ^ expected))
        assert max(got.values()) == 1, f"{topic}: dead-lettered twice: {got.most_common(3)}"
        summary[topic] = len(records)
    alive = {name: p.poll() is None for name, p in stack.processes.items()}
    assert all(alive.values()), alive
    print(f"\ndead letters per topic: {summary} ({sum(summary.values())} in all); processes alive: {alive}")
