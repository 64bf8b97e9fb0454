"""Shipping's reactions to other apps' events."""

from eventbus.envelope import Envelope

from . import services


def note_facts(events: list[Envelope]) -> None:
    """The batch handler of OrderPlaced and StockReserved (one function, so a run may mix them)."""
    services.note_saga_facts([_fact(event) for event in events])


def note_fact(event: Envelope) -> None:
    note_facts([event])


def _fact(event: Envelope) -> services.SagaFact:
    if event.type == ORDER_PLACED:
        return services.SagaFact(event.data["order_id"], event, address=(event.data["name"], event.data["address"]))
    return services.SagaFact(event.data["order_id"], event, stock_reserved=True)


def decide_cancels(events: list[Envelope]) -> None:
    """The batch handler of cancel requests, from the shop (a customer or staff) and from inventory (expiry)."""
    services.decide_cancels([_cancel_request(event) for event in events])


def decide_cancel(event: Envelope) -> None:
    decide_cancels([event])


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
    ORDER_PLACED: [note_fact],
    STOCK_RESERVED: [note_fact],
    CANCEL_REQUESTED: [decide_cancel],
    RESERVATION_EXPIRED: [decide_cancel],
}
BATCH_HANDLERS = {
    **dict.fromkeys((ORDER_PLACED, STOCK_RESERVED), note_facts),
    **dict.fromkeys((CANCEL_REQUESTED, RESERVATION_EXPIRED), decide_cancels),
}
