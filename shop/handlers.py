"""The shop follows the saga: inventory's and shipping's events move its view of each order."""

from eventbus.envelope import Envelope

from . import services

RESERVED = "conveyor.inventory.stock.reserved.v1"
REJECTED = "conveyor.inventory.stock.rejected.v1"
RELEASED = "conveyor.inventory.stock.released.v1"
STOCK_CHANGED = "conveyor.inventory.stock.changed.v1"
SHIPMENT_MOVED = (
    "conveyor.shipping.shipment.packed.v1",
    "conveyor.shipping.shipment.dispatched.v1",
    "conveyor.shipping.shipment.delivered.v1",
)


def follow_events(events: list[Envelope]) -> None:
    """Move each event's order (or product) on, in the events' order, with a few statements for the run."""
    steps = []
    for event in events:
        if event.type == STOCK_CHANGED:
            if steps:  # moves before this stock level go first
                services.follow_saga_steps(steps)
                steps = []
            services.update_availability(event.data["sku"], event.data["available"])
        elif (step := _step(event)) is not None:
            steps.append(step)
    if steps:
        services.follow_saga_steps(steps)


def follow_event(event: Envelope) -> None:
    follow_events([event])


def _step(event: Envelope) -> services.SagaStep | None:
    order_id = event.data["order_id"]
    if event.type == REJECTED:
        return services.SagaStep(order_id, "rejected", event, rejection=event.data["reasons"])
    if event.type == RELEASED:
        # Only an expired reservation moves the order: the order can no longer ship. A release after a
        # cancel is the shop's own doing.
        return services.SagaStep(order_id, "cancelled", event) if event.data["reason"] == "expired" else None
    if event.type == RESERVED:
        return services.SagaStep(order_id, "reserved", event)
    return services.SagaStep(order_id, event.type.split(".")[3], event)  # packed, dispatched, delivered


HANDLERS = {event_type: [follow_event] for event_type in (RESERVED, REJECTED, RELEASED, STOCK_CHANGED, *SHIPMENT_MOVED)}
BATCH_HANDLERS = dict.fromkeys(HANDLERS, follow_events)  # one function, so a run may mix the types
