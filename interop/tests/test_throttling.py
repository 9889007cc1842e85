"""Request budgets per API token: one token past its budget gets 429s with Retry-After;
other tokens, even of the same user, carry on."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.cache.backends.redis import RedisCache
from django.core.exceptions import ImproperlyConfigured
from django.test import Client
from django.urls import reverse

from interop.tests.conftest import outcome_text
from interop.throttling import TokenRateThrottle
from referral_crm.settings import _throttle_rate

pytestmark = pytest.mark.django_db

ClientFor = Callable[[Any], Client]


@pytest.fixture
def two_a_minute(monkeypatch: pytest.MonkeyPatch) -> None:
    # DRF reads the rates once, into the class.
    monkeypatch.setattr(
        TokenRateThrottle, "THROTTLE_RATES", {"api": "2/minute", "fhir": "2/minute"}
    )


def test_a_token_past_its_budget_gets_429_and_another_token_of_the_same_user_does_not(
    coordinator: User, api_client_for: ClientFor, two_a_minute: None
) -> None:
    busy, other = api_client_for(coordinator), api_client_for(coordinator)
    url = reverse("api:partner-list")
    assert [busy.get(url).status_code for _ in range(2)] == [200, 200]
    refused = busy.get(url)
    assert refused.status_code == 429
    assert int(refused["Retry-After"]) > 0
    assert "throttled" in refused.json()["detail"].lower()
    assert other.get(url).status_code == 200


def test_the_rest_api_budget_is_shared_by_its_lists_and_details(
    coordinator: User, api_client_for: ClientFor, two_a_minute: None
) -> None:
    client = api_client_for(coordinator)
    assert client.get(reverse("api:partner-list")).status_code == 200
    assert client.get(reverse("api:referral-list")).status_code == 200
    assert client.get(reverse("api:referral-list")).status_code == 429


def test_a_fhir_client_past_its_budget_gets_a_429_operation_outcome(
    coordinator: User, api_client_for: ClientFor, two_a_minute: None
) -> None:
    client = api_client_for(coordinator)
    url = reverse("fhir:practitioner_search")
    assert [client.get(url).status_code for _ in range(2)] == [200, 200]
    refused = client.get(url)
    assert refused.status_code == 429
    assert refused.json()["issue"][0]["code"] == "throttled"
    assert "throttled" in outcome_text(refused).lower()
    assert "Retry-After" in refused


def test_the_open_descriptions_are_not_throttled(db: None, two_a_minute: None) -> None:
    client = Client()
    assert {client.get(reverse("api:schema")).status_code for _ in range(3)} == {200}
    assert {client.get(reverse("fhir:metadata")).status_code for _ in range(3)} == {200}


def test_with_its_cache_down_the_throttle_lets_requests_through(
    coordinator: User, api_client_for: ClientFor, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A Redis nobody listens on: the API still answers rather than failing every request.
    unreachable = RedisCache("redis://127.0.0.1:9/0", {"OPTIONS": {"socket_connect_timeout": 0.2}})
    monkeypatch.setattr(TokenRateThrottle, "cache", unreachable)
    assert api_client_for(coordinator).get(reverse("api:partner-list")).status_code == 200


@pytest.mark.parametrize("rate", ["120", "120/fortnight", "many/minute", "/minute"])
def test_a_throttle_rate_setting_that_drf_cannot_read_stops_the_start(
    monkeypatch: pytest.MonkeyPatch, rate: str
) -> None:
    monkeypatch.setenv("API_THROTTLE_RATE", rate)
    with pytest.raises(ImproperlyConfigured, match="API_THROTTLE_RATE"):
        _throttle_rate("API_THROTTLE_RATE", default="120/minute")
