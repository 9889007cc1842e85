from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from audit.models import PatientDataAccess
from core.pagination import CappedPaginator

# The trail grows by every page view of patient details: the admin counts at most this
# many rows of it (the app's own audit page, /audit/, filters it by person and day).
COUNT_CAP = 10_000


class _CappedAdminPaginator(CappedPaginator):
    """The admin's paginator, counting at most COUNT_CAP rows: an exact count read the
    whole trail on every visit."""

    def __init__(self, object_list: Any, per_page: int, *args: Any, **kwargs: Any) -> None:
        super().__init__(object_list, per_page, cap=COUNT_CAP)


@admin.register(PatientDataAccess)
class PatientDataAccessAdmin(admin.ModelAdmin):
    """Read-only: administrators may look, nobody may alter the trail. No date hierarchy
    and no full count: both read the whole trail on every visit."""

    list_display = ["at", "user", "source", "action", "referral_id", "ip_address"]
    list_filter = ["action", "source"]
    search_fields = ["=referral_id", "user__username"]
    list_select_related = ["user"]
    paginator = _CappedAdminPaginator
    show_full_result_count = False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
