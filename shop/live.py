"""Live pushes to browsers over the channel layer: an order's page and the storefront's availability.

A push is sent only after the write commits (eventbus.unit_of_work) and can never break the caller: with Redis away,
the write stands and the push is logged and dropped. An order's push names the order only; each socket
that follows it reads the fresh state itself (`OrderConsumer.order_changed`), so a consumer's batch reads
nothing for the many orders nobody watches, and a frame is always a snapshot (never a diff), so a
duplicate or a late one is harmless. The browser asks for a fresh snapshot whenever it reconnects.
"""

from __future__ import annotations

import asyncio
import logging
import uuid

from channels.layers import get_channel_layer

from eventbus.push import BackgroundPusher
from eventbus.unit_of_work import after_commit

DB = "shop"
STOCK_GROUP = "stock"
log = logging.getLogger("shop.live")


def order_group(order_id) -> str:
    """The channel-layer group of one order's followers (group names allow only [a-z0-9._-])."""
    return f"order.{_uuid_hex(order_id)}"


def _uuid_hex(order_id) -> str:
    return (order_id if isinstance(order_id, uuid.UUID) else uuid.UUID(str(order_id))).hex


def announce_order(order_id) -> None:
    """Push the order's fresh state to its followers once the current `shop` transaction commits."""
    after_commit(DB, _push, ("order", str(order_id)))


def announce_stock(sku: str, available: int) -> None:
    """Push a product's availability to every storefront page once the current transaction commits."""
    after_commit(DB, _push, ("stock", sku, available))


def _push(changes: list[tuple]) -> None:
    """Every change of one commit in one channel-layer round: each order touched, and each SKU's last level."""
    order_ids = sorted({change[1] for change in changes if change[0] == "order"})
    stock = {change[1]: change[2] for change in changes if change[0] == "stock"}
    messages = [(order_group(o), {"type": "order.changed", "order_id": o}) for o in order_ids]
    if stock:
        levels = [{"sku": sku, "available": n} for sku, n in sorted(stock.items())]
        messages.append((STOCK_GROUP, {"type": "stock.update", "products": levels}))
    try:
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
