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
