"""Shipping's reactions to other apps' events."""

from eventbus.envelope import Envelope

from . import services


def remember_address(event: Envelope) -> None:
    services.note_order_placed(event.data["order_id"], event.data["name"], event.data["address"], caused_by=event)


def prepare_shipment(event: Envelope) -> None:
    services.note_stock_reserved(event.data["order_id"], caused_by=event)


def stop_cancelled_shipment(event: Envelope) -> None:
    services.cancel_shipment(event.data["order_id"])


HANDLERS = {
    "conveyor.shop.order.placed.v1": [remember_address],
    "conveyor.inventory.stock.reserved.v1": [prepare_shipment],
    "conveyor.shop.order.cancelled.v1": [stop_cancelled_shipment],
}
