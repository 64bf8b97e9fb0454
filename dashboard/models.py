from django.db import models

from eventbus.models import InboxMessageBase, OutboxMessageBase, RelayLeaseBase


class EventLog(models.Model):
    """Every event seen on any topic (dead letters included), in arrival order: the live tail's source."""

    seq = models.BigAutoField(primary_key=True)
    event_id = models.CharField(max_length=64, blank=True, db_index=True)
    event_type = models.CharField(max_length=200, blank=True, db_index=True)
    source = models.CharField(max_length=200, blank=True)
    subject = models.CharField(max_length=200, blank=True, db_index=True)
    correlation_id = models.CharField(max_length=64, blank=True, db_index=True)
    causation_id = models.CharField(max_length=64, blank=True)
    time = models.DateTimeField(null=True)
    topic = models.CharField(max_length=200)
    partition = models.IntegerField()
    offset = models.BigIntegerField()
    headers = models.JSONField(default=dict)
    payload = models.TextField(blank=True)
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["topic", "partition", "offset"], name="dashboard_event_once")]


class OutboxMessage(OutboxMessageBase):
    pass


class InboxMessage(InboxMessageBase):
    pass


class RelayLease(RelayLeaseBase):
    pass
