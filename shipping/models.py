import uuid

from django.db import models

from eventbus.models import InboxMessageBase, OutboxMessageBase, RelayLeaseBase


class Shipment(models.Model):
    """Created when the order's address (OrderPlaced) and its stock (StockReserved) are both known;
    the two events travel on different topics, so either may arrive first."""

    class Status(models.TextChoices):
        WAITING = "waiting"  # one of the two events has not arrived yet
        READY = "ready"
        PACKED = "packed"
        DISPATCHED = "dispatched"
        DELIVERED = "delivered"
        CANCELLED = "cancelled"  # a cancel was confirmed: never dispatched, whatever arrives later

    order_id = models.UUIDField(primary_key=True)
    shipment_id = models.UUIDField(default=uuid.uuid4, unique=True)
    name = models.CharField(max_length=200, blank=True)
    address = models.TextField(blank=True)
    address_known = models.BooleanField(default=False)
    stock_reserved = models.BooleanField(default=False)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.WAITING, db_index=True)
    cancel_refused = models.BooleanField(default=False)  # a cancel came after dispatch and was answered
    # The event that caused the latest step, so the next step's event names its cause (ce_causationid).
    last_event_id = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True, db_index=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.order_id} ({self.status})"


class OutboxMessage(OutboxMessageBase):
    pass


class InboxMessage(InboxMessageBase):
    pass


class RelayLease(RelayLeaseBase):
    pass
