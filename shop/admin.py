"""Staff views of the shop: the catalogue, orders (with a cancel action), and the event bus tables."""

from django.contrib import admin, messages

from eventbus.admin import InboxMessageAdmin, OutboxMessageAdmin

from . import services
from .models import InboxMessage, Order, OrderHistory, OrderLine, OutboxMessage, Product


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    list_display = ("sku", "name", "price", "available", "active")
    list_filter = ("active",)
    search_fields = ("sku", "name")
    # `available` is inventory's number as heard over Kafka; editing it here would only be overwritten.
    readonly_fields = ("available",)


class OrderLineInline(admin.TabularInline):
    model = OrderLine
    extra = 0
    can_delete = False
    readonly_fields = ("sku", "name", "quantity", "unit_price")

    def has_add_permission(self, request, obj=None):
        return False


class OrderHistoryInline(admin.TabularInline):
    model = OrderHistory
    extra = 0
    can_delete = False
    readonly_fields = ("status", "at", "event_id")

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):
    list_display = ("id", "status", "email", "name", "total", "created_at")
    list_filter = ("status",)
    search_fields = ("=id", "email", "name")
    date_hierarchy = "created_at"
    # Status moves only through the services (the saga and its cancel protocol), so it is read-only here too.
    readonly_fields = ("id", "status", "total", "token_hash", "session_key", "rejection", "created_at", "updated_at")
    inlines = (OrderLineInline, OrderHistoryInline)
    actions = ("cancel_selected_orders",)

    @admin.action(description="Request the cancel of selected orders")
    def cancel_selected_orders(self, request, queryset):
        requested, refused = 0, []
        for order_id in queryset.values_list("id", flat=True):
            try:
                services.request_cancel(order_id=order_id, reason="cancelled by staff")
                requested += 1
            except services.NotCancellable:
                refused.append(str(order_id))
        if requested:
            self.message_user(
                request,
                f"Cancel requested for {requested} order(s); each ends cancelled once shipping confirms.",
                messages.SUCCESS,
            )
        if refused:
            self.message_user(
                request, f"{len(refused)} order(s) are past cancelling: {', '.join(refused[:10])}", messages.WARNING
            )


admin.site.register(OutboxMessage, OutboxMessageAdmin)
admin.site.register(InboxMessage, InboxMessageAdmin)
