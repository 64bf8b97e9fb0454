"""Shipping's reactions to other apps' events."""

from eventbus.envelope import Envelope

from . import services


def note_facts(events: list[Envelope]) -> None:
    """OrderPlaced and StockReserved (one function, so a run may mix them)."""
    services.note_saga_facts([_fact(event) for event in events])


def _fact(event: Envelope) -> services.SagaFact:
    if event.type == ORDER_PLACED:
        return services.SagaFact(event.data["order_id"], event, address=(event.data["name"], event.data["address"]))
    return services.SagaFact(event.data["order_id"], event, stock_reserved=True)


def decide_cancels(events: list[Envelope]) -> None:
    """Cancel requests, from the shop (a customer or staff) and from inventory (an expired reservation)."""
    services.decide_cancels([_cancel_request(event) for event in events])


def _cancel_request(event: Envelope) -> services.CancelRequest:
    if event.type == RESERVATION_EXPIRED:
        return services.CancelRequest(event.data["order_id"], EXPIRY_REASON, event)
    return services.CancelRequest(event.data["order_id"], event.data["reason"], event)


ORDER_PLACED = "conveyor.shop.order.placed.v1"
STOCK_RESERVED = "conveyor.inventory.stock.reserved.v1"
CANCEL_REQUESTED = "conveyor.shop.order.cancel_requested.v1"
RESERVATION_EXPIRED = "conveyor.inventory.reservation.expired.v1"
EXPIRY_REASON = "reservation expired"  # inventory releases such a cancel's units as "expired"
HANDLERS = {
    ORDER_PLACED: note_facts,
    STOCK_RESERVED: note_facts,
    CANCEL_REQUESTED: decide_cancels,
    RESERVATION_EXPIRED: decide_cancels,
}
