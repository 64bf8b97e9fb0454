from django.urls import path

from . import views
from .api import api

app_name = "shop"

urlpatterns = [
    path("", views.product_list, name="product-list"),
    path("products/<str:sku>/", views.product_detail, name="product-detail"),
    path("cart/", views.cart_detail, name="cart"),
    path("cart/<str:sku>/", views.cart_update, name="cart-update"),
    path("cart/<str:sku>/remove/", views.cart_remove, name="cart-remove"),
    path("checkout/", views.checkout, name="checkout"),
    path("orders/", views.order_list, name="order-list"),
    path("orders/<uuid:order_id>/", views.order_detail, name="order-detail"),
    path("orders/<uuid:order_id>/cancel/", views.order_cancel, name="order-cancel"),
    path("api/", api.urls),
]
