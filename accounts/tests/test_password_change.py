"""A user changes their own password (a password they fear someone saw must not wait for an
administrator): the old one is asked for, the new one meets the same rules as everywhere,
and every other browser signed in as them is signed out while this one stays in."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse
from knox.models import AuthToken

from core.factories import DEMO_PASSWORD
from interop.services import api_token_create

pytestmark = pytest.mark.django_db

NEW = "quiet-harbor-lantern-42"


def _signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_a_liaison_changes_their_password_and_other_browsers_are_signed_out(liaison):
    here, elsewhere = _signed_in(liaison), _signed_in(liaison)
    security = here.get(reverse("accounts:security")).content.decode()
    assert reverse("accounts:password_change") in security

    response = here.post(
        reverse("accounts:password_change"),
        {"old_password": DEMO_PASSWORD, "new_password1": NEW, "new_password2": NEW},
    )

    assert response.status_code == 302
    liaison.refresh_from_db()
    assert liaison.check_password(NEW)
    followed = here.get(response.url).content.decode()
    assert "Your password was changed" in followed
    assert here.get(reverse("core:dashboard")).status_code == 200  # still signed in here
    assert elsewhere.get(reverse("core:dashboard")).status_code == 302  # signed out there


def test_a_wrong_old_password_or_a_weak_new_one_is_refused_saying_why(liaison):
    client = _signed_in(liaison)
    url = reverse("accounts:password_change")

    wrong_old = client.post(
        url, {"old_password": "guess", "new_password1": NEW, "new_password2": NEW}
    ).content.decode()
    weak = client.post(
        url,
        {"old_password": DEMO_PASSWORD, "new_password1": "12345678", "new_password2": "12345678"},
    ).content.decode()
    mismatch = client.post(
        url, {"old_password": DEMO_PASSWORD, "new_password1": NEW, "new_password2": NEW + "x"}
    ).content.decode()

    assert "Your old password was entered incorrectly" in wrong_old
    assert "This password is too common" in weak or "entirely numeric" in weak
    assert "The two password fields didn" in mismatch
    liaison.refresh_from_db()
    assert liaison.check_password(DEMO_PASSWORD)


def test_signed_out_the_page_asks_to_sign_in(client):
    response = client.get(reverse("accounts:password_change"))
    assert response.status_code == 302 and "login" in response.url


def _api(token: str):
    return Client(headers={"Authorization": f"Bearer {token}"}).get(reverse("api:partner-list"))


def test_changing_ones_password_revokes_ones_api_tokens_and_says_so(coordinator, manager):
    """A password someone may have seen is changed; a token made while they had it (or by
    them, with it) must not go on reading patient data through the API."""
    first, second = (
        api_token_create(user=coordinator, days=30)[1],
        api_token_create(user=coordinator, days=30)[1],
    )
    colleagues = api_token_create(user=manager, days=30)[1]
    assert _api(first).status_code == 200

    here = _signed_in(coordinator)
    response = here.post(
        reverse("accounts:password_change"),
        {"old_password": DEMO_PASSWORD, "new_password1": NEW, "new_password2": NEW},
        follow=True,
    )

    page = response.content.decode()
    assert "Your password was changed" in page
    assert "your 2 API tokens were revoked" in page
    assert not AuthToken.objects.filter(user=coordinator).exists()
    assert _api(first).status_code == _api(second).status_code == 401
    assert _api(colleagues).status_code == 200


def test_a_refused_password_change_keeps_the_api_tokens(coordinator):
    token = api_token_create(user=coordinator, days=30)[1]
    _signed_in(coordinator).post(
        reverse("accounts:password_change"),
        {"old_password": "guess", "new_password1": NEW, "new_password2": NEW},
    )
    assert _api(token).status_code == 200


def test_without_api_tokens_the_message_does_not_mention_them(liaison):
    response = _signed_in(liaison).post(
        reverse("accounts:password_change"),
        {"old_password": DEMO_PASSWORD, "new_password1": NEW, "new_password2": NEW},
        follow=True,
    )
    page = response.content.decode()
    assert "Your password was changed" in page and "API token" not in page


def test_an_administrator_setting_a_password_revokes_the_users_api_tokens(
    back_office, coordinator, manager
):
    token = api_token_create(user=coordinator, days=30)[1]
    colleagues = api_token_create(user=manager, days=30)[1]

    response = back_office.post(
        reverse("admin:auth_user_password_change", args=[coordinator.pk]),
        {"usable_password": "true", "password1": NEW, "password2": NEW, "set-password": ""},
        follow=True,
    )

    messages = [str(message) for message in response.context["messages"]]
    assert "Password changed successfully." in messages
    assert "Their 1 API token was revoked: a script or EHR using it needs a new one." in messages
    coordinator.refresh_from_db()
    assert coordinator.check_password(NEW)
    assert _api(token).status_code == 401
    assert _api(colleagues).status_code == 200


def test_an_administrator_turning_password_sign_in_off_revokes_the_api_tokens_too(
    back_office, coordinator
):
    token = api_token_create(user=coordinator, days=30)[1]

    back_office.post(
        reverse("admin:auth_user_password_change", args=[coordinator.pk]),
        {"usable_password": "false", "unset-password": ""},
    )

    coordinator.refresh_from_db()
    assert not coordinator.has_usable_password()
    assert _api(token).status_code == 401
