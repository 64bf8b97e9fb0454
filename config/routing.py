"""Websocket routes: each app brings its own."""

from dashboard.routing import websocket_urlpatterns as dashboard_ws
from shop.routing import websocket_urlpatterns as shop_ws

websocket_urlpatterns = dashboard_ws + shop_ws
