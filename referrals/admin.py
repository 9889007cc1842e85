from django.contrib import admin

from referrals.models import Inquiry, Referral, ReferralEvent, SlaTarget


class EventInline(admin.TabularInline):
    model = ReferralEvent
    extra = 0
    can_delete = False
    fields = readonly_fields = [
        "kind",
        "from_status",
        "to_status",
        "from_assignee",
        "to_assignee",
        "changes",
        "actor",
        "at",
        "note",
    ]

    def has_add_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        # History is written by the referral services only.
        return False


@admin.register(Referral)
class ReferralAdmin(admin.ModelAdmin):
    list_display = ["pk", "received_at", "direction", "provider", "urgency", "channel", "status"]
    list_filter = ["status", "direction", "urgency", "channel"]
    search_fields = ["=pk", "provider__last_name", "provider__npi"]
    list_select_related = ["provider"]
    autocomplete_fields = ["provider"]
    date_hierarchy = "received_at"
    # Status moves go through the product's workflow so each writes its event.
    readonly_fields = ["status", "seen_at", "closed_at", "created_by", "created_at", "updated_at"]
    inlines = [EventInline]


@admin.register(ReferralEvent)
class ReferralEventAdmin(admin.ModelAdmin):
    list_display = ["referral", "kind", "from_status", "to_status", "actor", "at"]
    list_filter = ["kind", "to_status"]
    search_fields = ["=referral__pk"]
    list_select_related = ["referral", "actor"]
    readonly_fields = [
        "referral",
        "kind",
        "from_status",
        "to_status",
        "from_assignee",
        "to_assignee",
        "changes",
        "actor",
        "at",
        "note",
    ]

    def has_add_permission(self, request):  # type: ignore[no-untyped-def]
        return False

    def has_change_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False


@admin.register(SlaTarget)
class SlaTargetAdmin(admin.ModelAdmin):
    list_display = ["urgency", "first_contact_hours", "appointment_days"]


@admin.register(Inquiry)
class InquiryAdmin(admin.ModelAdmin):
    list_display = ["pk", "source", "status", "received_at", "referral"]
    list_filter = ["source", "status"]
    raw_id_fields = ["referral"]
