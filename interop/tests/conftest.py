"""Fixtures for the API tests: a token for a user and a client that sends it."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.test import Client

from interop.services import api_token_create


@pytest.fixture
def token_for(db: None) -> Callable[[Any], str]:
    def make(user: Any) -> str:
        return api_token_create(user=user, days=30)[1]

    return make


@pytest.fixture
def api_client_for(token_for: Callable[[Any], str]) -> Callable[[Any], Client]:
    """A client that authenticates as `user` by a token, with no session."""

    def make(user: Any) -> Client:
        return Client(headers={"Authorization": f"Bearer {token_for(user)}"})

    return make


# The official HL7 FHIR R4 examples, in the shared reference data beside the repository.
FHIR_EXAMPLES = (
    Path(settings.BASE_DIR).parent
    / "shared"
    / "data"
    / "fhir_r4_examples"
    / "hl7.fhir.r4.examples-4.0.1"
)


def fhir_example(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FHIR_EXAMPLES / name).read_text(encoding="utf-8"))
    return data


def post_fhir(client: Client, path: str, data: Any) -> Any:
    body = data if isinstance(data, (str, bytes)) else json.dumps(data)
    return client.post(path, body, content_type="application/fhir+json")


def outcome_text(response: Any) -> str:
    """The OperationOutcome's message, after checking it is one."""
    assert response["Content-Type"].startswith("application/fhir+json")
    body = response.json()
    assert body["resourceType"] == "OperationOutcome"
    return " ".join(issue["diagnostics"] for issue in body["issue"])
