"""The Celery app: Redis broker, JSON only, and beat's scheduled sweeps."""

import os

from celery import Celery
from celery.signals import task_postrun, task_prerun

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("conveyor")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
app.conf.beat_schedule = {
    "shipping-reschedule-stalled": {"task": "shipping.reschedule_stalled", "schedule": 30.0},
    "inventory-expire-reservations": {"task": "inventory.expire_reservations", "schedule": 300.0},
    "eventbus-prune-outboxes": {"task": "eventbus.prune_outboxes", "schedule": 3600.0},
    # retention (settings: INBOX_RETENTION_DAYS, PERSONAL_DATA_RETENTION_DAYS)
    "eventbus-prune-inboxes": {"task": "eventbus.prune_inboxes", "schedule": 3600.0},
    "dashboard-scrub-personal-data": {"task": "dashboard.scrub_personal_data", "schedule": 3600.0},
    "shop-prune-idempotency-keys": {"task": "shop.prune_idempotency_keys", "schedule": 3600.0},
}


@task_prerun.connect
@task_postrun.connect
def close_old_connections(task=None, **_kwargs) -> None:
    """Around each task, as around each request: drop this thread's broken connections and those older than
    CONN_MAX_AGE (CELERY_DB_REUSE_MAX keeps the fixup from closing every connection every time). Not for
    an eager task, which runs inside its caller's transaction."""
    from django.db import close_old_connections as close

    if not getattr(getattr(task, "request", None), "is_eager", False):
        close()
