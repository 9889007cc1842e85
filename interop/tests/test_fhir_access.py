"""Who may use the facade: a valid token only (never the browser session), acting with its
user's role; refusals are OperationOutcomes."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from knox.models import AuthToken

from interop.tests.conftest import outcome_text
from partners.factories import ProviderFactory
from referrals.factories import ReferralFactory

pytestmark = pytest.mark.django_db

ClientFor = Callable[[Any], Client]
PRACTITIONERS = "/fhir/r4/Practitioner"


def _bearer(token: str) -> Client:
    return Client(headers={"Authorization": f"Bearer {token}"})


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer rcrm_0123456789abcdef"},
        {"Authorization": "Bearer not a token"},
        {"Authorization": "Bearer rcrm_\u00e9\u00e9\u00e9"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
    ],
)
def test_no_token_or_a_bad_one_is_a_401_outcome(headers: dict[str, str], db: None) -> None:
    response = Client(headers=headers).get(PRACTITIONERS)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Bearer"
    assert "token" in outcome_text(response)


def test_an_expired_token_is_a_401(manager: User, token_for: Callable[[Any], str]) -> None:
    token = token_for(manager)
    AuthToken.objects.update(expiry=timezone.now() - timedelta(minutes=1))
    response = _bearer(token).get(PRACTITIONERS)
    assert response.status_code == 401
    assert "expired" in outcome_text(response)


def test_the_browser_session_opens_no_api(manager: User, client_for: ClientFor) -> None:
    response = client_for(manager).get(PRACTITIONERS)
    assert response.status_code == 401


def test_a_user_without_a_role_is_a_403(
    no_role_user: User, token_for: Callable[[Any], str]
) -> None:
    client = _bearer(token_for(no_role_user))
    for path in (PRACTITIONERS, "/fhir/r4/Organization", "/fhir/r4/ServiceRequest"):
        response = client.get(path)
        assert response.status_code == 403, path
        assert "role does not allow" in outcome_text(response)


def test_the_capability_statement_needs_no_token(db: None) -> None:
    assert Client().get(reverse("fhir:metadata")).status_code == 200


def test_a_managers_token_works_when_two_factor_sign_in_is_required(
    manager: User, token_for: Callable[[Any], str], settings: Any
) -> None:
    """The second factor guards the browser session; a token is its own credential,
    made by an administrator, and its requests carry no session to redirect."""
    settings.TWO_FACTOR_REQUIRED = True
    provider = ProviderFactory.create()
    referral = ReferralFactory.create(provider=provider)
    client = _bearer(token_for(manager))
    assert client.get(PRACTITIONERS).status_code == 200
    response = client.get(f"/fhir/r4/ServiceRequest/{referral.pk}")
    assert response.status_code == 200
    assert response.json()["contained"][0]["resourceType"] == "Patient"
    # While the same manager's browser session is still sent to the second factor.
    browser = Client()
    browser.force_login(manager)
    assert browser.get(reverse("referrals:list")).status_code == 302
    # A token request that also carries that half-signed-in session cookie is answered.
    token = token_for(manager)
    answered = browser.get(PRACTITIONERS, headers={"Authorization": f"Bearer {token}"})
    assert answered.status_code == 200


def test_api_answers_are_never_cached(manager: User, token_for: Callable[[Any], str]) -> None:
    response = _bearer(token_for(manager)).get(PRACTITIONERS)
    assert "no-store" in response["Cache-Control"]
