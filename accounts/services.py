"""Setting up and changing a user's second factor; signing a user out everywhere; staff who
leave are deactivated, never deleted."""

from __future__ import annotations

from typing import Any

from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import User
from django.contrib.sessions.models import Session
from django.db import models, transaction
from django.db.models import ForeignObjectRel, ManyToManyRel
from django.utils import timezone
from django_otp.models import Device
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice
from knox.models import AuthToken

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


def user_history(*, user: User) -> dict[str, int]:
    """The rows that name this user and, were the user deleted, would lose the name
    (SET_NULL), stop the deletion (PROTECT: the patient-data audit trail) or vanish with it
    (the admin's own log): {"referral events": 12, "activity": 1}, empty if there are none.
    Read from the models' metadata, so a new model that points at users is counted without
    a change here. A query per such relation; only the admin's delete pages ask."""
    counts: dict[type[models.Model], int] = {}
    for relation in User._meta.get_fields(include_hidden=True):
        if not isinstance(relation, ForeignObjectRel) or isinstance(relation, ManyToManyRel):
            continue
        model = relation.related_model
        on_delete: Any = relation.on_delete
        if on_delete not in (models.SET_NULL, models.PROTECT) and model is not LogEntry:
            continue
        count = model._base_manager.filter(**{relation.field.name: user}).count()
        if count:
            counts[model] = counts.get(model, 0) + count
    return {
        str(model._meta.verbose_name if count == 1 else model._meta.verbose_name_plural): count
        for model, count in counts.items()
    }


@transaction.atomic
def user_deactivate(*, user: User) -> None:
    """Staff who leave: they can no longer sign in, are signed out everywhere, and every
    row they are named on keeps their name.

    Their API tokens go too (knox already refuses an inactive user's token, but a
    reactivated account must not find old tokens working again), and so do their
    second-factor devices: a phone that left the practice is no second factor, so someone
    who comes back sets up again. django-axes keeps its records of failed sign-ins, which
    are a security log, not a state to reset."""
    user.is_active = False
    user.save(update_fields=["is_active"])
    AuthToken.objects.filter(user=user).delete()
    TOTPDevice.objects.filter(user=user).delete()
    StaticDevice.objects.filter(user=user).delete()
    sessions_end(user=user)
