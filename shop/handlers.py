"""The shop follows the saga: inventory's and shipping's events move its view of each order."""

from eventbus.envelope import Envelope

from . import services
from .stages import CANCEL_REFUSED, CANCEL_REQUESTED

RESERVED = "conveyor.inventory.stock.reserved.v1"
REJECTED = "conveyor.inventory.stock.rejected.v1"
EXPIRED = "conveyor.inventory.reservation.expired.v1"
STOCK_CHANGED = "conveyor.inventory.stock.changed.v1"
SHIPMENT_MOVED = (
    "conveyor.shipping.shipment.packed.v1",
    "conveyor.shipping.shipment.dispatched.v1",
    "conveyor.shipping.shipment.delivered.v1",
)
SHIPMENT_CANCELLED = "conveyor.shipping.shipment.cancelled.v1"
CANCEL_REFUSED_TYPE = "conveyor.shipping.shipment.cancel_refused.v1"


def follow_events(events: list[Envelope]) -> None:
    """Move each event's order (or product) on, in the events' order, with a few statements for the run."""
    steps = []
    for event in events:
        if event.type == STOCK_CHANGED:
            if steps:  # moves before this stock level go first
                services.follow_saga(steps)
                steps = []
            services.update_availability(event.data["sku"], event.data["available"])
        else:
            steps.append(_step(event))
    if steps:
        services.follow_saga(steps)


def _step(event: Envelope) -> services.SagaStep:
    order_id = event.data["order_id"]
    if event.type == REJECTED:
        return services.SagaStep(order_id, "rejected", event, rejection=event.data["reasons"])
    if event.type == RESERVED:
        return services.SagaStep(order_id, "reserved", event)
    if event.type == SHIPMENT_CANCELLED:  # shipping confirmed a cancel: the only way an order ends cancelled
        return services.SagaStep(order_id, "cancelled", event)
    if event.type == CANCEL_REFUSED_TYPE:
        return services.SagaStep(order_id, CANCEL_REFUSED, event)
    if event.type == EXPIRED:  # inventory asked shipping to cancel: the order shows the request too
        return services.SagaStep(order_id, CANCEL_REQUESTED, event, note="reservation expired")
    return services.SagaStep(order_id, event.type.split(".")[3], event)  # packed, dispatched, delivered


HANDLED = (RESERVED, REJECTED, EXPIRED, STOCK_CHANGED, *SHIPMENT_MOVED, SHIPMENT_CANCELLED, CANCEL_REFUSED_TYPE)
HANDLERS = dict.fromkeys(HANDLED, follow_events)  # one function, so a run may mix the types
