"""The Celery app: Redis broker, JSON only, and beat's scheduled sweeps."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("conveyor")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
app.conf.beat_schedule = {
    "shipping-reschedule-stalled": {"task": "shipping.reschedule_stalled", "schedule": 30.0},
    "inventory-release-expired": {"task": "inventory.release_expired", "schedule": 300.0},
    "eventbus-prune-outboxes": {"task": "eventbus.prune_outboxes", "schedule": 3600.0},
}
