"""Admin building blocks for each app's event-bus tables (each app registers its own concrete models)."""

from django.contrib import admin


class ReadOnlyAdmin(admin.ModelAdmin):
    """Bookkeeping: to look at, never to edit by hand."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class OutboxMessageAdmin(ReadOnlyAdmin):
    list_display = ("position", "event_type", "topic", "key", "created_at", "sent_at")
    list_filter = ("event_type",)
    search_fields = ("key", "event_id")
    exclude = ("value",)
    readonly_fields = ("payload",)

    @admin.display(description="value (JSON data)")
    def payload(self, obj):
        return bytes(obj.value).decode(errors="replace")


class InboxMessageAdmin(ReadOnlyAdmin):
    list_display = ("event_id", "group", "event_type", "handled_at")
    list_filter = ("event_type",)
    search_fields = ("event_id",)
