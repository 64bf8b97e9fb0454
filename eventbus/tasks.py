from datetime import timedelta

from celery import shared_task
from django.utils import timezone


@shared_task(name="eventbus.prune_outboxes")
def prune_outboxes(days: int = 7) -> int:
    """Sent outbox rows are only history; keep a week of them."""
    from django.conf import settings

    from .service import service

    cutoff = timezone.now() - timedelta(days=days)
    pruned = 0
    for name in settings.CONVEYOR_SERVICES:
        svc = service(name)
        pruned += svc.outbox.objects.using(svc.database).filter(sent_at__lt=cutoff).delete()[0]
    return pruned
