"""The shop's writes: place and cancel orders, follow the saga, keep the availability read model."""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from eventbus.envelope import Envelope
from eventbus.outbox import publish
from eventbus.rows import insert_rows, locked_rows, update_rows

from . import live
from .events import OrderCancelled, OrderPlaced
from .models import Order, OrderHistory, OrderLine, Product
from .stages import CANCELLABLE, path_to

DB = "shop"
MAX_QUANTITY = 100
log = logging.getLogger("shop")


class OrderError(ValueError):
    """Bad input for an order; `errors` maps a field to its messages."""

    def __init__(self, errors: dict[str, list[str]]):
        super().__init__("; ".join(f"{k}: {' '.join(v)}" for k, v in errors.items()))
        self.errors = errors


class NotCancellable(Exception):
    pass


@dataclass(frozen=True)
class PlacedOrder:
    order: Order
    token: str


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def token_matches(order: Order, token: str | None) -> bool:
    """The order's token, while it is valid (ORDER_TOKEN_MAX_AGE_DAYS after the order was placed; 0: always)."""
    return bool(token) and not token_expired(order) and hmac.compare_digest(order.token_hash, hash_token(token))


def token_expired(order: Order) -> bool:
    days = settings.ORDER_TOKEN_MAX_AGE_DAYS
    return bool(days) and order.created_at is not None and timezone.now() - order.created_at > timedelta(days=days)


def place_order(*, email: str, name: str, address: str, lines: list[dict], session_key: str = "") -> PlacedOrder:
    """Commit the order and its OrderPlaced event together; works while Kafka is down."""
    errors: dict[str, list[str]] = {}
    for field, value, limit in (("email", email, 254), ("name", name, 200), ("address", address, 1000)):
        if not (value or "").strip():
            errors.setdefault(field, []).append("This field is required.")
        elif len(value) > limit:
            errors.setdefault(field, []).append(f"At most {limit} characters.")
    if email and "@" not in email:
        errors.setdefault("email", []).append("Enter a valid email address.")
    wanted: dict[str, int] = {}
    for line in lines or []:
        quantity = line.get("quantity")
        if not isinstance(quantity, int) or isinstance(quantity, bool) or not 1 <= quantity <= MAX_QUANTITY:
            errors.setdefault("lines", []).append(f"quantity for {line.get('sku')!r} must be 1 to {MAX_QUANTITY}.")
            continue
        wanted[str(line.get("sku"))] = wanted.get(str(line.get("sku")), 0) + quantity
    if not lines:
        errors.setdefault("lines", []).append("An order needs at least one line.")
    products = {p.sku: p for p in Product.objects.using(DB).filter(sku__in=list(wanted), active=True).order_by()}
    unknown = sorted(set(wanted) - set(products))
    if unknown:
        errors.setdefault("lines", []).append(f"unknown product(s): {', '.join(unknown)}")
    if errors:
        raise OrderError(errors)

    token = secrets.token_urlsafe(24)
    with transaction.atomic(using=DB):
        total = sum((products[s].price * q for s, q in wanted.items()), Decimal("0"))
        order = Order(
            email=email.strip(),
            name=name.strip(),
            address=address.strip(),
            total=total,
            token_hash=hash_token(token),
            session_key=session_key or "",
        )
        insert_rows([order], using=DB)  # sets created_at, as save() would
        insert_rows(
            [
                OrderLine(order=order, sku=s, name=products[s].name, quantity=q, unit_price=products[s].price)
                for s, q in wanted.items()
            ],
            using=DB,
        )
        insert_rows([OrderHistory(order=order, status=Order.Status.PLACED, at=order.created_at)], using=DB)
        publish(
            OrderPlaced(
                order_id=str(order.id),
                email=order.email,
                name=order.name,
                address=order.address,
                lines=[{"sku": s, "quantity": q, "unit_price": f"{products[s].price:.2f}"} for s, q in wanted.items()],
                total=f"{total:.2f}",
            ),
            correlation_id=str(order.id),
        )
    return PlacedOrder(order, token)


def cancel_order(order_id, reason: str = "customer request") -> Order:
    """Cancel before dispatch; inventory releases the stock when it hears of it (compensation)."""
    with transaction.atomic(using=DB):
        order = Order.objects.using(DB).select_for_update().get(id=order_id)
        if order.status not in CANCELLABLE:
            raise NotCancellable(
                f"order is {order.status}; only {', '.join(sorted(CANCELLABLE))} orders can be cancelled"
            )
        _move(order, ["cancelled"], None)
        publish(OrderCancelled(str(order.id), reason[:200]), correlation_id=str(order.id))
        return order


def _move(order: Order, stages: list[str], event: Envelope | None) -> None:
    now = timezone.now()
    OrderHistory.objects.using(DB).bulk_create(
        [OrderHistory(order=order, status=s, at=now, event_id=event.id if event else None) for s in stages]
    )
    order.status = stages[-1]
    order.save(using=DB, update_fields=["status", "rejection", "updated_at"])
    live.announce_order(order.id)  # after commit; a push failure never undoes the move


@dataclass(frozen=True)
class SagaStep:
    order_id: str
    target: str
    event: Envelope
    rejection: list | None = None


def follow_saga(order_id: str, target: str, event: Envelope, rejection: list | None = None) -> bool:
    """Move the order to `target` if that is a legal move; a late, duplicate or out-of-order event is
    logged and changes nothing."""
    return follow_saga_steps([SagaStep(order_id, target, event, rejection)])[0]


def follow_saga_steps(steps: list[SagaStep]) -> list[bool]:
    """`follow_saga` for many events, in their order: one read of the orders, two writes for all."""
    with transaction.atomic(using=DB):
        ids = {step.order_id for step in steps}
        orders = {str(o.id): o for o in locked_rows(Order, ids, using=DB)}
        now, history, moved, outcomes = timezone.now(), [], {}, []
        for step in steps:
            order = orders.get(str(step.order_id))
            if order is None:
                log.warning("%s for unknown order %s ignored", step.event.type, step.order_id)
                outcomes.append(False)
                continue
            stages = path_to(order.status, step.target)
            if not stages:
                log.info(
                    "order %s is %s; %s (-> %s) changes nothing",
                    step.order_id,
                    order.status,
                    step.event.type,
                    step.target,
                )
                outcomes.append(False)
                continue
            if step.rejection is not None:
                order.rejection = step.rejection
            history += [OrderHistory(order=order, status=s, at=now, event_id=step.event.id) for s in stages]
            order.status = stages[-1]  # updated_at is auto_now: update_rows sets it
            moved[order.pk] = order
            outcomes.append(True)
        if moved:
            insert_rows(history, using=DB)
            update_rows(moved.values(), ["status", "rejection", "updated_at"], using=DB)
            for order_id in moved:
                live.announce_order(order_id)  # after commit; a push failure never undoes the move
        return outcomes


def update_availability(sku: str, available: int) -> None:
    Product.objects.using(DB).filter(sku=sku).update(available=available)
    live.announce_stock(sku, available)
