"""The JSON API with django-ninja; OpenAPI 3 at /api/openapi.json.

Who may do what:
- placing an order needs nothing (a public, token-less call; rate-limited per client);
- an order is read with its token (`Authorization: Bearer <token>`) or by a staff session;
- every write takes a JSON body only (`json_body.json_only`: anything else is 415);
- an order's cancel is requested with its token only. Session auth is read-only (GET) on purpose, so a
  logged-in staff browser can never be driven into a state change by another site (no CSRF hole).
Placing is idempotent with an `Idempotency-Key` header: a retry of the same request returns the first answer.
A wrong or missing token answers 404, exactly like an unknown order, so ids cannot be probed.
"""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Annotated, Literal

from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import validate_email
from django.db import InterfaceError, OperationalError
from django.http import HttpResponse
from ninja import NinjaAPI, Schema, Status
from ninja.decorators import decorate_view
from ninja.errors import HttpError
from pydantic import ConfigDict, Field, StrictInt, StringConstraints, field_validator

from . import ratelimit, selectors, services
from .access import is_staff
from .json_body import json_only
from .limits import ADDRESS_MAX, EMAIL_MAX, MAX_LINES, MAX_QUANTITY, NAME_MAX, SKU_MAX
from .models import Order

api = NinjaAPI(
    title="Conveyor shop API",
    version="1",
    description="Place orders and follow them through the saga. Statuses: " + ", ".join(Order.Status.values) + ".",
    urls_namespace="shop:api",
)


def _database_unavailable(request, exc):
    """An outage, not a bug: 503 with a reason (ninja would otherwise answer 500 before any middleware)."""
    response = api.create_response(request, {"detail": "a database is unavailable; retry shortly"}, status=503)
    response["Retry-After"] = "5"
    return response


api.add_exception_handler(OperationalError, _database_unavailable)
api.add_exception_handler(InterfaceError, _database_unavailable)


# --------------------------------------------------------------------------- schemas

Sku = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=SKU_MAX)]
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]


class Strict(Schema):
    model_config = ConfigDict(extra="forbid")  # a misspelt field is an error, not silently dropped


class LineIn(Strict):
    sku: Sku
    quantity: StrictInt = Field(ge=1, le=MAX_QUANTITY)


class OrderIn(Strict):
    email: Annotated[Text, StringConstraints(max_length=EMAIL_MAX)]
    name: Annotated[Text, StringConstraints(max_length=NAME_MAX)]
    address: Annotated[Text, StringConstraints(max_length=ADDRESS_MAX)]
    lines: list[LineIn] = Field(min_length=1, max_length=MAX_LINES)

    @field_validator("email")
    @classmethod
    def email_is_valid(cls, value: str) -> str:
        try:
            validate_email(value)
        except DjangoValidationError:
            raise ValueError("Enter a valid email address.") from None
        return value


class ProductOut(Schema):
    sku: str
    name: str
    price: str = Field(description="decimal string, e.g. '12.50'")
    available: int


class PlacedOut(Schema):
    id: uuid.UUID
    status: Literal["placed"]
    token: str = Field(description="keep it: it reads and cancels this order (Authorization: Bearer <token>)")


class OrderLineOut(Schema):
    sku: str
    name: str
    quantity: int
    unit_price: str


class HistoryOut(Schema):
    status: str = Field(description="a stage, or a step of the cancel protocol: cancel_requested, cancel_refused")
    at: str = Field(description="RFC 3339 time")


class CancelOut(Schema):
    state: Literal["requested", "confirmed", "refused"] = Field(
        description="requested: shipping has not answered yet; confirmed: the order is cancelled; refused: it "
        "was already dispatched and goes on to delivered"
    )
    reason: str
    requested_at: str


class OrderOut(Schema):
    id: uuid.UUID
    status: str
    lines: list[OrderLineOut]
    total: str
    history: list[HistoryOut]
    cancel: CancelOut | None = Field(description="the cancel request, if one was made")


class ErrorOut(Schema):
    detail: str | list


# --------------------------------------------------------------------------- routes


@api.get("/products", response=list[ProductOut], tags=["catalogue"])
def list_products(request):
    return [
        {"sku": p.sku, "name": p.name, "price": _money(p.price), "available": p.available}
        for p in selectors.catalogue()
    ]


IDEMPOTENCY_DOC = (
    "Optional. A key of your choice (a random UUID) that makes a retry safe: the same key with the same body "
    "returns the first answer (the same order and token) for at least IDEMPOTENCY_KEY_HOURS (24 h by default); "
    "the same key with another body gets 422."
)


@api.post(
    "/orders",
    response={201: PlacedOut, 422: ErrorOut, 429: ErrorOut},
    tags=["orders"],
    openapi_extra={
        "parameters": [
            {
                "name": "Idempotency-Key",
                "in": "header",
                "required": False,
                "description": IDEMPOTENCY_DOC,
                "schema": {"type": "string", "minLength": 1, "maxLength": 255},
            }
        ]
    },
)
@decorate_view(json_only)
def place_order(request, response: HttpResponse, payload: OrderIn):
    key = request.headers.get("Idempotency-Key", "").strip()
    verdict = ratelimit.check_order_rate(request)
    if not verdict.allowed:
        response["Retry-After"] = str(verdict.retry_after)
        return Status(429, {"detail": f"Too many orders from this client; retry in {verdict.retry_after} s."})
    try:
        placed = services.place_order(
            email=payload.email,
            name=payload.name,
            address=payload.address,
            lines=[line.model_dump() for line in payload.lines],
            idempotency_key=key,
        )
    except services.OrderError as exc:
        return Status(422, {"detail": _field_errors(exc)})
    except services.IdempotencyConflict as exc:
        return Status(422, {"detail": str(exc)})
    if placed.replayed:
        response["Idempotent-Replayed"] = "true"
    return Status(201, {"id": placed.order.id, "status": "placed", "token": placed.token})


@api.get("/orders/{order_id}", response={200: OrderOut, 404: ErrorOut}, tags=["orders"])
def get_order(request, order_id: str):
    order = _order_for(request, order_id, allow_staff_session=True)
    return selectors.order_as_dict(order)


@api.post(
    "/orders/{order_id}/cancel",
    response={202: OrderOut, 404: ErrorOut, 409: ErrorOut},
    tags=["orders"],
    description="Requests the cancel. Shipping decides: the order keeps its status until it answers, then ends "
    "`cancelled`, or goes on to `delivered` if it was already dispatched (`cancel.state` says which). Asking "
    "again while a request waits changes nothing.",
)
@decorate_view(json_only)
def cancel_order(request, order_id: str):
    order = _order_for(request, order_id, allow_staff_session=False)
    try:
        services.request_cancel(order_id=order.id)
    except services.NotCancellable as exc:
        return Status(409, {"detail": str(exc)})
    return Status(202, selectors.order_as_dict(selectors.order_with_details(order.id)))


# --------------------------------------------------------------------------- helpers


def _order_for(request, order_id: str, *, allow_staff_session: bool) -> Order:
    try:
        parsed = uuid.UUID(order_id)
    except ValueError:
        raise HttpError(404, "Not found") from None
    order = selectors.order_with_details(parsed)
    allowed = order is not None and (
        services.token_matches(order, _bearer_token(request))
        or (allow_staff_session and request.method == "GET" and is_staff(request.user))
    )
    if not allowed:
        raise HttpError(404, "Not found")
    return order


def _bearer_token(request) -> str | None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def _field_errors(exc: services.OrderError) -> list[dict]:
    """The service's {field: [messages]} in the shape of ninja's validation errors."""
    return [
        {"type": "value_error", "loc": ["body", "payload", field], "msg": message}
        for field, messages in exc.errors.items()
        for message in messages
    ]


def _money(value: Decimal) -> str:
    return f"{value:.2f}"
