"""API tokens in the back office: listed and revoked (deleted), never shown or made here.
Tokens are made by `manage.py create_api_token`, which prints the token once."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest
from knox.models import AuthToken

admin.site.unregister(AuthToken)


@admin.register(AuthToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ("key_start", "user", "created", "expiry")
    list_select_related = ("user",)
    list_filter = ("expiry",)
    search_fields = ("user__username",)
    ordering = ("-created",)
    fields = ("key_start", "user", "created", "expiry")
    readonly_fields = ("key_start", "user", "created", "expiry")

    @admin.display(description="token starts")
    def key_start(self, token: AuthToken) -> str:
        # The first characters only, to tell tokens apart (the user sees the same start
        # in what they were given); the stored digest is never shown.
        return f"{token.token_key[:9]}…"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: AuthToken | None = None) -> bool:
        return False
