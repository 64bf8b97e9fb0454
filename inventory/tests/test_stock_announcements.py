"""A consumer's stock changes are announced at most every STOCK_ANNOUNCE_SECONDS, with the latest figures,
and a SKU changed but not yet announced is marked in the database, so that no announcement is lost."""

import uuid

import pytest

from eventbus.unit_of_work import unit_of_work
from inventory import services
from inventory.models import OutboxMessage, StockItem

pytestmark = pytest.mark.django_db(databases=["default", "inventory"])
CHANGED = "conveyor.inventory.stock.changed.v1"


def announced() -> list[tuple[str, bytes]]:
    rows = OutboxMessage.objects.using("inventory").filter(event_type=CHANGED).order_by("position")
    return [(row.key, bytes(row.value)) for row in rows]


def consumer_batch(*orders) -> None:
    """What the dispatcher does around a batch: a unit of work whose before-commit actions announce."""
    with unit_of_work("inventory"):
        services.reserve_stock([(str(uuid.uuid4()), lines, None) for lines in orders])


@pytest.fixture
def stock(monkeypatch):
    services.set_stock("MUG", 10)
    services.set_stock("CAP", 10)
    OutboxMessage.objects.using("inventory").all().delete()
    monkeypatch.setattr(services, "announcer", services._StockAnnouncer())
    services.announcer.maybe_marked = False


def test_batches_within_the_interval_are_announced_once_with_the_latest_figures(stock, monkeypatch):
    consumer_batch([{"sku": "MUG", "quantity": 1}])  # due: announced at once
    assert [key for key, _ in announced()] == ["MUG"]

    monkeypatch.setattr(services, "STOCK_ANNOUNCE_SECONDS", 3600)  # the next ones are not due
    consumer_batch([{"sku": "MUG", "quantity": 2}])
    consumer_batch([{"sku": "MUG", "quantity": 3}, {"sku": "CAP", "quantity": 1}])
    assert len(announced()) == 1
    assert sorted(StockItem.objects.using("inventory").filter(announce_pending=True).values_list("sku", flat=True)) == [
        "CAP",
        "MUG",
    ]

    monkeypatch.setattr(services, "STOCK_ANNOUNCE_SECONDS", 0)
    services.announce_pending_stock()  # the consumer's idle moment
    later = announced()[1:]
    assert [key for key, _ in later] == ["CAP", "MUG"]
    assert b'"reserved":6' in later[1][1].replace(b" ", b"")  # 1 + 2 + 3: the latest figures only
    assert not StockItem.objects.using("inventory").filter(announce_pending=True).exists()


def test_marks_left_by_a_stopped_consumer_are_announced_by_the_next(stock, monkeypatch):
    StockItem.objects.using("inventory").filter(sku="CAP").update(announce_pending=True, reserved=4)
    services.announcer.maybe_marked = True  # as at start-up

    services.announce_pending_stock()

    assert [key for key, _ in announced()] == ["CAP"]
    assert not StockItem.objects.using("inventory").filter(announce_pending=True).exists()


def test_changes_outside_a_consumer_batch_are_announced_at_once(stock, monkeypatch):
    monkeypatch.setattr(services, "STOCK_ANNOUNCE_SECONDS", 3600)
    services.restock("MUG", 5)
    assert [key for key, _ in announced()] == ["MUG"]
