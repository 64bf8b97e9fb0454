"""The read model: stages derived from events in any order, idempotency, tail, counters, journey."""

import dataclasses

import pytest
from django.db.models import Count

from dashboard import handlers, read_model
from dashboard.models import STAGES, EventLog, OrderCard, StageCount, TypeCounter
from dashboard.stages import should_move, stage_for
from eventbus.dispatch import Dispatcher
from eventbus.service import service

from .factories import T0, event, new_order_id, record

pytestmark = pytest.mark.django_db(databases=["default", "dashboard"])


def handle(*records):
    return Dispatcher(service("dashboard")).handle(list(records))


def card(order_id) -> OrderCard:
    return OrderCard.objects.using("dashboard").get(order_id=order_id)


def test_a_card_follows_the_main_path_and_records_each_event():
    order = new_order_id()
    for i, stage in enumerate(["placed", "reserved", "packed", "dispatched"]):
        handle(record(stage, order, seconds=i))
        assert card(order).stage == stage
    handle(record("delivered", order, seconds=9))
    c = card(order)
    assert c.stage == "delivered"
    assert c.placed_at == T0
    assert (c.total, c.items, c.events) == ("25.00", 2, 5)
    assert c.stage_since == T0.replace(second=9)
    rows = list(EventLog.objects.using("dashboard").order_by("seq"))
    assert [r.event_type.split(".")[3] for r in rows] == ["placed", "reserved", "packed", "dispatched", "delivered"]
    assert rows[-1].seq == c.last_seq
    assert rows[0].source == "/conveyor/shop" and rows[0].order_id == order and rows[0].partition == 0
    assert '"total": "25.00"' in rows[0].payload and rows[0].headers["ce_type"] == "conveyor.shop.order.placed.v1"


def test_out_of_order_events_never_move_a_card_back():
    order = new_order_id()
    handle(record("packed", order, seconds=3))
    assert card(order).stage == "packed"
    handle(record("reserved", order, seconds=1), record("placed", order, seconds=0))
    c = card(order)
    assert c.stage == "packed"
    assert c.placed_at == T0  # the late placed event still fills in what it knows
    assert c.events == 3


def test_exits_are_final_and_win_over_the_main_path():
    rejected, cancelled = new_order_id(), new_order_id()
    handle(record("placed", rejected), record("rejected", rejected, seconds=1), record("reserved", rejected, seconds=2))
    assert card(rejected).stage == "rejected"
    handle(
        record("reserved", cancelled), record("cancelled", cancelled, seconds=1), record("packed", cancelled, seconds=2)
    )
    assert card(cancelled).stage == "cancelled"


def test_a_redelivered_record_changes_nothing_but_a_new_record_of_the_same_event_is_logged():
    order = new_order_id()
    placed = record("placed", order)
    handle(placed)
    handle(placed)  # the same record again (a consumer crashed before committing its offset)
    assert EventLog.objects.using("dashboard").count() == 1
    assert card(order).events == 1
    assert TypeCounter.objects.using("dashboard").get(event_type="conveyor.shop.order.placed.v1").count == 1
    # the same event again at another offset (a replay): shown in the tail, the card stays where it is
    handle(record("reserved", order, seconds=1))
    handler_event = event("placed", order, offset=placed.offset + 5000)
    handlers.record_events([handler_event])
    assert EventLog.objects.using("dashboard").count() == 3
    assert card(order).stage == "reserved"


def test_stock_levels_reach_the_tail_but_make_no_card():
    from eventbus import envelope, schemas
    from eventbus.dispatch import Record

    msg = envelope.encode(
        event_type="conveyor.inventory.stock.changed.v1",
        source_app="inventory",
        subject="MUG-001",
        data={"sku": "MUG-001", "on_hand": 5, "reserved": 1, "available": 4},
    )
    handle(
        Record(
            schemas.topic_name(msg.topic), 0, 1, msg.key, msg.value, [(k, v.encode()) for k, v in msg.headers.items()]
        )
    )
    assert EventLog.objects.using("dashboard").get().event_type == "conveyor.inventory.stock.changed.v1"
    assert not OrderCard.objects.using("dashboard").exists()


def test_stage_rules():
    assert stage_for("conveyor.shipping.shipment.packed.v1") == "packed"
    assert stage_for("conveyor.shipping.shipment.packed.v2") == "packed"  # a later version moves it too
    assert stage_for("conveyor.inventory.stock.changed.v1") is None
    assert should_move(None, "reserved")
    assert should_move("placed", "dispatched")
    assert not should_move("dispatched", "packed")
    assert not should_move("delivered", "cancelled")
    assert should_move("reserved", "cancelled")
    assert not should_move("cancelled", "delivered")


def test_catch_up_returns_what_was_missed_and_a_snapshot_when_too_far_behind(monkeypatch):
    first, second = new_order_id(), new_order_id()
    handle(record("placed", first))
    since = read_model.max_seq()
    handle(record("placed", second, seconds=1), record("reserved", first, seconds=2))
    answer = read_model.catch_up(since)
    assert answer["kind"] == "catchup"
    assert [e["seq"] for e in answer["events"]] == [since + 1, since + 2]
    assert {c["id"]: c["stage"] for c in answer["cards"]} == {first: "reserved", second: "placed"}
    assert answer["to_seq"] == since + 2
    assert answer["stage_counts"]["placed"] == 1 and answer["stage_counts"]["reserved"] == 1
    assert set(answer["stage_counts"]) == set(STAGES)
    monkeypatch.setattr(read_model, "CATCHUP_LIMIT", 1)
    snapshot = read_model.catch_up(since)
    assert snapshot["kind"] == "snapshot"
    assert len(snapshot["events"]) == 3 and len(snapshot["cards"]) == 2
    assert read_model.catch_up(None)["kind"] == "snapshot"


def test_journey_lists_every_event_of_one_order_with_causation():
    order, other = new_order_id(), new_order_id()
    placed = event("placed", order)
    handlers.record_events([placed])
    handlers.record_events([event("placed", other)])
    handlers.record_events([event("reserved", order, seconds=2, causation_id=placed.id)])
    journey = read_model.journey(order)
    assert [e["type"] for e in journey["events"]] == [
        "conveyor.shop.order.placed.v1",
        "conveyor.inventory.stock.reserved.v1",
    ]
    assert journey["events"][1]["cause"] == placed.id == journey["events"][0]["id"]
    assert journey["order"]["stage"] == "reserved"


def _read_model() -> tuple:
    cards = sorted(
        (c.order_id, c.stage, c.stage_since, c.placed_at, c.total, c.items, c.events)
        for c in OrderCard.objects.using("dashboard").all()
    )
    counters = sorted(TypeCounter.objects.using("dashboard").values_list("event_type", "count", "dead_letters"))
    log = list(EventLog.objects.using("dashboard").order_by("seq").values_list("topic", "offset", "event_type"))
    return cards, counters, log, read_model.stage_counts()


def counted_cards() -> dict[str, int]:
    """The stage counts the slow way: a GROUP BY over every card."""
    rows = OrderCard.objects.using("dashboard").values_list("stage").annotate(n=Count("order_id"))
    return dict.fromkeys(STAGES, 0) | dict(rows)


def test_a_batch_builds_the_same_read_model_as_one_event_at_a_time():
    orders = [new_order_id() for _ in range(3)]
    stages = ["packed", "placed", "reserved", "rejected", "placed", "delivered", "dispatched", "cancelled"]
    records = [record(stage, orders[i % 3], seconds=i) for i, stage in enumerate(stages)]
    records.append(records[2])  # a redelivered record inside the batch
    handle(*records)
    batched = _read_model()
    for model in (EventLog, OrderCard, TypeCounter, StageCount):
        model.objects.using("dashboard").all().delete()
    for one in records:
        handlers.record_events([Dispatcher(service("dashboard")).decode(one)])
    assert _read_model() == batched
    assert len(batched[2]) == len(stages)


def test_the_stage_counts_follow_the_cards_as_they_move():
    orders = [new_order_id() for _ in range(4)]
    handle(*(record("placed", o) for o in orders))
    assert read_model.stage_counts() == counted_cards() == dict.fromkeys(STAGES, 0) | {"placed": 4}
    handle(
        record("reserved", orders[0], seconds=1),
        record("packed", orders[0], seconds=2),
        record("rejected", orders[1], seconds=1),
        record("placed", orders[2]),  # redelivered: moves nothing
        record("reserved", orders[3], seconds=1),
        record("cancelled", orders[3], seconds=2),
        record("placed", orders[3]),  # late: never moves a card back
    )
    handle(record("dispatched", new_order_id(), seconds=5))  # an order first seen mid-way
    expected = dict.fromkeys(STAGES, 0) | {"placed": 1, "packed": 1, "rejected": 1, "cancelled": 1, "dispatched": 1}
    assert read_model.stage_counts() == counted_cards() == expected


def test_a_snapshot_shows_the_newest_active_cards_across_stages_then_the_newest_of_each_exit(monkeypatch):
    monkeypatch.setattr(read_model, "SNAPSHOT_ACTIVE_CARDS", 3)
    monkeypatch.setattr(read_model, "SNAPSHOT_DONE_CARDS", 2)
    layout = ["placed", "packed", "reserved", "delivered", "placed", "rejected", "delivered", "dispatched"]
    layout += ["delivered", "cancelled", "rejected", "rejected"]
    OrderCard.objects.using("dashboard").bulk_create(
        [OrderCard(order_id=f"o{seq}", stage=stage, stage_since=T0, last_seq=seq) for seq, stage in enumerate(layout)]
    )
    shown = [(c["id"], c["stage"]) for c in read_model.catch_up(None)["cards"]]
    assert shown == [
        ("o7", "dispatched"),  # the three newest of the active stages, newest first
        ("o4", "placed"),
        ("o2", "reserved"),
        ("o9", "cancelled"),  # then each exit: its newest cards, at most two
        ("o8", "delivered"),
        ("o6", "delivered"),
        ("o11", "rejected"),
        ("o10", "rejected"),
    ]


def test_a_replayed_event_is_logged_again_but_counted_once():
    order = new_order_id()
    placed = record("placed", order)
    handle(placed)
    for n in (1, 2):  # a dead letter replayed twice: the same ce_id on new records
        handle(dataclasses.replace(placed, offset=placed.offset + 1000 * n))
    assert EventLog.objects.using("dashboard").filter(event_id=dict(placed.headers)["ce_id"].decode()).count() == 3
    assert TypeCounter.objects.using("dashboard").get(event_type="conveyor.shop.order.placed.v1").count == 1
    assert card(order).events == 1


def test_events_that_contradict_the_saga_flag_the_order_and_a_healthy_one_stays_clean():
    bad, good = new_order_id(), new_order_id()
    handle(record("placed", bad), record("reserved", bad, seconds=1), record("cancelled", bad, seconds=2))
    assert card(bad).violation == ""
    handle(record("dispatched", bad, seconds=3))  # a cancel confirmed, then a dispatch
    assert card(bad).violation == "shipping confirmed the cancel, yet the order was dispatched"
    for i, stage in enumerate(["placed", "reserved", "packed", "dispatched", "delivered"]):
        handle(record(stage, good, seconds=i))
    assert card(good).violation == ""
    snapshot = read_model.catch_up(None)
    flagged = [c for c in snapshot["cards"] if c["violation"]]
    assert [c["id"] for c in flagged] == [bad]
