import uuid
from datetime import datetime, timedelta

import pytest
from django.utils import timezone

from eventbus.rows import (
    add_to_rows,
    insert_rows,
    locked_rows,
    oldest_unset,
    present_keys,
    present_values,
    set_on_rows,
    update_rows,
)
from shop.models import Order, Product

DB = "shop"


def _order(email: str) -> Order:
    return Order.objects.using(DB).create(email=email, name="Ada", address="1 Loop Rd", total="12.00")


@pytest.mark.django_db(databases=[DB])
def test_update_rows_writes_the_named_fields_of_each_row_and_nothing_else():
    first, second, untouched = _order("a@example.com"), _order("b@example.com"), _order("c@example.com")
    created_at = first.created_at
    stale = timezone.now() - timedelta(hours=1)
    Order.objects.using(DB).filter(pk=first.pk).update(updated_at=stale)
    first.status, first.rejection = "rejected", [{"sku": "MUG-001", "reason": "insufficient-stock"}]
    second.status = "reserved"
    first.email = "changed-but-not-named@example.com"

    update_rows([first, second], ["status", "rejection", "updated_at"], using=DB)

    rows = {o.pk: o for o in Order.objects.using(DB).all()}
    assert rows[first.pk].status == "rejected"
    assert rows[first.pk].rejection == [{"sku": "MUG-001", "reason": "insufficient-stock"}]
    assert rows[first.pk].email == "a@example.com"
    assert rows[first.pk].created_at == created_at
    assert rows[first.pk].updated_at > stale  # auto_now, as save() does
    assert rows[second.pk].status == "reserved"
    assert rows[untouched.pk].status == untouched.status


@pytest.mark.django_db(databases=[DB])
def test_update_rows_of_nothing_writes_nothing():
    update_rows([], ["status"], using=DB)
    assert not Order.objects.using(DB).exists()


@pytest.mark.django_db(databases=["inventory"])
def test_insert_rows_applies_defaults_and_present_values_finds_them_by_group():
    from inventory.models import InboxMessage

    mine, theirs, unknown = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    insert_rows(
        [
            InboxMessage(event_id=mine, group="inventory", event_type="t"),
            InboxMessage(event_id=theirs, group="another", event_type="t"),
        ],
        using="inventory",
    )

    stored = InboxMessage.objects.using("inventory").get(event_id=mine)
    assert stored.handled_at is not None  # auto_now_add, as in save()
    candidates = [str(mine), str(theirs), str(unknown)]
    assert present_values(InboxMessage, "event_id", candidates, using="inventory", group="inventory") == {str(mine)}
    assert present_values(InboxMessage, "event_id", [], using="inventory", group="inventory") == set()


@pytest.mark.django_db(databases=[DB])
def test_add_to_rows_adds_to_each_row_and_names_the_keys_without_one():
    mug, cap, hat = (Product.objects.using(DB).create(sku=s, name=s, price="1.00", available=10) for s in "MCH")
    missing = add_to_rows(Product, "available", {mug.pk: 5, cap.pk: -3, hat.pk: 0, 999_999: 1}, using=DB)
    assert missing == [999_999]
    rows = dict(Product.objects.using(DB).values_list("sku", "available"))
    assert rows == {"M": 15, "C": 7, "H": 10}


@pytest.mark.django_db(databases=["dashboard"])
def test_present_keys_finds_stored_keys_across_groups_and_nothing_more():
    from dashboard.models import EventLog

    stored = [("shop.orders", 0, 7), ("shop.orders", 0, 9), ("shop.orders", 3, 7), ("inventory.stock", 0, 7)]
    EventLog.objects.using("dashboard").bulk_create([EventLog(topic=t, partition=p, offset=o) for t, p, o in stored])
    asked = [
        ("shop.orders", 0, 7),
        ("shop.orders", 0, 8),  # same group, offset not stored
        ("shop.orders", 3, 7),
        ("shop.orders", 1, 7),  # offset stored, but in another partition
        ("inventory.stock", 0, 7),
        ("inventory.stock", 0, 9),  # stored under another topic only
        ("shipping.shipments", -1, -1),
    ]
    found = present_keys(EventLog, ("topic", "partition", "offset"), asked, using="dashboard")
    assert found == {("shop.orders", 0, 7), ("shop.orders", 3, 7), ("inventory.stock", 0, 7)}
    assert present_keys(EventLog, ("topic", "partition", "offset"), [], using="dashboard") == set()


@pytest.mark.django_db(databases=["inventory"])
def test_add_to_rows_at_most_leaves_a_row_that_would_pass_its_ceiling_and_names_it():
    from inventory.models import StockItem

    StockItem.objects.using("inventory").bulk_create(
        [StockItem(sku="MUG", on_hand=10, reserved=4), StockItem(sku="CAP", on_hand=5, reserved=5)]
    )
    refused = add_to_rows(StockItem, "reserved", {"MUG": 6, "CAP": 1, "HAT": 1}, using="inventory", at_most="on_hand")
    assert refused == ["CAP", "HAT"]  # CAP would pass on_hand; HAT has no row
    assert dict(StockItem.objects.using("inventory").values_list("sku", "reserved")) == {"MUG": 10, "CAP": 5}


@pytest.mark.django_db(databases=[DB, "shipping"])
def test_locked_rows_loads_what_the_orm_loads_in_key_order():
    from shipping.models import Shipment

    first, second = _order("a@example.com"), _order("b@example.com")
    first.rejection = [{"sku": "MUG-001", "reason": "insufficient-stock"}]
    first.save(using=DB)
    keys = [str(second.pk), str(first.pk), str(uuid.uuid4())]  # as strings, one without a row

    loaded = locked_rows(Order, keys, using=DB)

    expected = list(Order.objects.using(DB).filter(pk__in=keys).order_by("pk"))
    assert [o.pk for o in loaded] == [o.pk for o in expected] and len(loaded) == 2
    fields = [f.attname for f in Order._meta.concrete_fields]
    for mine, theirs in zip(loaded, expected, strict=True):
        assert [getattr(mine, f) for f in fields] == [getattr(theirs, f) for f in fields]
        assert not mine._state.adding and mine._state.db == DB
    assert isinstance(loaded[0].pk, uuid.UUID) and isinstance(loaded[0].created_at, datetime)
    shipment = Shipment.objects.using("shipping").create(order_id=first.pk, address_known=True)
    (again,) = locked_rows(Shipment, [first.pk], using="shipping")
    assert again.address_known is True and again.stock_reserved is False
    assert again.shipment_id == shipment.shipment_id
    assert locked_rows(Order, [], using=DB) == []


@pytest.mark.django_db(databases=["inventory"])
def test_oldest_unset_reads_unsent_outbox_rows_in_order_and_set_on_rows_marks_them():
    from inventory.models import OutboxMessage

    def row(n: int) -> OutboxMessage:
        return OutboxMessage(
            event_id=uuid.uuid4(),
            event_type="t",
            topic="inventory.stock",
            key=f"k{n}",
            headers={"n": str(n)},
            value=b"v",
        )

    OutboxMessage.objects.using("inventory").bulk_create([row(n) for n in range(4)])
    first, *rest = OutboxMessage.objects.using("inventory").order_by("position")
    set_on_rows(OutboxMessage, "sent_at", timezone.now(), [first.position], using="inventory")

    fields = ("position", "key", "headers", "value")
    pending = oldest_unset(OutboxMessage, fields, unset="sent_at", limit=2, using="inventory")

    assert [(p, k, h) for p, k, h, _ in pending] == [(r.position, r.key, r.headers) for r in rest[:2]]
    assert all(bytes(v) == b"v" for *_, v in pending) and pending[0][2] == {"n": "1"}
    set_on_rows(OutboxMessage, "sent_at", timezone.now(), [p for p, *_ in pending], using="inventory")
    assert [k for _, k, *_ in oldest_unset(OutboxMessage, fields, unset="sent_at", limit=9, using="inventory")] == [
        "k3"
    ]


@pytest.mark.django_db(databases=["dashboard"])
def test_insert_rows_with_learn_pks_gives_each_object_its_auto_increment_key_in_order():
    from dashboard.models import EventLog

    EventLog.objects.using("dashboard").create(topic="t", partition=0, offset=0)  # keys do not start at 1
    entries = [EventLog(topic="t", partition=0, offset=n, headers={"n": n}) for n in range(1, 1200)]  # > 1 chunk

    insert_rows(entries, using="dashboard", learn_pks=True)

    stored = dict(EventLog.objects.using("dashboard").filter(offset__gte=1).values_list("seq", "offset"))
    assert {e.seq: e.offset for e in entries} == stored and len(stored) == 1199
    assert all(not e._state.adding and e._state.db == "dashboard" for e in entries)
    assert [e.seq for e in entries] == sorted(e.seq for e in entries)
