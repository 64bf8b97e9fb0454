from django.contrib import admin, messages

from eventbus.admin import OutboxMessageAdmin, ReadOnlyAdmin

from . import dead_letters
from .models import DeadLetter, EventLog, OrderCard, OutboxMessage


@admin.register(DeadLetter)
class DeadLetterAdmin(ReadOnlyAdmin):
    list_display = ("seq", "original_topic", "original_partition", "original_offset", "reason", "group", "status")
    list_display_links = ("seq", "original_topic")
    list_filter = ("status", "reason", "group", "original_topic")
    search_fields = ("subject", "event_type", "error")
    readonly_fields = [f.name for f in DeadLetter._meta.fields if f.name not in ("key", "value")]
    exclude = ("key", "value")
    actions = ("replay", "discard")

    def has_view_permission(self, request, obj=None):
        return request.user.has_perm("dashboard.view_deadletter") or self.has_change_permission(request, obj)

    def has_change_permission(self, request, obj=None):
        # The model permission, as for any model: replay and discard need it; every field stays read-only.
        return request.user.has_perm("dashboard.change_deadletter")

    @admin.action(description="Replay the selected dead letters on their original topic", permissions=["change"])
    def replay(self, request, queryset):
        done = dead_letters.replay(queryset.values_list("pk", flat=True), request.user)
        self.message_user(request, f"Replayed {len(done)} dead letter(s).", messages.SUCCESS)

    @admin.action(description="Discard the selected dead letters", permissions=["change"])
    def discard(self, request, queryset):
        done = dead_letters.discard(queryset.values_list("pk", flat=True), request.user)
        self.message_user(request, f"Discarded {len(done)} dead letter(s).", messages.SUCCESS)


@admin.register(EventLog)
class EventLogAdmin(ReadOnlyAdmin):
    list_display = ("seq", "kind", "event_type", "subject", "topic", "partition", "offset", "time")
    list_filter = ("kind", "event_type", "topic")
    search_fields = ("subject", "event_id", "correlation_id", "order_id")


@admin.register(OrderCard)
class OrderCardAdmin(ReadOnlyAdmin):
    list_display = ("order_id", "stage", "stage_since", "placed_at", "events", "last_seq")
    list_filter = ("stage",)
    search_fields = ("order_id",)


admin.site.register(OutboxMessage, OutboxMessageAdmin)
