"""What inventory tells the world."""

from dataclasses import dataclass
from typing import ClassVar

from eventbus.events import Event


@dataclass(frozen=True)
class _OrderEvent(Event):
    SOURCE: ClassVar[str] = "inventory"
    SUBJECT: ClassVar[str] = "order_id"


@dataclass(frozen=True)
class StockReserved(_OrderEvent):
    TYPE: ClassVar[str] = "conveyor.inventory.stock.reserved.v1"
    order_id: str
    lines: list


@dataclass(frozen=True)
class StockRejected(_OrderEvent):
    TYPE: ClassVar[str] = "conveyor.inventory.stock.rejected.v1"
    order_id: str
    reasons: list


@dataclass(frozen=True)
class StockReleased(_OrderEvent):
    TYPE: ClassVar[str] = "conveyor.inventory.stock.released.v1"
    order_id: str
    lines: list
    reason: str


@dataclass(frozen=True)
class ReservationExpired(_OrderEvent):
    """A request to cancel the order, like the shop's: shipping decides."""

    TYPE: ClassVar[str] = "conveyor.inventory.reservation.expired.v1"
    order_id: str
    held_since: str


@dataclass(frozen=True)
class StockChanged(Event):
    TYPE: ClassVar[str] = "conveyor.inventory.stock.changed.v1"
    SOURCE: ClassVar[str] = "inventory"
    SUBJECT: ClassVar[str] = "sku"
    sku: str
    on_hand: int
    reserved: int
    available: int
