"""The dispatcher's batch handlers: one call per run of new events, the same per-event guarantees when
one fails (only the bad event is dead-lettered), order kept around events without a batch handler."""

import uuid

import pytest
from django.db import OperationalError
from django.db import connections as _connections

from eventbus import envelope, schemas
from eventbus.dispatch import Dispatcher, Record
from eventbus.service import Service
from inventory.models import InboxMessage, OutboxMessage, RelayLease, StockItem

pytestmark = pytest.mark.django_db(databases=["default", "inventory"])
connection = _connections["inventory"]
CHANGED = "conveyor.inventory.stock.changed.v1"
RELEASED = "conveyor.inventory.stock.released.v1"


def record(offset: int, event_type: str = CHANGED, sku: str = "MUG", event_id: str | None = None) -> Record:
    if event_type == CHANGED:
        data, subject = {"sku": sku, "on_hand": 5, "reserved": 0, "available": 5}, sku
    else:
        subject = str(uuid.uuid4())
        data = {"order_id": subject, "lines": [{"sku": sku, "quantity": 1}], "reason": "cancelled"}
    message = envelope.encode(
        event_type=event_type, source_app="inventory", subject=subject, data=data, event_id=event_id
    )
    headers = [(k, v.encode()) for k, v in message.headers.items()]
    return Record(schemas.topic_name(message.topic), 0, offset, message.key, message.value, headers)


class Calls:
    """Two handlers that log each call's events: `changed` for one type, `released` for another."""

    def __init__(self, fail_on: str | None = None):
        self.log: list[tuple[str, list[str]]] = []
        self.fail_on = fail_on

    def changed(self, events):
        self._take("changed", events)

    def released(self, events):
        self._take("released", events)

    def _take(self, name, events):
        if any(e.subject == self.fail_on for e in events):
            raise ValueError(f"cannot take {self.fail_on}")
        self.log.append((name, [e.subject for e in events]))


def inventory_service(handlers: dict) -> Service:
    """A service on inventory's tables with the given handlers, in a consumer group of its own."""
    return Service(
        name="inventory",
        database="inventory",
        outbox=OutboxMessage,
        inbox=InboxMessage,
        lease=RelayLease,
        group_name="test." + uuid.uuid4().hex[:8],
        handlers=handlers,
    )


def service(calls: Calls) -> Service:
    return inventory_service({CHANGED: calls.changed, RELEASED: calls.released})


def test_a_run_of_events_goes_to_its_handler_in_one_call_and_fills_the_inbox():
    calls = Calls()
    svc = service(calls)
    result = Dispatcher(svc).handle([record(i, sku=f"S{i}") for i in range(3)])
    assert calls.log == [("changed", ["S0", "S1", "S2"])]
    assert (result.handled, result.dead) == (3, [])
    assert InboxMessage.objects.using("inventory").filter(group=svc.group).count() == 3


def test_a_failing_run_falls_back_to_one_by_one_and_dead_letters_only_the_bad_event():
    calls = Calls(fail_on="S1")
    result = Dispatcher(service(calls)).handle([record(i, sku=f"S{i}") for i in range(3)])
    assert calls.log == [("changed", ["S0"]), ("changed", ["S2"])]
    assert result.handled == 2
    assert [(d.record.offset, d.reason) for d in result.dead] == [(1, "handler-error")]


def test_an_event_of_another_handler_splits_the_runs_and_keeps_its_place():
    calls = Calls()
    released = record(2, RELEASED)
    records = [record(0, sku="A"), record(1, sku="B"), released, record(3, sku="C")]
    Dispatcher(service(calls)).handle(records)
    order_id = records[2].key.decode()
    assert calls.log == [("changed", ["A", "B"]), ("released", [order_id]), ("changed", ["C"])]


def test_a_second_copy_in_the_batch_and_an_event_seen_before_are_skipped():
    calls = Calls()
    svc = service(calls)
    first_id = str(uuid.uuid4())
    Dispatcher(svc).handle([record(0, sku="OLD", event_id=first_id)])
    result = Dispatcher(svc).handle(
        [record(1, sku="OLD", event_id=first_id), record(2, sku="NEW"), record(3, sku="NEW", event_id=None)]
    )
    assert calls.log[-1] == ("changed", ["NEW", "NEW"])  # two events (two ids) about the same SKU
    assert result.duplicates == 1
    twice = str(uuid.uuid4())
    result = Dispatcher(svc).handle([record(4, sku="X", event_id=twice), record(5, sku="X", event_id=twice)])
    assert calls.log[-1] == ("changed", ["X"]) and result.duplicates == 1


class DatabaseRefuses:
    """Handlers that make the database itself refuse a write: what no retry can fix."""

    def one(self, events):
        [event] = events  # the refused writes fail a run, so each comes here alone
        sku = event.subject
        if sku == "CHECK":  # reserved > on_hand breaks the CHECK constraint (both databases)
            StockItem.objects.using("inventory").create(sku=f"CHK-{uuid.uuid4().hex[:6]}", on_hand=1, reserved=2)
        elif sku == "BIG":  # past a 32-bit integer column: PostgreSQL's DataError (SQLite stores it)
            StockItem.objects.using("inventory").create(sku=f"BIG-{uuid.uuid4().hex[:6]}", on_hand=2**31)
        elif sku == "NUL":  # text PostgreSQL cannot store: a DataError (SQLite stores it)
            StockItem.objects.using("inventory").create(sku=f"N\x00L-{uuid.uuid4().hex[:6]}")


def test_a_database_error_no_retry_can_fix_is_dead_lettered_not_raised():
    svc = inventory_service({CHANGED: DatabaseRefuses().one})
    records = [record(i, sku=sku) for i, sku in enumerate(["OK-1", "CHECK", "BIG", "NUL", "OK-2"])]
    result = Dispatcher(svc).handle(records)  # raised before: the consumer died and met the batch again
    dead = {d.record.key.decode(): d for d in result.dead}
    refused = {"CHECK", "BIG", "NUL"} if connection.vendor == "postgresql" else {"CHECK"}
    assert set(dead) == refused
    assert all(d.reason == "handler-error" for d in dead.values())
    assert "IntegrityError" in dead["CHECK"].error
    if connection.vendor == "postgresql":
        assert "DataError" in dead["BIG"].error and "DataError" in dead["NUL"].error
    assert result.handled == 5 - len(refused)


def test_an_outage_is_raised_for_the_batch_to_be_retried_never_dead_lettered():
    def locked(events):
        raise OperationalError("database is locked")

    svc = inventory_service({CHANGED: locked})
    with pytest.raises(OperationalError):
        Dispatcher(svc).handle([record(0)])
