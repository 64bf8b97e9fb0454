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


def stop_cancelled_shipment(event: Envelope) -> None:
    services.cancel_shipment(event.data["order_id"])


ORDER_PLACED = "conveyor.shop.order.placed.v1"
STOCK_RESERVED = "conveyor.inventory.stock.reserved.v1"
HANDLERS = {
    ORDER_PLACED: [note_fact],
    STOCK_RESERVED: [note_fact],
    "conveyor.shop.order.cancelled.v1": [stop_cancelled_shipment],
}
BATCH_HANDLERS = dict.fromkeys((ORDER_PLACED, STOCK_RESERVED), note_facts)
