from datetime import timedelta

from celery import shared_task
from django.conf import settings


@shared_task(name="inventory.expire_reservations")
def expire_reservations() -> int:
    from .services import request_expiry_cancels

    return request_expiry_cancels(timedelta(hours=settings.RESERVATION_HOURS))
