"""Routes: each bounded app brings its own; config only composes them."""

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("", include("config.ops_urls")),
    path("dashboard/", include("dashboard.urls")),
    path("", include("shop.urls")),
]
