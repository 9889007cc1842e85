"""Django admin pages whose change form shows patient details."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import admin
from django.http import HttpRequest, HttpResponse


class PatientDetailsAdmin(admin.ModelAdmin):
    """A model admin whose change form shows a patient's details (a referral, a letter
    about one, a task naming one): opening it is a read, as on the app's own page, and
    `audit_opened` records it. Only a GET (a save's POST is recorded as the change it
    makes) of an object the user may see."""

    # Each subclass says how the read is recorded: (request, the object opened).
    audit_opened: Callable[[HttpRequest, Any], None]

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        if request.method == "GET":
            obj = self.get_object(request, object_id)
            if obj is not None and self.has_view_or_change_permission(request, obj):
                self.audit_opened(request, obj)
        return super().change_view(request, object_id, form_url, extra_context)
