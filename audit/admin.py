from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from audit.models import PatientDataAccess


@admin.register(PatientDataAccess)
class PatientDataAccessAdmin(admin.ModelAdmin):
    """Read-only: administrators may look, nobody may alter the trail."""

    list_display = ["at", "user", "source", "action", "referral_id", "ip_address"]
    list_filter = ["action", "source"]
    search_fields = ["=referral_id", "user__username"]
    list_select_related = ["user"]
    date_hierarchy = "at"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
