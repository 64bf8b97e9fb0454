from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.shortcuts import render

from eventbus.admin import InboxMessageAdmin, OutboxMessageAdmin, ReadOnlyAdmin

from . import services
from .models import InboxMessage, OutboxMessage, Reservation, ReservationLine, StockItem


class RestockForm(forms.Form):
    quantity = forms.IntegerField(min_value=1, max_value=100_000, help_text="units to add to each selected SKU")


@admin.register(StockItem)
class StockItemAdmin(admin.ModelAdmin):
    list_display = ("sku", "on_hand", "reserved", "available", "updated_at")
    search_fields = ("sku",)
    readonly_fields = ("on_hand", "reserved", "announce_pending", "updated_at")
    actions = ("restock",)

    def has_view_permission(self, request, obj=None):
        return request.user.has_perm("inventory.view_stockitem") or request.user.has_perm("inventory.change_stockitem")

    def has_change_permission(self, request, obj=None):
        # Restocking needs the model permission; it is an action only, so rows stay read-only.
        return request.user.has_perm("inventory.change_stockitem") and request.method == "POST" and obj is None

    def has_restock_permission(self, request):
        return request.user.has_perm("inventory.change_stockitem")

    @admin.action(description="Restock selected SKUs", permissions=["restock"])
    def restock(self, request, queryset):
        """Adds units through inventory's service, which tells the storefront with a stock event."""
        form = RestockForm(request.POST if "quantity" in request.POST else None)
        if form.is_valid():
            for item in queryset:
                services.restock(item.sku, form.cleaned_data["quantity"])
            self.message_user(request, f"Restocked {queryset.count()} SKU(s) by {form.cleaned_data['quantity']} units.")
            return None
        if "quantity" in request.POST:
            self.message_user(request, "Enter a quantity between 1 and 100000.", messages.ERROR)
        return render(
            request,
            "admin/inventory/restock.html",
            {"form": form, "items": queryset, "action_checkbox_name": ACTION_CHECKBOX_NAME, "opts": self.model._meta},
        )


class ReservationLineInline(admin.TabularInline):
    model = ReservationLine
    extra = 0
    can_delete = False
    readonly_fields = ("sku", "quantity")

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Reservation)
class ReservationAdmin(ReadOnlyAdmin):
    list_display = ("order_id", "status", "created_at", "updated_at")
    list_filter = ("status",)
    search_fields = ("order_id",)
    inlines = (ReservationLineInline,)


admin.site.register(OutboxMessage, OutboxMessageAdmin)
admin.site.register(InboxMessage, InboxMessageAdmin)
