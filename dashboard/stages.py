"""Which stage an event puts an order in, and whether a card may move there.

Events of one order travel on different topics, so they may reach the dashboard out of order, and a
redelivered or replayed event may come twice. A card therefore only ever moves forward along the main
path, or to an exit; an exit and `delivered` are final.
"""

from __future__ import annotations

from .models import EXITS, MAIN_PATH, TERMINAL

STAGE_OF_TYPE = {
    "conveyor.shop.order.placed.v1": "placed",
    "conveyor.inventory.stock.reserved.v1": "reserved",
    "conveyor.inventory.stock.rejected.v1": "rejected",
    "conveyor.shipping.shipment.packed.v1": "packed",
    "conveyor.shipping.shipment.dispatched.v1": "dispatched",
    "conveyor.shipping.shipment.delivered.v1": "delivered",
    "conveyor.shipping.shipment.cancelled.v1": "cancelled",  # shipping confirmed the cancel
}


# The saga's decisions, as bits of a card's `facts`: a card remembers which it saw, in any order.
RESERVED, REJECTED, RELEASED, DISPATCHED, DELIVERED, CANCEL_CONFIRMED, CANCEL_REFUSED = (1 << n for n in range(7))
FACT_OF_TYPE = {
    "conveyor.inventory.stock.reserved": RESERVED,
    "conveyor.inventory.stock.rejected": REJECTED,
    "conveyor.inventory.stock.released": RELEASED,
    "conveyor.shipping.shipment.dispatched": DISPATCHED,
    "conveyor.shipping.shipment.delivered": DELIVERED,
    "conveyor.shipping.shipment.cancelled": CANCEL_CONFIRMED,
    "conveyor.shipping.shipment.cancel_refused": CANCEL_REFUSED,
}
SHIPPED = DISPATCHED | DELIVERED
# Pairs of decisions no healthy saga makes for one order, whatever order its events arrive in.
CONTRADICTIONS = (
    (CANCEL_CONFIRMED, SHIPPED, "shipping confirmed the cancel, yet the order was dispatched"),
    (CANCEL_CONFIRMED, CANCEL_REFUSED, "shipping both confirmed and refused the cancel"),
    (RELEASED, SHIPPED, "inventory released the stock, yet the order was dispatched"),
    (RESERVED, REJECTED, "inventory both reserved and rejected the order"),
    (REJECTED, SHIPPED, "inventory rejected the order, yet it was dispatched"),
)


def fact_for(event_type: str) -> int:
    """The decision bit of a versioned event type (any version), or 0."""
    return FACT_OF_TYPE.get(event_type.rsplit(".", 1)[0], 0)


def violation(facts: int) -> str:
    """How a set of decisions contradicts the saga's invariants, or "" when it does not."""
    for one, other, text in CONTRADICTIONS:
        if facts & one and facts & other:
            return text
    return ""


def stage_for(event_type: str) -> str | None:
    """The stage of a versioned event type (any version), or None when the type moves no card."""
    if event_type in STAGE_OF_TYPE:
        return STAGE_OF_TYPE[event_type]
    base = event_type.rsplit(".", 1)[0]
    for known, stage in STAGE_OF_TYPE.items():
        if known.rsplit(".", 1)[0] == base:
            return stage
    return None


def should_move(current: str | None, target: str) -> bool:
    """May a card in `current` (None: no card yet) move to `target`?"""
    if current is None:
        return True
    if current in TERMINAL or current == target:
        return False
    if target in EXITS:
        return True
    return MAIN_PATH.index(target) > MAIN_PATH.index(current)
