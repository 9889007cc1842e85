"""A failure inside the facade or the API (a bug, the database gone mid-request) is still
answered in the client's format: an OperationOutcome under /fhir/r4/, JSON under /api/v1/,
never the app's HTML error page a FHIR or JSON parser cannot read."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from interop import selectors
from interop.tests.conftest import outcome_text

pytestmark = pytest.mark.django_db


def _fail(*args: Any, **kwargs: Any) -> Any:
    raise RuntimeError("the database went away")


@pytest.fixture
def failing_client(
    coordinator: User, token_for: Callable[[Any], str], monkeypatch: pytest.MonkeyPatch
) -> Client:
    monkeypatch.setattr(selectors, "providers_for", _fail)
    monkeypatch.setattr(selectors, "referrals_for", _fail)
    return Client(
        headers={"Authorization": f"Bearer {token_for(coordinator)}"},
        raise_request_exception=False,
    )


@pytest.mark.parametrize("name", ["fhir:practitioner_search", "fhir:servicerequest_search"])
def test_a_server_error_under_the_facade_is_a_500_operation_outcome(
    failing_client: Client, name: str
) -> None:
    response = failing_client.get(reverse(name))
    assert response.status_code == 500
    assert response.json()["issue"][0]["code"] == "exception"
    message = outcome_text(response)
    assert "database" not in message  # the cause stays in the server's log
    assert "try again" in message


@pytest.mark.parametrize("name", ["api:partner-list", "api:referral-list"])
def test_a_server_error_in_the_api_is_a_json_500(failing_client: Client, name: str) -> None:
    response = failing_client.get(reverse(name))
    assert response.status_code == 500
    assert response["Content-Type"] == "application/json"
    assert "try again" in response.json()["detail"]


def test_a_server_error_on_a_page_is_still_the_html_page(
    coordinator: User, client_for: Callable[[Any], Client], monkeypatch: pytest.MonkeyPatch
) -> None:
    from partners.models import Provider

    monkeypatch.setattr(Provider.objects, "for_user", _fail, raising=False)
    client = client_for(coordinator)
    client.raise_request_exception = False
    response = client.get(reverse("partners:provider_list"))
    assert response.status_code == 500
    assert response["Content-Type"].startswith("text/html")
