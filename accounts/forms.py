"""The code a user types from their authenticator app, or one of their backup codes; a new
password; the colleagues who take over a user's work."""

from __future__ import annotations

import time
from typing import Any

import django_otp
from django import forms
from django.contrib.auth import forms as auth_forms
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.text import get_text_list
from django_otp.models import Device
from django_otp.oath import TOTP
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.services import (
    HANDOVER_KINDS,
    api_tokens_revoke,
    handover_refusal,
    user_current_work,
)
from accounts.twofactor import app_label
from core.forms import UserChoiceField
from core.roles import Role, prefetched_role
from core.templatetags.people import person


def _normalise(code: str) -> str:
    # Apps show "123 456"; backup codes are printed in lower case and read back any way.
    return "".join(code.split()).lower()


def _is_number(code: str) -> bool:
    # isdecimal, not isdigit: "²³⁴⁵⁶⁷" are digits that int() cannot read.
    return code.isdecimal()


def _wait_message(device: Device) -> str | None:
    allowed, details = device.verify_is_allowed()
    if allowed:
        return None
    until = (details or {}).get("locked_until")
    if until is None:
        return "Too many wrong codes. Wait a little, then try again."
    when = timezone.localtime(until).strftime("%-I:%M:%S %p")
    return f"Too many wrong codes. Wait until {when}, then try again."


def _already_used(devices: list[Device], code: str) -> bool:
    """Whether `code` is one an app showed that has signed in already (a second tab, or
    the same code typed again within its 30 seconds): django-otp refuses a code it has
    accepted once, and "not right" would send the user to check their phone's clock."""
    if not _is_number(code):
        return False
    for device in devices:
        if not isinstance(device, TOTPDevice):
            continue
        totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
        totp.time = time.time()
        if totp.verify(int(code), device.tolerance) and totp.t() <= device.last_t:
            return True
    return False


class CodeForm(forms.Form):
    """Checks a code against the user's devices; a wrong code counts against the device
    (django-otp doubles the wait after each failure), so guessing is hopeless."""

    code = forms.CharField(
        label="Code",
        max_length=32,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "autocapitalize": "none"}),
    )

    def __init__(self, *args: Any, user: User, backup_codes: bool = True, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.user = user
        self.backup_codes = backup_codes
        self.device: Device | None = None
        if backup_codes:
            self.fields[
                "code"
            ].help_text = (
                "The 6-digit code your authenticator app shows now, or one of your backup codes."
            )
        else:
            self.fields["code"].help_text = "The 6-digit code your authenticator app shows now."
            self.fields["code"].widget.attrs["inputmode"] = "numeric"

    def candidates(self, code: str) -> list[Device]:
        devices: list[Device] = []
        if _is_number(code):
            devices += TOTPDevice.objects.filter(user=self.user, confirmed=True)
        if self.backup_codes:
            # A backup code is base32 and can, rarely, be all digits too.
            devices += StaticDevice.objects.filter(user=self.user, confirmed=True)
        return devices

    def clean_code(self) -> str:
        code = _normalise(self.cleaned_data["code"])
        devices = self.candidates(code)
        for device in devices:
            if (wait := _wait_message(device)) is not None:
                raise forms.ValidationError(wait)
        for device in devices:
            self.device = django_otp.verify_token(self.user, device.persistent_id, code)
            if self.device is not None:
                return code
        if _already_used(devices, code):
            raise forms.ValidationError(
                "That code has been used already. Wait for your app to show the next one "
                "(it changes every 30 seconds), then type that."
            )
        if _is_number(code):
            raise forms.ValidationError(
                "That code is not right. Type the code your app shows now (it changes every "
                "30 seconds); check that your phone's clock is set automatically."
            )
        if self.backup_codes:
            raise forms.ValidationError(
                "That is not one of your backup codes, or it has been used already."
            )
        raise forms.ValidationError("Type the 6-digit code from your authenticator app.")


class SetupForm(forms.Form):
    """The first code from a newly scanned authenticator: proves the phone has the secret."""

    code = forms.CharField(
        label="Code from the app",
        max_length=32,
        help_text="After scanning, your app shows a 6-digit code. Type it here.",
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric"}),
    )

    def __init__(self, *args: Any, device: TOTPDevice, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.device = device

    def clean_code(self) -> str:
        code = _normalise(self.cleaned_data["code"])
        if (wait := _wait_message(self.device)) is not None:
            raise forms.ValidationError(wait)
        if not _is_number(code) or not self.device.verify_token(code):
            raise forms.ValidationError(
                "That code is not right. Type the 6 digits your app shows now for "
                f"“{app_label(self.device.user)}”; if it keeps failing, check that your "
                "phone's clock is set automatically."
            )
        return code


class ColleagueChoiceField(UserChoiceField):
    """A colleague by name and role: which work a colleague can take depends on the role.
    The rows come with their groups prefetched (HandoverForm)."""

    def label_from_instance(self, obj: Any) -> str:
        role = prefetched_role(obj)
        return f"{person(obj)} ({role})" if role else person(obj)


class HandoverForm(forms.Form):
    """Who takes over a user's work: one colleague for everything, or another for a kind.

    Any user is accepted by the fields so that choosing the same user or a deactivated one
    is refused with a sentence saying so; only active colleagues are offered."""

    to_user = ColleagueChoiceField(
        queryset=User.objects.all(), label="Hand their work to", empty_label="Choose a colleague"
    )
    partners_to = ColleagueChoiceField(
        queryset=User.objects.all(),
        required=False,
        label="Partners to",
        empty_label="The same colleague",
    )
    referrals_to = ColleagueChoiceField(
        queryset=User.objects.all(),
        required=False,
        label="Open referrals to",
        empty_label="The same colleague",
    )
    tasks_to = ColleagueChoiceField(
        queryset=User.objects.all(),
        required=False,
        label="Open tasks to",
        empty_label="The same colleague",
        help_text="A partner's rekindle, annual-meeting and thank-you tasks go with the "
        "partner to its new owner.",
    )
    visits_to = ColleagueChoiceField(
        queryset=User.objects.all(),
        required=False,
        label="Planned visits to",
        empty_label="The same colleague",
    )
    events_to = ColleagueChoiceField(
        queryset=User.objects.all(),
        required=False,
        label="Upcoming events to",
        empty_label="The same colleague",
    )
    # Sent by the button of the summary: the first valid post shows what will move.
    confirmed = forms.BooleanField(required=False, widget=forms.HiddenInput)

    PER_KIND = tuple(f"{kind}_to" for kind in HANDOVER_KINDS)

    def __init__(self, *args: Any, from_user: User, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.from_user = from_user
        colleagues = list(
            User.objects.filter(is_active=True)
            .exclude(pk=from_user.pk)
            .order_by("first_name", "last_name", "username")
            .prefetch_related("groups")
        )
        for name in ("to_user", *self.PER_KIND):
            field = self.fields[name]
            assert isinstance(field, ColleagueChoiceField)
            field.shared_rows = colleagues

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        for name in ("to_user", *self.PER_KIND):
            chosen = data.get(name)
            if chosen is None:
                continue
            if problem := handover_refusal(from_user=self.from_user, to_user=chosen):
                self.add_error(name, problem)
        if self.errors:
            return data
        # Each kind the user holds goes to someone whose role can do it: a liaison takes no
        # open referrals, a coordinator plans no visits.
        held = user_current_work(user=self.from_user)
        to_user = data["to_user"]
        for kind in HANDOVER_KINDS:
            own_choice = data.get(f"{kind}_to")
            recipient = own_choice or to_user
            if not getattr(held, kind):
                continue
            problem = handover_refusal(from_user=self.from_user, to_user=recipient, kind=kind)
            if problem and own_choice:
                self.add_error(f"{kind}_to", problem)
            elif problem:
                label = self.fields[f"{kind}_to"].label
                self.add_error("to_user", f"{problem} Or choose one under “{label}”.")
        return data

    def recipients(self) -> dict[str, User]:
        """Who takes each kind of work, all kinds named."""
        to_user = self.cleaned_data["to_user"]
        return {kind: self.cleaned_data.get(f"{kind}_to") or to_user for kind in HANDOVER_KINDS}

    @property
    def is_split(self) -> bool:
        """Whether a colleague was chosen for a kind (the page then shows those choices)."""
        return any(self[name].value() for name in self.PER_KIND)


class _RevokesApiTokens:
    """A password form whose save also revokes the user's API tokens (api_tokens_revoke),
    in the same transaction: `api_tokens_revoked` says how many, for the message."""

    user: User
    api_tokens_revoked = 0

    def save(self, commit: bool = True) -> User:
        with transaction.atomic():
            user: User = super().save(commit)  # type: ignore[misc]
            if commit:
                self.api_tokens_revoked = api_tokens_revoke(user=user)
        return user


class PasswordChangeForm(_RevokesApiTokens, auth_forms.PasswordChangeForm):
    """The user's own new password (the old one asked first)."""


class AdminPasswordChangeForm(_RevokesApiTokens, auth_forms.AdminPasswordChangeForm):
    """An administrator sets a user's password, or turns password sign-in off."""


class UserChangeForm(auth_forms.UserChangeForm):
    """A user's page in the admin, whose groups box takes several: one role group at most
    (groups that are no role may be added beside it)."""

    def clean_groups(self) -> Any:
        groups = self.cleaned_data["groups"]
        names = {group.name for group in groups}
        roles = [role for role in Role.BY_PRIVILEGE if role in names]
        if len(roles) > 1:
            choice = (
                f"{roles[0]} or {roles[1]}, not both"
                if len(roles) == 2
                else f"one of {get_text_list(roles, 'or')}"
            )
            raise ValidationError(
                f"A user has one role: choose {choice}. Each role sees different patient "
                "data; a user in two would be limited to the narrower one."
            )
        return groups
