"""Users and their second-factor devices in the back office.

Staff who leave are deactivated, not deleted: a user whose name is on any history
(services.user_history) cannot be deleted here, and the "Deactivate" action (or unticking
"Active" on their page) signs them out everywhere while every row keeps their name.

django-otp's own admin pages show an authenticator's secret key (and its QR code) and the
backup codes themselves: whoever reads them can make the user's codes. These replace them
(accounts comes after the django-otp apps in INSTALLED_APPS, so this module runs last): an
administrator sees whose devices exist, whether they are confirmed and when they were last
used, and can delete one, which is how a lost phone is reset. Nothing here shows, makes or
edits a secret.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.actions import delete_selected as delete_selected_confirmed
from django.contrib.admin.utils import unquote
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.models import User
from django.db.models import Count, Q, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils.html import format_html
from django.utils.text import get_text_list
from django_otp.models import Device
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts import services
from accounts.forms import AdminPasswordChangeForm, UserChangeForm
from core.roles import Role, can_hand_over_work, prefetched_role
from core.templatetags.people import person

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


admin.site.unregister(User)

# Users in several role groups named on the user list (the first, by username).
SEVERAL_ROLES_NAMED = 20


def _history_text(history: dict[str, int]) -> str:
    return get_text_list([f"{count} {name}" for name, count in history.items()], "and")


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    actions = ["deactivate", "delete_selected"]
    # One role group per user.
    form = UserChangeForm
    # Setting a password (or turning password sign-in off) revokes the user's API tokens.
    change_password_form = AdminPasswordChangeForm

    def construct_change_message(
        self, request: HttpRequest, form: Any, formsets: Any, add: bool = False
    ) -> list[dict[str, Any]]:
        # Django's password page calls this with the saved form, right before its own
        # "Password changed successfully.": the one place that knows what was revoked.
        if isinstance(form, AdminPasswordChangeForm) and (revoked := form.api_tokens_revoked):
            self.message_user(
                request,
                f"Their {revoked} API token{'s were' if revoked != 1 else ' was'} revoked: "
                f"a script or EHR using {'them' if revoked != 1 else 'it'} needs a new one.",
                messages.SUCCESS,
            )
        return super().construct_change_message(request, form, formsets, add)

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        # For the "Hand over work" button of templates/admin/auth/user/change_form.html.
        extra_context = {
            **(extra_context or {}),
            "can_hand_over_work": can_hand_over_work(request.user),
        }
        return super().change_view(request, object_id, form_url, extra_context)

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        # Users saved before the form refused a second role group: the administrator is
        # told who they are until each has one role (two queries, on this page only; not
        # again beside an action's own messages).
        if request.method == "GET":
            self._say_several_roles(request)
        return super().changelist_view(request, extra_context)

    def _say_several_roles(self, request: HttpRequest) -> None:
        several = (
            User.objects.filter(is_superuser=False)
            .annotate(roles=Count("groups", filter=Q(groups__name__in=Role.ALL)))
            .filter(roles__gt=1)
            .prefetch_related("groups")
            .order_by("username")[:SEVERAL_ROLES_NAMED]
        )
        if named := [f"{user.username} ({prefetched_role(user)})" for user in several]:
            self.message_user(
                request,
                "In several role groups, so holding only the permissions of the least "
                f"privileged one: {get_text_list(named, 'and')}. Give each user one role.",
                messages.WARNING,
            )

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        fields = tuple(super().get_readonly_fields(request, obj))
        if obj is not None and obj.pk == request.user.pk:
            # As the Deactivate action refuses: the only administrator, unticking it by
            # mistake, would lock the practice out of the back office.
            return (*fields, "is_active")
        return fields

    @admin.action(permissions=["change"], description="Deactivate selected users (sign them out)")
    def deactivate(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        users = [user for user in queryset if user.pk != request.user.pk]
        if len(users) < len(queryset):
            self.message_user(request, "You cannot deactivate yourself.", messages.ERROR)
        for user in users:
            services.user_deactivate(user=user)
        if users:
            self.message_user(
                request,
                f"Deactivated and signed out: {get_text_list([u.username for u in users], 'and')}. "
                "Everything they did keeps their name.",
                messages.SUCCESS,
            )
        for user in users:
            self._say_held_work(request, user)

    def save_model(self, request: HttpRequest, obj: User, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        if change and "is_active" in form.changed_data and not obj.is_active:
            # Unticking "Active" is deactivating as the action does it: a phone or an API
            # token must not start working again if the account is reactivated one day.
            services.user_deactivate(user=obj)
            self._say_held_work(request, obj)

    def _say_held_work(self, request: HttpRequest, user: User) -> None:
        """Their current work stays theirs until handed over: say what they hold, and where
        to hand it over."""
        if held := services.user_current_work(user=user).in_words():
            self.message_user(
                request,
                format_html(
                    '{} still holds {}: <a href="{}">hand it over</a>.',
                    person(user),
                    get_text_list(held, "and"),
                    reverse("accounts:user_handover", args=[user.pk]),
                ),
                messages.WARNING,
            )

    @admin.action(permissions=["delete"], description="Delete selected users")
    def delete_selected(self, request: HttpRequest, queryset: QuerySet[User]) -> Any:
        with_history = {user: services.user_history(user=user) for user in queryset}
        refused = [
            f"{user.username} is named on {_history_text(h)}"
            for user, h in with_history.items()
            if h
        ]
        if refused:
            self.message_user(request, self._refusal("; ".join(refused)), messages.ERROR)
            return None
        return delete_selected_confirmed(self, request, queryset)

    def delete_view(
        self, request: HttpRequest, object_id: str, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        user = self.get_object(request, unquote(object_id))
        history = services.user_history(user=user) if user is not None else {}
        if user is not None and history:
            self.message_user(
                request,
                self._refusal(f"{user.username} is named on {_history_text(history)}"),
                messages.ERROR,
            )
            return HttpResponseRedirect(reverse("admin:auth_user_change", args=[user.pk]))
        return super().delete_view(request, object_id, extra_context)

    @staticmethod
    def _refusal(who: str) -> str:
        return (
            f"Not deleted: {who}. Deleting would take the name off the practice's history. "
            "Use the Deactivate action instead: they can no longer sign in, and the history "
            "keeps their name."
        )
