from datetime import timedelta

from celery import shared_task
from django.utils import timezone

PRUNE_BATCH = 5000  # rows per delete: short transactions, so a consumer never waits long for the write lock


@shared_task(name="eventbus.prune_outboxes")
def prune_outboxes(days: int | None = None) -> int:
    """Sent outbox rows are only history; keep OUTBOX_RETENTION_DAYS of them."""
    from django.conf import settings

    from .service import service

    cutoff = timezone.now() - timedelta(days=days if days is not None else settings.OUTBOX_RETENTION_DAYS)
    pruned = 0
    for name in settings.CONVEYOR_SERVICES:
        svc = service(name)
        pruned += _delete_in_batches(svc.outbox.objects.using(svc.database).filter(sent_at__lt=cutoff))
    return pruned


@shared_task(name="eventbus.prune_inboxes")
def prune_inboxes(days: int | None = None) -> int:
    """Inbox rows older than INBOX_RETENTION_DAYS: longer than Kafka keeps records, so no redelivery can come
    for them any more (settings refuse a shorter value)."""
    from django.conf import settings

    from .service import service

    cutoff = timezone.now() - timedelta(days=days if days is not None else settings.INBOX_RETENTION_DAYS)
    pruned = 0
    for name in settings.CONVEYOR_SERVICES:
        svc = service(name)
        if svc.inbox is not None:
            pruned += _delete_in_batches(svc.inbox.objects.using(svc.database).filter(handled_at__lt=cutoff))
    return pruned


def _delete_in_batches(queryset) -> int:
    deleted = 0
    while True:
        pks = list(queryset.order_by().values_list("pk", flat=True)[:PRUNE_BATCH])
        if not pks:
            return deleted
        deleted += queryset.model.objects.using(queryset.db).filter(pk__in=pks).delete()[0]
