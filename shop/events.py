"""What the shop tells the world."""

from dataclasses import dataclass
from typing import ClassVar

from eventbus.events import Event


@dataclass(frozen=True)
class OrderPlaced(Event):
    TYPE: ClassVar[str] = "conveyor.shop.order.placed.v1"
    SOURCE: ClassVar[str] = "shop"
    SUBJECT: ClassVar[str] = "order_id"
    order_id: str
    email: str
    name: str
    address: str
    lines: list
    total: str


@dataclass(frozen=True)
class OrderCancelRequested(Event):
    """A request, not a decision: shipping, which owns the dispatch, confirms or refuses it."""

    TYPE: ClassVar[str] = "conveyor.shop.order.cancel_requested.v1"
    SOURCE: ClassVar[str] = "shop"
    SUBJECT: ClassVar[str] = "order_id"
    order_id: str
    reason: str
