"""The shop's reads."""

import uuid
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from .models import IdempotencyKey, Order, Product
from .stages import CANCEL_REFUSED, CANCEL_REQUESTED

DB = "shop"


def catalogue() -> list[Product]:
    return list(Product.objects.using(DB).filter(active=True).order_by("name"))


def product(sku: str) -> Product | None:
    return Product.objects.using(DB).filter(sku=sku, active=True).first()


def order_with_details(order_id) -> Order | None:
    return Order.objects.using(DB).filter(id=order_id).prefetch_related("lines", "history").first()


def cancel_of(order: Order) -> dict | None:
    """The order's cancel request and where it stands, from its history; None when none was made."""
    entries = {h.status: h for h in order.history.all()}
    requested = entries.get(CANCEL_REQUESTED)
    if requested is None:
        return None
    state = "confirmed" if order.status == "cancelled" else "refused" if CANCEL_REFUSED in entries else "requested"
    return {"state": state, "reason": requested.note, "requested_at": requested.at.isoformat()}


def order_as_dict(order: Order) -> dict:
    return {
        "id": str(order.id),
        "status": order.status,
        "lines": [
            {"sku": ln.sku, "name": ln.name, "quantity": ln.quantity, "unit_price": f"{ln.unit_price:.2f}"}
            for ln in order.lines.all()
        ],
        "total": f"{order.total:.2f}",
        "history": [{"status": h.status, "at": h.at.isoformat()} for h in order.history.all()],
        "cancel": cancel_of(order),
    }


def earlier_request(key: str) -> IdempotencyKey | None:
    """An idempotency key's first request (with the order it placed) while the key is remembered
    (IDEMPOTENCY_KEY_HOURS)."""
    since = timezone.now() - timedelta(hours=settings.IDEMPOTENCY_KEY_HOURS)
    return IdempotencyKey.objects.using(DB).select_related("order").filter(key=key, created_at__gte=since).first()


def products_by_sku(skus) -> dict[str, Product]:
    return {p.sku: p for p in Product.objects.using(DB).filter(sku__in=list(skus), active=True)}


def availability() -> list[dict]:
    """Every active product's availability, for a live page's snapshot."""
    return [
        {"sku": sku, "available": n}
        for sku, n in Product.objects.using(DB).filter(active=True).order_by("sku").values_list("sku", "available")
    ]


def orders_by_ids(order_ids) -> list[Order]:
    """The given orders, newest first; ids that are not valid UUIDs are skipped."""
    valid = [i for i in order_ids if _is_uuid(i)]
    return list(Order.objects.using(DB).filter(id__in=valid).order_by("-created_at"))


def orders_as_dicts(order_ids) -> list[dict]:
    """Several orders in the shape of `order_as_dict`, in one round of queries."""
    valid = [i for i in order_ids if _is_uuid(i)]
    orders = Order.objects.using(DB).filter(id__in=valid).prefetch_related("lines", "history")
    return [order_as_dict(order) for order in orders]


def _is_uuid(value) -> bool:
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True


def terminal_orders(order_ids) -> dict[str, tuple[str, float | None]]:
    """For the orders that have ended: {id: (status, placed→end in ms)}."""
    from .models import OrderHistory

    done = {}
    ended = OrderHistory.objects.using(DB).filter(
        order_id__in=list(order_ids), status__in=["delivered", "rejected", "cancelled"]
    )
    for row in ended.select_related("order"):
        done[str(row.order_id)] = (row.status, (row.at - row.order.created_at).total_seconds() * 1000)
    return done
