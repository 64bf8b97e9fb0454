"""The courier's steps: the shipments made ready by one consumer batch travel together, one Celery task per
step for the lot; a shipment that is no longer where a step expects it is left alone; a batch that fails
goes on one shipment at a time, so a shipment that keeps failing holds up no other."""

import uuid

import pytest
from celery.signals import task_prerun

from config.celery import app as celery_app
from shipping import services
from shipping.models import OutboxMessage, Shipment

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "shipping"])
S = Shipment.Status


@pytest.fixture
def tasks_run():
    """Courier tasks run inline, as they commit; yields the names of the tasks that ran, in order."""
    names: list[str] = []

    def count(task=None, **_kwargs):
        names.append(task.name)

    task_prerun.connect(count, weak=False)
    celery_app.conf.task_always_eager = True
    yield names
    celery_app.conf.task_always_eager = False
    task_prerun.disconnect(count)


def ready_facts(count: int) -> list[services.SagaFact]:
    facts = []
    for _ in range(count):
        order_id = str(uuid.uuid4())
        facts.append(services.SagaFact(order_id, None, address=("Ada", "1 Loop"), stock_reserved=True))
    return facts


def statuses(order_ids) -> list[str]:
    return [Shipment.objects.using("shipping").get(order_id=o).status for o in order_ids]


def published(order_id: str) -> list[str]:
    rows = OutboxMessage.objects.using("shipping").filter(key=order_id).order_by("position")
    return [row.event_type.rsplit(".", 3)[-2] for row in rows]


def test_a_batch_of_ready_shipments_is_delivered_by_one_task_per_step(tasks_run):
    facts = ready_facts(5)
    services.note_saga_facts(facts)
    order_ids = [f.order_id for f in facts]
    assert statuses(order_ids) == [S.DELIVERED] * 5
    assert tasks_run == ["shipping.advance_many"] * 3  # packed, dispatched, delivered: each for all five
    for order_id in order_ids:
        assert published(order_id) == ["packed", "dispatched", "delivered"]


def test_a_step_moves_only_the_shipments_still_where_it_expects_them():
    ready, cancelled, packed = (str(uuid.uuid4()) for _ in range(3))
    for order_id, status in ((ready, S.READY), (cancelled, S.CANCELLED), (packed, S.PACKED)):
        Shipment.objects.using("shipping").create(order_id=order_id, status=status, name="A", address="B")
    moved = services.advance_shipments(
        [(ready, S.READY), (cancelled, S.READY), (packed, S.READY), (str(uuid.uuid4()), S.READY)]
    )
    assert moved == {ready: S.PACKED}
    assert statuses([ready, cancelled, packed]) == [S.PACKED, S.CANCELLED, S.PACKED]
    assert published(ready) == ["packed"] and published(cancelled) == published(packed) == []
    assert services.advance_shipments([(ready, S.READY)]) == {}  # a duplicate step does nothing
    assert published(ready) == ["packed"]


def test_a_failing_batch_goes_on_one_shipment_at_a_time(tasks_run, monkeypatch):
    facts = ready_facts(3)
    poison = facts[1].order_id
    real = services.advance_shipments

    def advance_unless_poisoned(steps):
        if any(order_id == poison for order_id, _ in steps):
            raise RuntimeError("this shipment cannot move")
        return real(steps)

    monkeypatch.setattr(services, "advance_shipments", advance_unless_poisoned)
    services.note_saga_facts(facts)
    healthy = [facts[0].order_id, facts[2].order_id]
    assert statuses(healthy) == [S.DELIVERED] * 2
    assert statuses([poison]) == [S.READY]  # retried on its own, then left for the sweep
    assert tasks_run[:2] == ["shipping.advance_many", "shipping.advance"]
    assert "shipping.advance_many" in tasks_run[2:]  # the healthy ones travel on as batches again
