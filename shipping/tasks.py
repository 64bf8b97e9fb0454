"""The courier's steps, each after SHIPPING_STEP_SECONDS (Celery tasks, or at once in the scheduling process
when the delay is 0), and the sweep for lost steps."""

import logging
from datetime import timedelta

from celery import shared_task
from django.conf import settings

log = logging.getLogger("shipping")


STEPS_PER_TASK = 100  # bounds one task's transaction


def schedule_steps(steps: list[tuple[str, str]]) -> None:
    """One task for many steps: a batch of shipments travels together, and Celery's cost per task (message,
    ack, transaction, relay wake-up) is paid once for the lot instead of once per shipment.

    With SHIPPING_STEP_SECONDS = 0 nothing is waited for, so the steps run here and now (the caller has
    committed: this runs after commit), each lot in a transaction of its own through the service the task
    runs, which takes every step left at once; a lot that fails goes to Celery as a task with its retries,
    and the sweep catches what Celery could not take."""
    if not settings.SHIPPING_STEP_SECONDS:
        steps = _advance_inline(steps)
    for start in range(0, len(steps), STEPS_PER_TASK):
        chunk = [list(step) for step in steps[start : start + STEPS_PER_TASK]]
        _enqueue(advance_many, (chunk,), f"{len(chunk)} shipments")


def _advance_inline(steps: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Take the steps now and the ones after them, STEPS_PER_TASK shipments to a transaction; return the
    steps of the lots that failed."""
    from .services import advance_shipments

    failed = []
    for start in range(0, len(steps), STEPS_PER_TASK):
        chunk = [(str(order_id), status) for order_id, status in steps[start : start + STEPS_PER_TASK]]
        try:
            advance_shipments(chunk, to_the_end=True)
        except Exception:
            log.warning("%d courier steps failed inline; they go to Celery instead", len(chunk), exc_info=True)
            failed += chunk
    return failed


def schedule_step(order_id: str, status: str) -> None:
    _enqueue(advance, (order_id, status), f"order {order_id}")


def _enqueue(task, args: tuple, what: str) -> None:
    try:
        task.apply_async(args, countdown=settings.SHIPPING_STEP_SECONDS or None)
    except Exception as exc:  # Redis away: the sweep reschedules it later
        log.warning("could not schedule the next step of %s (%s); the sweep will retry", what, exc)


@shared_task(name="shipping.advance_many", acks_late=True)
def advance_many(steps: list[list[str]]) -> int:
    """The courier steps of a batch, in one transaction. If the batch fails, each step goes on as a task of its
    own with its own retries, so one shipment that keeps failing holds up no other."""
    from .services import advance_shipments

    try:
        return len(advance_shipments([(order_id, status) for order_id, status in steps]))
    except Exception:
        log.warning("%d courier steps failed together; each goes on alone", len(steps), exc_info=True)
        for order_id, status in steps:
            schedule_step(order_id, status)
        return 0


@shared_task(name="shipping.advance", acks_late=True, autoretry_for=(Exception,), retry_backoff=True, max_retries=10)
def advance(order_id: str, expected: str) -> str | None:
    from .services import advance_shipments

    return advance_shipments([(order_id, expected)]).get(str(order_id))


@shared_task(name="shipping.reschedule_stalled")
def reschedule_stalled() -> int:
    from .services import reschedule_stalled as sweep

    return sweep(timedelta(seconds=max(30, 3 * settings.SHIPPING_STEP_SECONDS)))
