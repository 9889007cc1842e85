"""A user changes their own password (a password they fear someone saw must not wait for an
administrator): the old one is asked for, the new one meets the same rules as everywhere,
and every other browser signed in as them is signed out while this one stays in."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from core.factories import DEMO_PASSWORD

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
