from django.contrib import admin

from eventbus.admin import InboxMessageAdmin, OutboxMessageAdmin, ReadOnlyAdmin

from .models import InboxMessage, OutboxMessage, Shipment


@admin.register(Shipment)
class ShipmentAdmin(ReadOnlyAdmin):
    list_display = ("order_id", "status", "name", "address_known", "stock_reserved", "updated_at")
    list_filter = ("status",)
    search_fields = ("order_id", "shipment_id", "name")


admin.site.register(OutboxMessage, OutboxMessageAdmin)
admin.site.register(InboxMessage, InboxMessageAdmin)
