from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from core.admin import deleting_parent
from partners.models import (
    LettersOptOutChange,
    Organization,
    Provider,
    ProviderRemoval,
    StaffMember,
    TierChange,
)


class StaffInline(admin.TabularInline):
    model = StaffMember
    extra = 0
    fields = ["first_name", "last_name", "role", "phone", "email"]


class LettersOptOutChangeInline(admin.TabularInline):
    model = LettersOptOutChange
    extra = 0
    readonly_fields = ["opted_out", "changed_by", "changed_at"]
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # History is written by organization_set_letters_opt_out only.
        return False


@admin.register(Organization)
class OrganizationAdmin(admin.ModelAdmin):
    list_display = ["name", "city", "state", "phone", "fax", "letters_opt_out"]
    list_filter = ["state", "letters_opt_out"]
    search_fields = ["name", "npi", "city"]
    # Set on the office's own page, which stamps the date and keeps the history.
    readonly_fields = ["letters_opt_out", "letters_opt_out_at", "letters_opt_out_by"]
    inlines = [StaffInline, LettersOptOutChangeInline]


class TierChangeInline(admin.TabularInline):
    model = TierChange
    extra = 0
    readonly_fields = ["from_tier", "to_tier", "reason", "changed_by", "changed_at"]
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # History is written by provider_set_tier only.
        return False


@admin.register(Provider)
class ProviderAdmin(admin.ModelAdmin):
    list_display = [
        "last_name",
        "first_name",
        "credential",
        "npi",
        "specialty",
        "status",
        "tier",
        "owner",
    ]
    list_filter = ["status", "tier", "in_network", "owner"]
    search_fields = ["last_name", "first_name", "npi", "specialty", "organization__name"]
    list_select_related = ["owner", "organization"]
    autocomplete_fields = ["organization"]
    readonly_fields = ["tier"]
    inlines = [TierChangeInline]


@admin.register(StaffMember)
class StaffMemberAdmin(admin.ModelAdmin):
    list_display = ["first_name", "last_name", "role", "organization", "phone"]
    list_filter = ["role"]
    search_fields = ["first_name", "last_name", "organization__name"]
    list_select_related = ["organization"]
    autocomplete_fields = ["organization"]


@admin.register(TierChange)
class TierChangeAdmin(admin.ModelAdmin):
    list_display = ["provider", "from_tier", "to_tier", "changed_by", "changed_at"]
    list_filter = ["to_tier"]
    search_fields = ["provider__last_name", "reason"]
    list_select_related = ["provider", "changed_by"]
    readonly_fields = ["provider", "from_tier", "to_tier", "reason", "changed_by", "changed_at"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Tier history says who changed a partner's tier and why: it goes only with the
        # partner, never by itself.
        return deleting_parent(request, "partners_provider") and super().has_delete_permission(
            request, obj
        )


@admin.register(ProviderRemoval)
class ProviderRemovalAdmin(admin.ModelAdmin):
    """Read-only: the record API syncs read to learn a partner is gone. Written only by
    deleting or merging a provider."""

    list_display = ["provider_id", "npi", "reason", "merged_into", "removed_at"]
    list_filter = ["reason"]
    search_fields = ["=provider_id", "=npi"]
    date_hierarchy = "removed_at"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
