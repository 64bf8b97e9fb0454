import uuid

from django.db import models

from eventbus.models import InboxMessageBase, OutboxMessageBase, RelayLeaseBase


class Product(models.Model):
    sku = models.CharField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    price = models.DecimalField(max_digits=10, decimal_places=2)
    image = models.CharField(max_length=200, blank=True, help_text="path under static/, e.g. shop/img/mug.svg")
    # The shop's read model of inventory's stock events (conveyor.inventory.stock.changed.v1).
    available = models.IntegerField(default=0)
    active = models.BooleanField(default=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.sku})"


class Order(models.Model):
    class Status(models.TextChoices):
        PLACED = "placed"
        RESERVED = "reserved"
        PACKED = "packed"
        DISPATCHED = "dispatched"
        DELIVERED = "delivered"
        REJECTED = "rejected"
        CANCELLED = "cancelled"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4)
    email = models.EmailField()
    name = models.CharField(max_length=200)
    address = models.TextField()
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.PLACED, db_index=True)
    total = models.DecimalField(max_digits=12, decimal_places=2)
    token_hash = models.CharField(max_length=64, editable=False)  # sha256 of the customer's token
    session_key = models.CharField(max_length=64, blank=True, db_index=True, editable=False)
    rejection = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.id} ({self.status})"


class OrderLine(models.Model):
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="lines")
    sku = models.CharField(max_length=64)
    name = models.CharField(max_length=200)
    quantity = models.PositiveIntegerField()
    unit_price = models.DecimalField(max_digits=10, decimal_places=2)


class OrderHistory(models.Model):
    """What happened to an order: each stage it reached, and the cancel protocol's steps (a request, and a
    refusal from shipping), each at most once."""

    class Entry(models.TextChoices):
        PLACED = "placed"
        RESERVED = "reserved"
        PACKED = "packed"
        DISPATCHED = "dispatched"
        DELIVERED = "delivered"
        REJECTED = "rejected"
        CANCELLED = "cancelled"
        CANCEL_REQUESTED = "cancel_requested", "Cancel requested"
        CANCEL_REFUSED = "cancel_refused", "Cancel refused (already dispatched)"

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="history")
    status = models.CharField(max_length=16, choices=Entry.choices)
    at = models.DateTimeField()
    event_id = models.UUIDField(null=True, blank=True)
    note = models.CharField(max_length=200, blank=True, default="")  # a cancel request's reason

    class Meta:
        ordering = ["at", "id"]
        constraints = [models.UniqueConstraint(fields=["order", "status"], name="shop_history_stage_once")]


class IdempotencyKey(models.Model):
    """A client's `Idempotency-Key` (or the checkout form's one-time nonce) and the order it created: a repeat
    with the same request returns that order, a repeat with another request is refused."""

    key = models.CharField(max_length=255, primary_key=True)
    request_hash = models.CharField(max_length=64)  # sha256 of the canonical request
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)


class OutboxMessage(OutboxMessageBase):
    pass


class InboxMessage(InboxMessageBase):
    pass


class RelayLease(RelayLeaseBase):
    pass
