"""Which stage an event puts an order in, and whether a card may move there (ARCHITECTURE 2).

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
