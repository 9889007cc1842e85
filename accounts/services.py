"""Setting up and changing a user's second factor, and signing a user out everywhere."""

from __future__ import annotations

from django.contrib.auth.models import User
from django.contrib.sessions.models import Session
from django.db import transaction
from django.utils import timezone
from django_otp.models import Device
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

BACKUP_CODES = 10
AUTHENTICATOR_NAME = "Authenticator app"
BACKUP_NAME = "Backup codes"


def authenticator_pending(*, user: User) -> TOTPDevice:
    """The not yet confirmed authenticator this user is setting up, made on first use.

    The same one on every visit to the set-up page until confirmed, so a reload does not
    change the QR code under a phone that has already scanned it."""
    device = TOTPDevice.objects.filter(user=user, confirmed=False).order_by("-pk").first()
    if device is None:
        device = TOTPDevice.objects.create(user=user, name=AUTHENTICATOR_NAME, confirmed=False)
    return device


@transaction.atomic
def authenticator_confirm(*, device: TOTPDevice) -> list[str]:
    """Confirm a new authenticator (its code was checked by the caller) and give the user
    a fresh set of backup codes. A previous authenticator (a replaced phone) stops working.
    Returns the backup codes, which are shown once and never again."""
    TOTPDevice.objects.filter(user=device.user).exclude(pk=device.pk).delete()
    device.confirmed = True
    device.save(update_fields=["confirmed"])
    return backup_codes_replace(user=device.user)


@transaction.atomic
def backup_codes_replace(*, user: User) -> list[str]:
    """Ten new one-time backup codes; the old ones stop working."""
    static, _ = StaticDevice.objects.get_or_create(
        user=user, name=BACKUP_NAME, defaults={"confirmed": True}
    )
    static.token_set.all().delete()
    codes = [StaticToken.random_token() for _ in range(BACKUP_CODES)]
    StaticToken.objects.bulk_create(StaticToken(device=static, token=code) for code in codes)
    return codes


@transaction.atomic
def two_factor_remove(*, user: User) -> None:
    """Turn off the second factor (when the user's role does not require one)."""
    TOTPDevice.objects.filter(user=user).delete()
    StaticDevice.objects.filter(user=user).delete()


@transaction.atomic
def device_delete(*, device: Device) -> None:
    """An administrator removes a user's authenticator or backup codes (a lost phone).

    Every session of the user ends with it: a session verified with the device must not
    outlive it. Checking the device on every request instead would cost a query per page
    for every manager; removal is rare and happens here, so the work is done here."""
    user = device.user
    device.delete()
    sessions_end(user=user)


def sessions_end(*, user: User) -> int:
    """Sign the user out on every browser. Returns how many sessions ended.

    Sessions live in the database (the default engine) without a user column, so each live
    one is decoded; with the 15-minute idle logoff there are only ever a few."""
    ended = [
        session.pk
        for session in Session.objects.filter(expire_date__gt=timezone.now()).iterator()
        if session.get_decoded().get("_auth_user_id") == str(user.pk)
    ]
    Session.objects.filter(pk__in=ended).delete()
    return len(ended)
