"""Live pushes to browsers over the channel layer: an order's page and the storefront's availability.

A push is sent only after the write commits (`on_commit`), carries the fresh state (never a diff, so a
duplicate or a late frame is harmless) and can never break the caller: with Redis away, the write stands
and the push is logged and dropped. The browser asks for a fresh snapshot whenever it reconnects.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import uuid

from channels.layers import get_channel_layer

from eventbus.outbox import on_commit_once
from eventbus.push import BackgroundPusher

DB = "shop"
STOCK_GROUP = "stock"
log = logging.getLogger("shop.live")


def order_group(order_id) -> str:
    """The channel-layer group of one order's followers (group names allow only [a-z0-9._-])."""
    return f"order.{_uuid_hex(order_id)}"


def _uuid_hex(order_id) -> str:
    return (order_id if isinstance(order_id, uuid.UUID) else uuid.UUID(str(order_id))).hex


class _Pending(threading.local):
    """What this thread's open transactions want to push once they commit.

    Many status changes in one transaction (a consumer's batch) become one flush with one channel-layer
    round. A rolled-back savepoint may leave an id behind; a later flush then pushes that order's current
    state again, which is harmless because frames are snapshots.
    """

    def __init__(self) -> None:
        self.orders: set[str] = set()
        self.stock: dict[str, int] = {}


_pending = _Pending()


def announce_order(order_id) -> None:
    """Push the order's fresh state to its followers once the current `shop` transaction commits."""
    _pending.orders.add(str(order_id))
    on_commit_once(_flush, using=DB)


def announce_stock(sku: str, available: int) -> None:
    """Push a product's availability to every storefront page once the current transaction commits."""
    _pending.stock[sku] = available
    on_commit_once(_flush, using=DB)


def _flush() -> None:
    order_ids, _pending.orders = _pending.orders, set()
    stock, _pending.stock = _pending.stock, {}
    if not order_ids and not stock:
        return  # nothing left: what was announced went out with an earlier commit
    try:
        messages = _order_messages(order_ids)
        if stock:
            changes = [{"sku": sku, "available": n} for sku, n in sorted(stock.items())]
            messages.append((STOCK_GROUP, {"type": "stock.update", "products": changes}))
        _send(messages)
    except Exception as exc:  # Redis away, layer misconfigured...: the committed write must stand
        log.warning("live push of %s order(s) and %s stock change(s) failed: %r", len(order_ids), len(stock), exc)


def _order_messages(order_ids: set[str]) -> list[tuple[str, dict]]:
    from .selectors import orders_as_dicts  # late: selectors import the models, live is imported by services

    return [(order_group(o["id"]), {"type": "order.update", "order": o}) for o in orders_as_dicts(order_ids)]


pusher = BackgroundPusher("shop-live")


def _send(messages: list[tuple[str, dict]]) -> None:
    if not messages:
        return
    layer = get_channel_layer()
    if layer is None:
        return

    async def send_all() -> None:
        await asyncio.gather(*(layer.group_send(group, message) for group, message in messages))

    pusher.submit(send_all)  # from the pusher's own loop: the committed write never waits for Redis
