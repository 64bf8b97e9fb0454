"""The courier's steps: the shipments made ready by one consumer batch travel together, one Celery task per
step for the lot; a shipment that is no longer where a step expects it is left alone; a batch that fails
goes on one shipment at a time, so a shipment that keeps failing holds up no other. With a step delay of 0
the steps run at once after the commit, without Celery, every step of a lot in one transaction; a lot that
fails there goes to Celery, and to the sweep when Celery cannot take it either."""

import logging
import uuid
from datetime import timedelta

import pytest
from celery.signals import task_prerun

from config.celery import app as celery_app
from shipping import services
from shipping.models import OutboxMessage, Shipment

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "shipping"])
S = Shipment.Status


@pytest.fixture
def tasks_run(settings):
    """Courier steps go to Celery (a step delay above 0), whose tasks run inline, as they commit; yields
    the names of the tasks that ran, in order."""
    settings.SHIPPING_STEP_SECONDS = 1
    yield from _tasks_run()


@pytest.fixture
def no_delay_tasks_run(settings):
    """A step delay of 0 (the steps run at once); yields the names of the Celery tasks that ran, in order."""
    settings.SHIPPING_STEP_SECONDS = 0
    yield from _tasks_run()


def _tasks_run():
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


def test_a_step_moves_only_the_shipments_still_where_it_expects_them(courier):
    ready, cancelled, packed = (str(uuid.uuid4()) for _ in range(3))
    for order_id, status in ((ready, S.READY), (cancelled, S.CANCELLED), (packed, S.PACKED)):
        Shipment.objects.using("shipping").create(order_id=order_id, status=status, name="A", address="B")
    moved = services.advance_shipments(
        [(ready, S.READY), (cancelled, S.READY), (packed, S.READY), (str(uuid.uuid4()), S.READY)]
    )
    assert moved == {ready: S.PACKED}
    assert statuses([ready, cancelled, packed]) == [S.PACKED, S.CANCELLED, S.PACKED]
    assert published(ready) == ["packed"] and published(cancelled) == published(packed) == []
    assert courier.scheduled == [(ready, S.PACKED)]  # the next step of the one that moved
    assert services.advance_shipments([(ready, S.READY)]) == {}  # a duplicate step does nothing
    assert published(ready) == ["packed"]


def test_a_failing_batch_goes_on_one_shipment_at_a_time(tasks_run, monkeypatch):
    facts = ready_facts(3)
    poison = facts[1].order_id
    real = services.advance_shipments

    def advance_unless_poisoned(steps, **options):
        if any(order_id == poison for order_id, _ in steps):
            raise RuntimeError("this shipment cannot move")
        return real(steps, **options)

    monkeypatch.setattr(services, "advance_shipments", advance_unless_poisoned)
    services.note_saga_facts(facts)
    healthy = [facts[0].order_id, facts[2].order_id]
    assert statuses(healthy) == [S.DELIVERED] * 2
    assert statuses([poison]) == [S.READY]  # retried on its own, then left for the sweep
    assert tasks_run[:2] == ["shipping.advance_many", "shipping.advance"]
    assert "shipping.advance_many" in tasks_run[2:]  # the healthy ones travel on as batches again


def test_with_no_delay_the_steps_run_at_once_without_celery(no_delay_tasks_run, monkeypatch):
    real, lots = services.advance_shipments, []

    def advance(steps, **options):
        lots.append(sorted(order_id for order_id, _ in steps))
        return real(steps, **options)

    monkeypatch.setattr(services, "advance_shipments", advance)
    facts = ready_facts(3)
    services.note_saga_facts(facts)  # commits, then the steps follow in a transaction of their own
    order_ids = [f.order_id for f in facts]
    assert statuses(order_ids) == [S.DELIVERED] * 3
    assert no_delay_tasks_run == []
    assert lots == [sorted(order_ids)]  # one transaction took every step of the lot
    for order_id in order_ids:
        assert published(order_id) == ["packed", "dispatched", "delivered"]
        rows = OutboxMessage.objects.using("shipping").filter(key=order_id).order_by("position")
        ids = [row.headers["ce_id"] for row in rows]
        assert [row.headers.get("ce_causationid") for row in rows][1:] == ids[:-1]  # each caused by the last


def test_with_no_delay_a_step_that_fails_goes_to_celery(no_delay_tasks_run, monkeypatch):
    facts = ready_facts(2)
    real, failures = services.advance_shipments, []

    def fail_once(steps, **options):
        if not failures:
            failures.append(steps)
            raise RuntimeError("the database went away for a moment")
        return real(steps, **options)

    monkeypatch.setattr(services, "advance_shipments", fail_once)
    services.note_saga_facts(facts)
    order_ids = [f.order_id for f in facts]
    assert sorted(o for o, _ in failures[0]) == sorted(order_ids)  # the first step was tried inline
    assert statuses(order_ids) == [S.DELIVERED] * 2
    assert no_delay_tasks_run == ["shipping.advance_many"]  # the failed step went to Celery; the rest inline
    for order_id in order_ids:
        assert published(order_id) == ["packed", "dispatched", "delivered"]


def test_with_no_delay_a_step_that_neither_inline_nor_celery_takes_is_left_to_the_sweep(
    no_delay_tasks_run, monkeypatch, caplog
):
    from shipping import tasks

    facts = ready_facts(2)

    def broken(steps, **options):
        raise RuntimeError("the database went away")

    def redis_away(*args, **kwargs):
        raise ConnectionError("Redis is down")

    monkeypatch.setattr(services, "advance_shipments", broken)
    monkeypatch.setattr(tasks.advance_many, "apply_async", redis_away)
    with caplog.at_level(logging.WARNING, logger="shipping"):
        services.note_saga_facts(facts)
    order_ids = [f.order_id for f in facts]
    assert statuses(order_ids) == [S.READY] * 2  # nothing moved, nothing lost: the shipments wait, ready
    assert "the sweep will retry" in caplog.text
    monkeypatch.undo()  # Redis and the database are back
    assert services.reschedule_stalled(timedelta(0)) == 2
    assert statuses(order_ids) == [S.DELIVERED] * 2
    for order_id in order_ids:
        assert published(order_id) == ["packed", "dispatched", "delivered"]
