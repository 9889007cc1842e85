"""Setting up and changing a user's second factor."""

from __future__ import annotations

from django.contrib.auth.models import User
from django.db import transaction
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
