"""API tokens: made for a user, shown once, stored only as a hash (django-rest-knox)."""

from __future__ import annotations

from datetime import timedelta

from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import transaction
from knox.models import AuthToken

# Longer-lived credentials than a year are a risk nobody reviews; make a new one instead.
MAX_TOKEN_DAYS = 365


def check_api_token_create(*, user: User, days: int) -> None:
    if not user.is_active:
        raise ValidationError(f"{user.get_username()} is not active: activate them first.")
    if not 1 <= days <= MAX_TOKEN_DAYS:
        raise ValidationError(f"A token lasts from 1 to {MAX_TOKEN_DAYS} days, not {days}.")


@transaction.atomic
def api_token_create(*, user: User, days: int) -> tuple[AuthToken, str]:
    """A token acting as `user`, with that user's role and permissions, expiring after
    `days`. Returns the row and the raw token, which exists only in this return value:
    the database keeps its hash."""
    check_api_token_create(user=user, days=days)
    return AuthToken.objects.create(user=user, expiry=timedelta(days=days))
