"""Second-factor devices in the back office.

django-otp's own admin pages show an authenticator's secret key (and its QR code) and the
backup codes themselves: whoever reads them can make the user's codes. These replace them
(accounts comes after the django-otp apps in INSTALLED_APPS, so this module runs last): an
administrator sees whose devices exist, whether they are confirmed and when they were last
used, and can delete one, which is how a lost phone is reset. Nothing here shows, makes or
edits a secret.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import Count, QuerySet
from django.http import HttpRequest
from django_otp.models import Device
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts import services

admin.site.unregister(TOTPDevice)
admin.site.unregister(StaticDevice)

DEVICE_FIELDS: tuple[str, ...] = ("user", "name", "confirmed", "created_at", "last_used_at")


class DeviceAdmin(admin.ModelAdmin):
    list_display = DEVICE_FIELDS
    list_select_related = ("user",)
    list_filter = ("confirmed",)
    search_fields = ("user__username", "user__first_name", "user__last_name")
    ordering = ("user__username", "-pk")
    # An explicit list of what is shown: never the key or the tokens.
    fields = DEVICE_FIELDS
    readonly_fields = DEVICE_FIELDS

    def has_add_permission(self, request: HttpRequest) -> bool:
        # A device made here would have a secret the administrator chose or saw.
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def delete_model(self, request: HttpRequest, obj: Device) -> None:
        services.device_delete(device=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        for device in queryset:
            services.device_delete(device=device)


@admin.register(TOTPDevice)
class AuthenticatorAdmin(DeviceAdmin):
    pass


@admin.register(StaticDevice)
class BackupCodesAdmin(DeviceAdmin):
    list_display = (*DEVICE_FIELDS, "codes_left")
    fields = (*DEVICE_FIELDS, "codes_left")
    readonly_fields = fields

    def get_queryset(self, request: HttpRequest) -> QuerySet[StaticDevice]:
        return super().get_queryset(request).annotate(codes_left=Count("token_set"))

    @admin.display(description="backup codes left", ordering="codes_left")
    def codes_left(self, device: Any) -> int:
        return int(device.codes_left)
