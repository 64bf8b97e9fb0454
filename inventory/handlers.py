"""Inventory's reactions to other apps' events, registered in one place."""

from eventbus.envelope import Envelope

from . import services

EXPIRY_REASON = "reservation expired"  # the reason shipping echoes for a cancel that the expiry sweep asked for


def reserve_for_orders(events: list[Envelope]) -> None:
    services.reserve_stock([(e.data["order_id"], e.data["lines"], e) for e in events])


def release_for_cancelled_shipments(events: list[Envelope]) -> None:
    """Shipping confirmed a cancel: the order will never be dispatched, so its units go back."""
    for event in events:
        reason = "expired" if event.data["reason"] == EXPIRY_REASON else "cancelled"
        services.release_reservation(event.data["order_id"], reason=reason, caused_by=event)


def consume_for_dispatched_shipments(events: list[Envelope]) -> None:
    services.consume_reservations([(e.data["order_id"], e) for e in events])


HANDLERS = {
    "conveyor.shop.order.placed.v1": reserve_for_orders,
    "conveyor.shipping.shipment.cancelled.v1": release_for_cancelled_shipments,
    "conveyor.shipping.shipment.dispatched.v1": consume_for_dispatched_shipments,
}
