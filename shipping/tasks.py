"""Celery tasks: the courier's steps, each after SHIPPING_STEP_SECONDS, and the sweep for lost steps."""

import logging
from datetime import timedelta

from celery import shared_task
from django.conf import settings

log = logging.getLogger("shipping")


def schedule_step(order_id: str, status: str) -> None:
    try:
        advance.apply_async((order_id, status), countdown=settings.SHIPPING_STEP_SECONDS or None)
    except Exception as exc:  # Redis away: the sweep reschedules it later
        log.warning("could not schedule the next step of order %s (%s); the sweep will retry", order_id, exc)


@shared_task(name="shipping.advance", acks_late=True, autoretry_for=(Exception,), retry_backoff=True, max_retries=10)
def advance(order_id: str, expected: str) -> str | None:
    from .services import advance_shipment

    return advance_shipment(order_id, expected)


@shared_task(name="shipping.reschedule_stalled")
def reschedule_stalled() -> int:
    from .services import reschedule_stalled as sweep

    return sweep(timedelta(seconds=max(30, 3 * settings.SHIPPING_STEP_SECONDS)))
