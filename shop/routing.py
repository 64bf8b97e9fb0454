from django.urls import path

from .sockets import OrderConsumer, StockConsumer

websocket_urlpatterns = [
    path("ws/orders/<uuid:order_id>/", OrderConsumer.as_asgi()),
    path("ws/stock/", StockConsumer.as_asgi()),
]
