"""API tokens: made by a command that prints them once, stored hashed, expiring, listed
and revoked in the admin, and never written to a log."""

from __future__ import annotations

import logging
from datetime import timedelta
from io import StringIO
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from knox.models import AuthToken
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.test import APIRequestFactory

from core.factories import UserFactory
from core.roles import Role
from interop.authentication import ApiTokenAuthentication as TokenAuthentication

pytestmark = pytest.mark.django_db


def _create(*args: str) -> str:
    out = StringIO()
    call_command("create_api_token", *args, stdout=out)
    return out.getvalue()


def _authenticate(raw: str) -> Any:
    request = APIRequestFactory().get("/", HTTP_AUTHORIZATION=f"Bearer {raw}")
    return TokenAuthentication().authenticate(request)


def test_the_command_prints_a_token_once_and_stores_only_its_hash(manager: User) -> None:
    output = _create("manager", "--days", "7")
    raw = output.strip().splitlines()[-1]
    assert raw.startswith("rcrm_") and len(raw) == 5 + 64
    token = AuthToken.objects.get(user=manager)
    assert raw not in (token.digest, token.token_key)
    assert token.expiry is not None
    assert timedelta(days=6, hours=23) < token.expiry - timezone.now() <= timedelta(days=7)


def test_a_token_acts_as_its_user(coordinator: User) -> None:
    raw = _create("coordinator").strip().splitlines()[-1]
    user, _token = _authenticate(raw)
    assert user == coordinator
    assert user.has_perm("referrals.add_referral")


def test_the_default_lifetime_comes_from_the_settings(manager: User, settings: Any) -> None:
    _create("manager")
    token = AuthToken.objects.get(user=manager)
    assert token.expiry is not None
    expected = timedelta(days=settings.API_TOKEN_DAYS)
    assert expected - timedelta(minutes=1) < token.expiry - timezone.now() <= expected


def test_an_expired_token_is_refused_and_removed(manager: User) -> None:
    raw = _create("manager").strip().splitlines()[-1]
    AuthToken.objects.filter(user=manager).update(expiry=timezone.now() - timedelta(seconds=1))
    with pytest.raises(AuthenticationFailed):
        _authenticate(raw)
    assert not AuthToken.objects.filter(user=manager).exists()


def test_a_token_of_a_deactivated_user_is_refused(manager: User) -> None:
    raw = _create("manager").strip().splitlines()[-1]
    manager.is_active = False
    manager.save()
    with pytest.raises(AuthenticationFailed):
        _authenticate(raw)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("nobody-here",), "No user named"),
        (("manager", "--days", "0"), "from 1 to 365 days"),
        (("manager", "--days", "366"), "from 1 to 365 days"),
    ],
)
def test_the_command_refuses_what_it_cannot_do(
    manager: User, args: tuple[str, ...], message: str
) -> None:
    with pytest.raises(CommandError, match=message):
        _create(*args)
    assert not AuthToken.objects.exists()


def test_no_token_for_an_inactive_user(db: None) -> None:
    UserFactory.create(username="gone", role=Role.MANAGER, is_active=False)
    with pytest.raises(CommandError, match="not active"):
        _create("gone")


def test_a_token_is_never_logged(
    manager: User, caplog: pytest.LogCaptureFixture, api_client_for: Any
) -> None:
    caplog.set_level(logging.DEBUG)
    raw = _create("manager").strip().splitlines()[-1]
    Client(headers={"Authorization": f"Bearer {raw}x"}).get("/fhir/r4/Practitioner")
    Client(headers={"Authorization": f"Bearer {raw}"}).get("/fhir/r4/Practitioner?_count=x")
    assert raw not in caplog.text
    assert raw[:15] not in caplog.text


def test_administrators_list_tokens_without_seeing_them(
    administrator: User, manager: User, client_for: Any
) -> None:
    raw = _create("manager").strip().splitlines()[-1]
    page = client_for(administrator).get(reverse("admin:knox_authtoken_changelist"))
    assert page.status_code == 200
    text = page.content.decode()
    assert "manager" in text
    assert raw[:9] in text
    # Only the start shown: not even the part knox stores in clear to find the hash by.
    # (The hash itself is the row's key, in the links: it opens nothing.)
    assert raw not in text and raw[:15] not in text


def test_administrators_revoke_a_token_in_the_admin(
    administrator: User, manager: User, client_for: Any
) -> None:
    raw = _create("manager").strip().splitlines()[-1]
    token = AuthToken.objects.get(user=manager)
    delete = reverse("admin:knox_authtoken_delete", args=[token.pk])
    response = client_for(administrator).post(delete, {"post": "yes"})
    assert response.status_code == 302
    assert not AuthToken.objects.exists()
    with pytest.raises(AuthenticationFailed):
        _authenticate(raw)


def test_the_admin_makes_no_tokens(administrator: User, client_for: Any) -> None:
    response = client_for(administrator).get(reverse("admin:knox_authtoken_add"))
    assert response.status_code == 403
