"""Live pushes to browsers over the channel layer: an order's page and the storefront's availability.

A push is sent only after the write commits (`on_commit`) and can never break the caller: with Redis away,
the write stands and the push is logged and dropped. An order's push names the order only; each socket
that follows it reads the fresh state itself (`OrderConsumer.order_changed`), so a consumer's batch reads
nothing for the many orders nobody watches, and a frame is always a snapshot (never a diff), so a
duplicate or a late one is harmless. The browser asks for a fresh snapshot whenever it reconnects.
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
        messages = [(order_group(o), {"type": "order.changed", "order_id": o}) for o in sorted(order_ids)]
        if stock:
            changes = [{"sku": sku, "available": n} for sku, n in sorted(stock.items())]
            messages.append((STOCK_GROUP, {"type": "stock.update", "products": changes}))
        _send(messages)
    except Exception as exc:  # Redis away, layer misconfigured...: the committed write must stand
        log.warning("live push of %s order(s) and %s stock change(s) failed: %r", len(order_ids), len(stock), exc)


pusher = BackgroundPusher("shop-live")
PUSH_CONCURRENCY = 16


def _send(messages: list[tuple[str, dict]]) -> None:
    if not messages:
        return
    layer = get_channel_layer()
    if layer is None:
        return

    async def send_all() -> None:
        # A few at a time: a big batch moves hundreds of orders, and Redis's pool holds 100 connections.
        for start in range(0, len(messages), PUSH_CONCURRENCY):
            chunk = messages[start : start + PUSH_CONCURRENCY]
            await asyncio.gather(*(layer.group_send(group, message) for group, message in chunk))

    pusher.submit(send_all)  # from the pusher's own loop: the committed write never waits for Redis
