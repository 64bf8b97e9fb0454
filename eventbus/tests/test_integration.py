"""The event bus against the real broker, with real consumer processes."""

import signal
import sqlite3
import uuid

import pytest
from django.db import connections

from eventbus import kafka_io, schemas, strict_json
from eventbus.service import service
from eventbus.tests.kafka_helpers import (
    placed_data,
    read_topic,
    send_cancelled,
    send_event,
    send_placed,
    send_raw,
)
from inventory import services as inventory
from inventory.models import OutboxMessage as InventoryOutbox
from inventory.models import Reservation, StockItem
from shop.models import OutboxMessage as ShopOutbox
from shop.models import Product
from shop.services import place_order
from tests.support import wait_for

pytestmark = [
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True, databases=["default", "shop", "inventory", "shipping", "dashboard"]),
]


def stock(sku):
    return StockItem.objects.using("inventory").get(sku=sku)


def reservations(**filters):
    return Reservation.objects.using("inventory").filter(**filters).count()


def test_envelope_round_trip_through_the_broker(stack):
    order_id = str(uuid.uuid4())
    sent = send_event(
        "conveyor.shop.order.placed.v1", "shop", order_id, placed_data(order_id, "RT-1"), causation_id=str(uuid.uuid4())
    )
    (record,) = read_topic(schemas.topic_name("shop.orders"), 1)
    headers = {k: v.decode() for k, v in record.headers}
    assert headers == sent.headers
    assert record.key == order_id.encode()
    for name in (
        "ce_specversion",
        "ce_id",
        "ce_source",
        "ce_type",
        "ce_time",
        "ce_subject",
        "content-type",
        "ce_correlationid",
        "ce_causationid",
    ):
        assert name in headers
    assert strict_json.loads(record.value) == placed_data(order_id, "RT-1")


def test_relay_killed_between_send_and_mark_doubles_the_message_not_the_effect(stack):
    Product.objects.using("shop").create(sku="DUP-1", name="Dup", price="1.00")
    inventory.set_stock("DUP-1", 10)
    placed = place_order(email="a@example.com", name="A", address="1 St", lines=[{"sku": "DUP-1", "quantity": 3}])
    crashing = stack.consumer("shop", "shop-crashing", EVENTBUS_CRASH_AT="relay-after-send")
    wait_for(lambda: crashing.poll() is not None, 60, "the relay to crash after sending")
    assert crashing.returncode == -signal.SIGKILL
    assert ShopOutbox.objects.using("shop").filter(sent_at__isnull=True).count() == 1  # sent, never marked
    stack.consumer("shop")
    wait_for(lambda: not ShopOutbox.objects.using("shop").filter(sent_at__isnull=True).exists(), 60, "the resend")
    records = read_topic(schemas.topic_name("shop.orders"), 2)
    ids = [dict(r.headers)["ce_id"] for r in records]
    assert len(ids) == 2 and len(set(ids)) == 1  # the same event, twice on the topic
    stack.consumer("inventory")
    wait_for(lambda: reservations(order_id=placed.order.id) == 1, 60, "the reservation")
    wait_for(lambda: "1 duplicate" in stack.log("inventory"), 30, "the inbox to skip the copy")
    assert stock("DUP-1").reserved == 3  # reserved once, not twice
    stock_reserved = InventoryOutbox.objects.using("inventory").filter(
        event_type="conveyor.inventory.stock.reserved.v1"
    )
    assert stock_reserved.count() == 1


def test_replaying_a_topic_from_offset_zero_changes_no_row(stack):
    inventory.set_stock("REPLAY-1", 100)
    order_ids = [send_placed("REPLAY-1") for _ in range(20)]
    send_cancelled(order_ids[0])
    stack.consumer("inventory")
    wait_for(lambda: reservations() == 20 and reservations(status="released") == 1, 60, "20 reservations")
    wait_for(lambda: not InventoryOutbox.objects.using("inventory").filter(sent_at__isnull=True).exists(), 30, "relay")
    assert stack.stop("inventory") == 0

    def snapshot():
        return (
            list(StockItem.objects.using("inventory").values_list("sku", "on_hand", "reserved")),
            list(Reservation.objects.using("inventory").order_by("order_id").values_list("order_id", "status")),
            InventoryOutbox.objects.using("inventory").count(),
        )

    before = snapshot()
    stack.start("inventory-replay", [*stack.argv["inventory"], "--replay"])
    wait_for(lambda: "21 duplicate" in stack.log("inventory-replay"), 60, "the replay of all 21 events")
    assert snapshot() == before


POISON = {
    "bad-json": dict(value=b"\x00\xffnot json at all"),
    "missing-header": dict(value=b"{}", headers=[]),
    "schema": dict(data={"order_id": "not-a-uuid"}),
    "unknown-type": dict(event_type="conveyor.shop.order.placed.v7"),
    "nan": dict(value=b'{"order_id": NaN}'),
    "huge-number": dict(value=b'{"order_id": 123456789012345678901234567890}'),
    "deep-nesting": dict(value=b'{"a":' * 200 + b"1" + b"}" * 200),
    "900kb": dict(value=b'{"order_id": "' + b"x" * 900_000 + b'"}'),
}


def _send_poison(kind: str) -> None:
    good_id = str(uuid.uuid4())
    good = placed_data(good_id, "POISON-1")
    spec = POISON[kind]
    headers = [
        ("ce_specversion", b"1.0"),
        ("ce_id", str(uuid.uuid4()).encode()),
        ("ce_source", b"/conveyor/shop"),
        ("ce_type", spec.get("event_type", "conveyor.shop.order.placed.v1").encode()),
        ("ce_time", b"2026-11-25T10:00:00Z"),
        ("ce_subject", good_id.encode()),
        ("ce_correlationid", good_id.encode()),
        ("content-type", b"application/json"),
    ]
    value = spec.get("value", strict_json.dumps(spec.get("data", good)))
    send_raw("shop.orders", value, spec.get("headers", headers), key=kind.encode())


def test_every_poison_kind_is_dead_lettered_with_its_reason_and_the_next_event_still_goes_through(stack):
    inventory.set_stock("POISON-1", 5)
    for kind in POISON:
        _send_poison(kind)
    good = send_placed("POISON-1")
    stack.consumer("inventory")
    wait_for(lambda: reservations(order_id=good) == 1, 60, "the good order after the poison")
    dlt = read_topic(schemas.topic_name("shop.orders") + ".dlt", len(POISON))
    by_kind = {r.key.decode(): {k: v.decode(errors="replace") for k, v in r.headers} for r in dlt}
    assert set(by_kind) == set(POISON)
    expected = {
        "bad-json": "bad-json",
        "missing-header": "missing-header",
        "schema": "schema",
        "unknown-type": "unknown-type",
        "nan": "bad-json",
        "huge-number": "bad-json",
        "deep-nesting": "bad-json",
        "900kb": "schema",
    }
    for kind, headers in by_kind.items():
        assert headers["dlt_reason"] == expected[kind], (kind, headers)
        assert headers["dlt_group"] == service("inventory").group
        assert headers["dlt_topic"] == schemas.topic_name("shop.orders")
        assert headers["dlt_offset"].isdigit() and headers["dlt_error"]
    assert stack.processes["inventory"].poll() is None  # still running


def test_sigterm_mid_batch_exits_zero_and_loses_and_doubles_nothing(stack):
    inventory.set_stock("TERM-1", 10_000)
    orders = [send_placed("TERM-1") for _ in range(1500)]
    stack.consumer("inventory")
    wait_for(lambda: reservations() >= 100, 60, "the first batches")
    stack.signal("inventory", signal.SIGTERM)
    assert stack.processes["inventory"].wait(30) == 0
    stopped_at = reservations()
    assert stopped_at < len(orders), "the consumer finished before SIGTERM; nothing was tested"
    stack.consumer("inventory", "inventory-again")
    wait_for(lambda: reservations() == len(orders), 120, "every order reserved after the restart")
    assert stock("TERM-1").reserved == len(orders)
    reserved_events = InventoryOutbox.objects.using("inventory").filter(
        event_type="conveyor.inventory.stock.reserved.v1"
    )
    assert reserved_events.count() == len(orders)


def holds_partitions(log: str) -> bool:
    """The consumer's latest rebalance left it some partitions."""
    events = [line for line in log.splitlines() if "partitions assigned: " in line or "partitions revoked: " in line]
    return bool(events) and "partitions assigned: " in events[-1] and "none (" not in events[-1]


def test_two_consumers_share_the_partitions_and_keep_per_key_order(stack):
    inventory.set_stock("ORDER-1", 1000)
    stack.consumer("inventory", "inventory-a")
    stack.consumer("inventory", "inventory-b")
    wait_for(
        lambda: holds_partitions(stack.log("inventory-a")) and holds_partitions(stack.log("inventory-b")),
        90,
        "both consumers to hold partitions",
    )
    orders = []
    for _ in range(200):
        order_id = send_placed("ORDER-1", 2)
        # Shipping's confirmation travels on another topic, so it may come first: inventory then remembers
        # the order as cancelled and its placement reserves nothing. Either way nothing stays reserved.
        send_cancelled(order_id)
        orders.append(order_id)
    wait_for(lambda: reservations(status="released") == 200, 120, "every reservation released")
    assert reservations(status="active") == 0
    assert stock("ORDER-1").reserved == 0
    handled = [stack.log(n).count("handled conveyor.shop.order.placed.v1") for n in ("inventory-a", "inventory-b")]
    assert sum(handled) >= 200 and all(h > 0 for h in handled), f"partitions were not shared: {handled}"


def test_a_transient_database_error_is_retried_not_dead_lettered(stack):
    inventory.set_stock("LOCK-1", 5)
    path = connections["inventory"].settings_dict["NAME"]
    if connections["inventory"].vendor != "sqlite":
        pytest.fail("this test locks the SQLite file; the PostgreSQL outage test lives in tests/faults")
    stack.consumer("inventory", SQLITE_BUSY_TIMEOUT="0.2")
    wait_for(lambda: "partitions assigned: " in stack.log("inventory"), 60, "the consumer to join")
    locker = sqlite3.connect(path, timeout=5, isolation_level=None)
    locker.execute("BEGIN EXCLUSIVE")
    try:
        order_id = send_placed("LOCK-1")
        wait_for(
            lambda: "database unavailable" in stack.log("inventory"), 60, "the consumer to meet the locked database"
        )
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    wait_for(lambda: reservations(order_id=order_id) == 1, 60, "the retried reservation")
    assert "dead-lettered" not in stack.log("inventory").replace("0 dead-lettered", "")


def test_a_record_too_large_for_the_dead_letter_topic_is_dead_lettered_cut_and_marked(stack):
    """A poison record close to the broker's 1 MB limit: with our dead-letter headers it is over the
    producer's request limit, so its payload is cut and the header says how long it was."""
    inventory.set_stock("LARGE-1", 5)
    value = b"{" + b"x" * (1_048_450 - 1)  # not JSON: poison, as large as the broker takes
    producer = kafka_io.make_producer("tests-large", linger_ms=0, max_request_size=2_000_000)
    try:
        producer.send(schemas.topic_name("shop.orders"), key=b"large", value=value, headers=[("ce_type", b"x")]).get(
            timeout=30
        )
    finally:
        producer.close(timeout=5)
    good = send_placed("LARGE-1")
    stack.consumer("inventory")
    wait_for(lambda: reservations(order_id=good) == 1, 60, "the good order after the large poison")
    [letter] = read_topic(schemas.topic_name("shop.orders") + ".dlt", 1)
    headers = dict(letter.headers)
    assert headers["dlt_truncated"] == str(len(value)).encode()
    assert 0 < len(letter.value) < len(value) and value.startswith(letter.value)
    assert headers["dlt_reason"] == b"missing-header"  # no CloudEvents headers
    assert stack.processes["inventory"].poll() is None  # still running
