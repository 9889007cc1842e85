"""Who must give a second factor at sign-in, and whether this session has given it.

Managers and administrators see every patient's details and can change who sees what, so
with TWO_FACTOR_REQUIRED (the default) they set up an authenticator app before they can use
the app at all. Anyone else who has set one up is asked for it too. The answer is kept in
the session (one device lookup per sign-in, not per page), tied to the user it was made for,
and a "not needed" answer is checked against the user's role on every page, so a promotion
takes effect at once rather than at the next sign-in.
"""

from __future__ import annotations

from base64 import b32encode

from django.conf import settings
from django.contrib.auth.models import User
from django.contrib.sessions.backends.base import SessionBase
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice

from core.roles import Role, user_roles

SESSION_KEY = "_two_factor"
VERIFIED = "verified"
NOT_NEEDED = "not-needed"

# What an administrator or a manager can do is what an attacker with a guessed password
# would most like to do.
REQUIRED_ROLES = frozenset({Role.MANAGER, Role.ADMINISTRATOR})


def required_for(user: User) -> bool:
    """Must this user set up a second factor before using the app?"""
    if not settings.TWO_FACTOR_REQUIRED:
        return False
    # Any role the user holds: the Administrator group beside Liaison gives every permission.
    return user.is_superuser or user.is_staff or bool(user_roles(user) & REQUIRED_ROLES)


def authenticator(user: User) -> TOTPDevice | None:
    """The user's confirmed authenticator app, if they have set one up."""
    return TOTPDevice.objects.filter(user=user, confirmed=True).order_by("-pk").first()


def backup_codes_left(user: User) -> int:
    return StaticDevice.objects.filter(user=user, confirmed=True, token_set__isnull=False).count()


def app_label(user: User) -> str:
    """What the authenticator app lists this account as (OTP_TOTP_ISSUER, then the login)."""
    return f"{settings.OTP_TOTP_ISSUER}: {user.get_username()}"


def secret_for_typing(device: TOTPDevice) -> str:
    """The secret as an app asks for it when the QR code cannot be scanned: base32, in
    groups of four."""
    secret = b32encode(device.bin_key).decode()
    return " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))


def _state(session: SessionBase, user: User) -> str | None:
    value = session.get(SESSION_KEY, "")
    state, _, owner = value.partition(":")
    return state if owner == str(user.pk) else None


def is_verified(session: SessionBase, user: User) -> bool:
    return _state(session, user) == VERIFIED


def mark_verified(session: SessionBase, user: User) -> None:
    """This session has given the second factor. A new session key, as after signing in:
    a key seen before the second factor must not carry the rights that come after it."""
    session.cycle_key()
    session[SESSION_KEY] = f"{VERIFIED}:{user.pk}"


def second_factor_due(session: SessionBase, user: User) -> str | None:
    """ "verify" or "setup" if this session must give or set up a second factor before
    anything else, None if it may go on.

    Asked on every request. A verified session stays verified: the device is not looked up
    again (an administrator who removes it ends the user's sessions instead, see
    services.device_delete). A session that needed none is asked again as soon as the user
    must have one (an administrator promoted them while they were signed in); a demoted
    user is never asked. required_for reads the role along
    with the permissions, in the one query a page makes anyway (core.auth.load_access,
    cached on the user object for the request), so this costs no query of its own."""
    state = _state(session, user)
    if state == VERIFIED:
        return None
    if state == NOT_NEEDED and not required_for(user):
        return None
    if TOTPDevice.objects.filter(user=user, confirmed=True).exists():
        return "verify"
    if required_for(user):
        return "setup"
    session[SESSION_KEY] = f"{NOT_NEEDED}:{user.pk}"
    return None
