"""The shop's writes: place orders, request cancels, follow the saga, keep the availability read model."""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

import orjson
from django.conf import settings
from django.db import IntegrityError
from django.utils import timezone

from eventbus.envelope import Envelope
from eventbus.outbox import publish
from eventbus.rows import insert_rows, locked_rows, update_rows
from eventbus.unit_of_work import unit_of_work

from . import live, selectors
from .events import OrderCancelRequested, OrderPlaced
from .limits import ADDRESS_MAX, EMAIL_MAX, MAX_QUANTITY, NAME_MAX
from .models import IdempotencyKey, Order, OrderHistory, OrderLine, Product
from .stages import CANCEL_REFUSED, CANCEL_REQUESTED, CANCELLABLE, NOTES, path_to

DB = "shop"
log = logging.getLogger("shop")


class OrderError(ValueError):
    """Bad input for an order; `errors` maps a field to its messages."""

    def __init__(self, errors: dict[str, list[str]]):
        super().__init__("; ".join(f"{k}: {' '.join(v)}" for k, v in errors.items()))
        self.errors = errors


class NotCancellable(Exception):
    pass


class IdempotencyConflict(ValueError):
    """An idempotency key used again with a different request."""


@dataclass(frozen=True)
class PlacedOrder:
    order: Order
    token: str
    replayed: bool = False  # an earlier request with the same idempotency key placed this order


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def token_matches(order: Order, token: str | None) -> bool:
    """The order's token, while it is valid (ORDER_TOKEN_MAX_AGE_DAYS after the order was placed; 0: always)."""
    return bool(token) and not token_expired(order) and hmac.compare_digest(order.token_hash, hash_token(token))


def token_expired(order: Order) -> bool:
    days = settings.ORDER_TOKEN_MAX_AGE_DAYS
    return bool(days) and order.created_at is not None and timezone.now() - order.created_at > timedelta(days=days)


def place_order(
    *, email: str, name: str, address: str, lines: list[dict], session_key: str = "", idempotency_key: str = ""
) -> PlacedOrder:
    """Commit the order and its OrderPlaced event together; works while Kafka is down.

    With an `idempotency_key`, a repeat of the same request returns the order the first one placed (and the
    same token); a repeat with another request raises IdempotencyConflict.
    """
    errors: dict[str, list[str]] = {}
    for field, value, limit in (
        ("email", email, EMAIL_MAX),
        ("name", name, NAME_MAX),
        ("address", address, ADDRESS_MAX),
    ):
        if not (value or "").strip():
            errors.setdefault(field, []).append("This field is required.")
        elif len(value) > limit:
            errors.setdefault(field, []).append(f"At most {limit} characters.")
        elif "\x00" in value:
            errors.setdefault(field, []).append("Must not contain a NUL character.")
    if email and "@" not in email:
        errors.setdefault("email", []).append("Enter a valid email address.")
    if len(idempotency_key) > 255:
        errors.setdefault("idempotency_key", []).append("At most 255 characters.")
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

    email, name, address = email.strip(), name.strip(), address.strip()
    if not idempotency_key:
        return _place(email, name, address, wanted, products, session_key, token=secrets.token_urlsafe(24))
    request_hash = _request_hash(email, name, address, wanted)
    for _ in range(2):  # a concurrent twin may win the key between our read and our insert: read it then
        earlier = selectors.earlier_request(idempotency_key)
        if earlier is not None:
            if earlier.request_hash != request_hash:
                raise IdempotencyConflict(
                    "this Idempotency-Key was already used with a different request; use a new key for a new order"
                )
            return PlacedOrder(earlier.order, token_for_key(idempotency_key, earlier.order_id), replayed=True)
        try:
            return _place(
                email,
                name,
                address,
                wanted,
                products,
                session_key,
                idempotency_key=idempotency_key,
                request_hash=request_hash,
            )
        except IntegrityError:
            if selectors.earlier_request(idempotency_key) is None:
                raise
    raise AssertionError("unreachable: the key's row exists after an IntegrityError on it")


def _place(email, name, address, wanted, products, session_key, *, token="", idempotency_key="", request_hash=""):
    with unit_of_work(DB):
        total = sum((products[s].price * q for s, q in wanted.items()), Decimal("0"))
        order = Order(email=email, name=name, address=address, total=total, session_key=session_key or "")
        token = token or token_for_key(idempotency_key, order.id)
        order.token_hash = hash_token(token)
        insert_rows([order], using=DB)  # sets created_at, as save() would
        insert_rows(
            [
                OrderLine(order=order, sku=s, name=products[s].name, quantity=q, unit_price=products[s].price)
                for s, q in wanted.items()
            ],
            using=DB,
        )
        insert_rows([OrderHistory(order=order, status=Order.Status.PLACED, at=order.created_at)], using=DB)
        if idempotency_key:
            expired = timezone.now() - timedelta(hours=settings.IDEMPOTENCY_KEY_HOURS)
            IdempotencyKey.objects.using(DB).filter(key=idempotency_key, created_at__lt=expired).delete()
            IdempotencyKey.objects.using(DB).create(key=idempotency_key, request_hash=request_hash, order=order)
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


def _request_hash(email: str, name: str, address: str, wanted: dict[str, int]) -> str:
    canonical = orjson.dumps([email, name, address, sorted(wanted.items())])
    return hashlib.sha256(canonical).hexdigest()


def token_for_key(key: str, order_id) -> str:
    """An idempotent order's token, derived from the key so that a repeat can answer with it without the
    token ever being stored: HMAC(SECRET_KEY, key and order id). Unguessable without the secret key."""
    digest = hmac.new(settings.SECRET_KEY.encode(), f"order-token|{key}|{order_id}".encode(), hashlib.sha256)
    return base64.urlsafe_b64encode(digest.digest()[:24]).decode()


def prune_idempotency_keys() -> int:
    """Forget keys older than IDEMPOTENCY_KEY_HOURS (Celery beat); their orders stay."""
    cutoff = timezone.now() - timedelta(hours=settings.IDEMPOTENCY_KEY_HOURS)
    deleted, _ = IdempotencyKey.objects.using(DB).filter(created_at__lt=cutoff).delete()
    return deleted


def request_cancel(*, order_id, reason: str = "customer request") -> Order:
    """Ask for the order to be cancelled. The order keeps its stage: shipping, which owns the dispatch,
    answers, and only its confirmation cancels the order (and releases the stock). Asking again while a
    request waits changes nothing."""
    with unit_of_work(DB):
        order = Order.objects.using(DB).select_for_update().get(id=order_id)
        if order.status not in CANCELLABLE:
            raise NotCancellable(
                f"order is {order.status}; only {', '.join(sorted(CANCELLABLE))} orders can be cancelled"
            )
        noted = set(
            OrderHistory.objects.using(DB)
            .filter(order=order, status__in=[CANCEL_REQUESTED, CANCEL_REFUSED])
            .values_list("status", flat=True)
        )
        if CANCEL_REFUSED in noted:
            raise NotCancellable("the shipment was already dispatched, so the order can no longer be cancelled")
        if CANCEL_REQUESTED not in noted:
            reason = reason[:200]
            OrderHistory.objects.using(DB).create(order=order, status=CANCEL_REQUESTED, at=timezone.now(), note=reason)
            publish(OrderCancelRequested(str(order.id), reason), correlation_id=str(order.id))
            live.announce_order(order.id)
        return order


@dataclass(frozen=True)
class SagaStep:
    """An event's effect on one order: a stage to move to, or a note of the cancel protocol."""

    order_id: str
    target: str  # a stage, or CANCEL_REQUESTED / CANCEL_REFUSED
    event: Envelope
    rejection: list | None = None
    note: str = ""


def follow_saga(steps: list[SagaStep]) -> list[bool]:
    """Apply the steps in their order, with one read of the orders and two writes for all; say for each
    whether it changed anything. A late, duplicate or out-of-order event is logged and changes nothing; a
    protocol note is recorded once per order."""
    with unit_of_work(DB):
        ids = {step.order_id for step in steps}
        orders = {str(o.id): o for o in locked_rows(Order, ids, using=DB)}
        noted = _notes_of([step.order_id for step in steps if step.target in NOTES])
        now, history, moved, outcomes = timezone.now(), [], {}, []
        for step in steps:
            order = orders.get(str(step.order_id))
            if order is None:
                log.warning("%s for unknown order %s ignored", step.event.type, step.order_id)
                outcomes.append(False)
                continue
            if step.target in NOTES:
                fresh = (str(order.pk), step.target) not in noted
                if fresh:
                    noted.add((str(order.pk), step.target))
                    history.append(
                        OrderHistory(order=order, status=step.target, at=now, event_id=step.event.id, note=step.note)
                    )
                    moved.setdefault(order.pk, None)
                outcomes.append(fresh)
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
        if history:
            insert_rows(history, using=DB)
            update_rows([o for o in moved.values() if o is not None], ["status", "rejection", "updated_at"], using=DB)
            for order_id in moved:
                live.announce_order(order_id)  # after commit; a push failure never undoes the move
        return outcomes


def _notes_of(order_ids: list[str]) -> set[tuple[str, str]]:
    if not order_ids:
        return set()
    rows = OrderHistory.objects.using(DB).filter(order_id__in=set(order_ids), status__in=NOTES)
    return {(str(order_id), status) for order_id, status in rows.values_list("order_id", "status")}


def update_availability(sku: str, available: int) -> None:
    Product.objects.using(DB).filter(sku=sku).update(available=available)
    live.announce_stock(sku, available)
