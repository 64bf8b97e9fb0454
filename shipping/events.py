"""What shipping tells the world."""

from dataclasses import dataclass
from typing import ClassVar

from eventbus.events import Event


@dataclass(frozen=True)
class _ShipmentEvent(Event):
    SOURCE: ClassVar[str] = "shipping"
    SUBJECT: ClassVar[str] = "order_id"
    order_id: str
    shipment_id: str


@dataclass(frozen=True)
class ShipmentPacked(_ShipmentEvent):
    TYPE: ClassVar[str] = "conveyor.shipping.shipment.packed.v1"


@dataclass(frozen=True)
class ShipmentDispatched(_ShipmentEvent):
    TYPE: ClassVar[str] = "conveyor.shipping.shipment.dispatched.v1"


@dataclass(frozen=True)
class ShipmentDelivered(_ShipmentEvent):
    TYPE: ClassVar[str] = "conveyor.shipping.shipment.delivered.v1"


@dataclass(frozen=True)
class ShipmentCancelled(_ShipmentEvent):
    """The answer to a cancel request: this shipment will never be dispatched."""

    TYPE: ClassVar[str] = "conveyor.shipping.shipment.cancelled.v1"
    reason: str


@dataclass(frozen=True)
class ShipmentCancelRefused(_ShipmentEvent):
    """The answer to a cancel request that came too late: the shipment is already on its way."""

    TYPE: ClassVar[str] = "conveyor.shipping.shipment.cancel_refused.v1"
    reason: str
