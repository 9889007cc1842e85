"""Expired API tokens are deleted by a nightly beat task; live and non-expiring ones stay."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.utils import timezone
from knox.models import AuthToken

from interop import tasks
from interop.services import api_token_create, api_tokens_delete_expired

pytestmark = pytest.mark.django_db


def _token(user: User, *, expiry: timedelta | None) -> AuthToken:
    token, _raw = AuthToken.objects.create(user=user, expiry=expiry)
    return token


def test_expired_tokens_are_deleted_and_live_and_non_expiring_ones_kept(
    manager: User, coordinator: User
) -> None:
    expired = _token(manager, expiry=timedelta(days=1))
    AuthToken.objects.filter(pk=expired.pk).update(expiry=timezone.now() - timedelta(seconds=1))
    live, _raw = api_token_create(user=coordinator, days=30)
    forever = _token(manager, expiry=None)
    assert api_tokens_delete_expired() == 1
    assert set(AuthToken.objects.values_list("pk", flat=True)) == {live.pk, forever.pk}


def test_a_token_is_kept_until_the_moment_it_expires(manager: User) -> None:
    token, _raw = api_token_create(user=manager, days=1)
    assert token.expiry is not None
    assert api_tokens_delete_expired(now=token.expiry) == 0
    assert api_tokens_delete_expired(now=token.expiry + timedelta(microseconds=1)) == 1
    assert not AuthToken.objects.exists()


def test_the_beat_task_deletes_expired_tokens(manager: User) -> None:
    expired = _token(manager, expiry=timedelta(days=1))
    AuthToken.objects.filter(pk=expired.pk).update(expiry=timezone.now() - timedelta(days=2))
    tasks.delete_expired_api_tokens()
    assert not AuthToken.objects.exists()


def test_beat_runs_the_token_cleanup() -> None:
    names = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert tasks.delete_expired_api_tokens.name == "interop.tasks.delete_expired_api_tokens"
    assert tasks.delete_expired_api_tokens.name in names
