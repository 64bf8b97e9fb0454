from django.db import models
from django.db.models import F, Q

from eventbus.models import InboxMessageBase, OutboxMessageBase, RelayLeaseBase


class StockItem(models.Model):
    sku = models.CharField(max_length=64, primary_key=True)
    on_hand = models.PositiveIntegerField(default=0)
    reserved = models.PositiveIntegerField(default=0)
    # Every unit put in by restocks and stock-takes, net: received - units dispatched = on_hand always
    # (the audit checks it), since units leave only when a dispatch consumes a reservation.
    received = models.IntegerField(default=0, db_default=0)
    # Changed by a consumer batch and not yet announced in a StockChanged (services.announce_batched_stock).
    announce_pending = models.BooleanField(default=False, db_default=False, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["sku"]
        constraints = [
            # The database itself refuses an oversell, whatever the code above it does.
            models.CheckConstraint(condition=Q(reserved__lte=F("on_hand")), name="stock_reserved_within_on_hand"),
        ]

    def __str__(self) -> str:
        return f"{self.sku}: {self.available} available of {self.on_hand}"

    @property
    def available(self) -> int:
        return self.on_hand - self.reserved


class Reservation(models.Model):
    class Status(models.TextChoices):
        ACTIVE = "active"
        RELEASED = "released"
        CONSUMED = "consumed"

    order_id = models.UUIDField(primary_key=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ACTIVE, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    # When the expiry sweep asked for this order's cancel (once); the units stay held until shipping answers.
    expiry_requested_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.order_id} ({self.status})"


class ReservationLine(models.Model):
    reservation = models.ForeignKey(Reservation, on_delete=models.CASCADE, related_name="lines")
    sku = models.CharField(max_length=64)
    quantity = models.PositiveIntegerField()


class OutboxMessage(OutboxMessageBase):
    pass


class InboxMessage(InboxMessageBase):
    pass


class RelayLease(RelayLeaseBase):
    pass
