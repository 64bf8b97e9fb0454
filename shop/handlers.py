"""The shop follows the saga: inventory's and shipping's events move its view of each order."""

from eventbus.envelope import Envelope

from . import services


def order_reserved(event: Envelope) -> None:
    services.follow_saga(event.data["order_id"], "reserved", event)


def order_rejected(event: Envelope) -> None:
    services.follow_saga(event.data["order_id"], "rejected", event, rejection=event.data["reasons"])


def order_released(event: Envelope) -> None:
    if event.data["reason"] == "expired":  # the reservation ran out: the order cannot ship any more
        services.follow_saga(event.data["order_id"], "cancelled", event)


def shipment_moved(event: Envelope) -> None:
    services.follow_saga(event.data["order_id"], event.type.split(".")[3], event)


def stock_changed(event: Envelope) -> None:
    services.update_availability(event.data["sku"], event.data["available"])


HANDLERS = {
    "conveyor.inventory.stock.reserved.v1": [order_reserved],
    "conveyor.inventory.stock.rejected.v1": [order_rejected],
    "conveyor.inventory.stock.released.v1": [order_released],
    "conveyor.inventory.stock.changed.v1": [stock_changed],
    "conveyor.shipping.shipment.packed.v1": [shipment_moved],
    "conveyor.shipping.shipment.dispatched.v1": [shipment_moved],
    "conveyor.shipping.shipment.delivered.v1": [shipment_moved],
}
