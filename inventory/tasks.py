from datetime import timedelta

from celery import shared_task
from django.conf import settings


@shared_task(name="inventory.release_expired")
def release_expired() -> int:
    from .services import release_expired_reservations

    return release_expired_reservations(timedelta(hours=float(getattr(settings, "RESERVATION_HOURS", 24))))
