"""Websockets: an order's page follows its order; storefront pages follow availability.

Frames are whole snapshots, never diffs: a client that reconnects gets the current state at once, and a
duplicate or late frame cannot leave it wrong.
"""

from __future__ import annotations

from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from eventbus.metrics import websocket_clients

from . import selectors
from .access import may_view
from .live import STOCK_GROUP, order_group

CLOSE_FORBIDDEN = 4403  # the browser script stops reconnecting on this code


class OrderConsumer(AsyncJsonWebsocketConsumer):
    """ws/orders/<uuid>/ for the order's session, `?token=<token>`, or staff; others are closed (4403)."""

    group = None

    async def connect(self):
        order_id = self.scope["url_route"]["kwargs"]["order_id"]
        allowed = await self._allowed(order_id, _query_token(self.scope))
        await self.accept()  # accept first, so that a refusal carries its close code
        if not allowed:
            await self.close(code=CLOSE_FORBIDDEN)
            return
        # Join before reading the snapshot: a change in between then arrives as a (harmless) extra frame.
        self.group = order_group(order_id)
        await self.channel_layer.group_add(self.group, self.channel_name)
        websocket_clients.labels("orders").inc()
        snapshot = await database_sync_to_async(selectors.orders_as_dicts)([order_id])
        await self.send_json({"type": "order", "order": snapshot[0]})

    async def disconnect(self, code):
        if self.group:
            websocket_clients.labels("orders").dec()
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive_json(self, content, **kwargs):
        pass  # the client only listens

    async def order_changed(self, message):
        """The order moved (shop/live.py): send its state as of now, read here rather than by the writer."""
        snapshot = await database_sync_to_async(selectors.orders_as_dicts)([message["order_id"]])
        if snapshot:
            await self.send_json({"type": "order", "order": snapshot[0]})

    @database_sync_to_async
    def _allowed(self, order_id, token: str | None) -> bool:
        order = selectors.order_with_details(order_id)
        return order is not None and may_view(
            order, session=self.scope.get("session"), user=self.scope.get("user"), token=token
        )


class StockConsumer(AsyncJsonWebsocketConsumer):
    """ws/stock/: anyone; a snapshot of every product's availability, then each change."""

    async def connect(self):
        await self.accept()
        await self.channel_layer.group_add(STOCK_GROUP, self.channel_name)
        products = await database_sync_to_async(selectors.availability)()
        await self.send_json({"type": "stock", "products": products})

    async def disconnect(self, code):
        await self.channel_layer.group_discard(STOCK_GROUP, self.channel_name)

    async def receive_json(self, content, **kwargs):
        pass

    async def stock_update(self, message):
        await self.send_json({"type": "stock", "products": message["products"]})


def _query_token(scope) -> str | None:
    values = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("token")
    return values[0] if values else None
