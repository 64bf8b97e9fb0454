"""Abstract tables of the event bus. Each bounded app subclasses them in its own `models.py`, so the rows
live in that app's database and commit in the same transaction as the app's domain writes."""

from django.db import models


class OutboxMessageBase(models.Model):
    """An event committed with the write that caused it, waiting for the relay to put it on Kafka."""

    position = models.BigAutoField(primary_key=True)  # publish order; the relay sends in this order
    event_id = models.UUIDField(unique=True)
    event_type = models.CharField(max_length=200)
    topic = models.CharField(max_length=200)
    key = models.CharField(max_length=200)
    headers = models.JSONField()
    value = models.BinaryField()
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True
        indexes = [models.Index(fields=["sent_at", "position"], name="%(app_label)s_outbox_pending")]

    def __str__(self) -> str:
        return f"{self.event_type} {self.key}"


class InboxMessageBase(models.Model):
    """An event this app's consumer group has applied; a redelivered id is skipped."""

    event_id = models.UUIDField()
    group = models.CharField(max_length=100)
    event_type = models.CharField(max_length=200)
    handled_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        abstract = True
        constraints = [models.UniqueConstraint(fields=["group", "event_id"], name="%(app_label)s_inbox_once")]


class RelayLeaseBase(models.Model):
    """Only the holder of the lease relays, so two relays never send the same rows side by side."""

    name = models.CharField(max_length=50, primary_key=True)
    owner = models.CharField(max_length=200)
    expires_at = models.DateTimeField()

    class Meta:
        abstract = True
