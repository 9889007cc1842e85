"""What a create answers with, as the client prefers (http://hl7.org/fhir/R4/http.html#ops):
`Prefer: return=minimal` is no body, `return=OperationOutcome` an outcome saying what
happened, `return=representation` (and no preference) the resource."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from audit.models import PatientDataAccess
from interop.tests.test_fhir_service_request import adapted_myringotomy
from partners.factories import ProviderFactory
from partners.models import Provider
from referrals.models import Referral

pytestmark = pytest.mark.django_db

ClientFor = Callable[[Any], Client]
SEARCH = "/fhir/r4/ServiceRequest"
ORDER_IDS = "http://orionhealth.com/fhir/apps/referralids"


@pytest.fixture
def partner(db: None) -> Provider:
    return ProviderFactory.create()


def post(client: Client, data: dict[str, Any], **headers: str) -> Any:
    return client.post(
        SEARCH, json.dumps(data), content_type="application/fhir+json", headers=headers
    )


def test_return_minimal_creates_and_answers_with_the_location_and_no_body(
    coordinator: User, api_client_for: ClientFor, partner: Provider
) -> None:
    response = post(
        api_client_for(coordinator), adapted_myringotomy(partner.npi), Prefer="return=minimal"
    )
    assert response.status_code == 201
    referral = Referral.objects.get()
    assert response["Location"].endswith(f"/fhir/r4/ServiceRequest/{referral.pk}")
    assert response.content == b""


def test_return_operation_outcome_answers_with_an_outcome_naming_the_resource(
    coordinator: User, api_client_for: ClientFor, partner: Provider
) -> None:
    response = post(
        api_client_for(coordinator),
        adapted_myringotomy(partner.npi),
        Prefer="return=OperationOutcome",
    )
    assert response.status_code == 201
    body = response.json()
    assert body["resourceType"] == "OperationOutcome"
    referral = Referral.objects.get()
    assert body["issue"][0]["severity"] == "information"
    assert f"ServiceRequest/{referral.pk}" in body["issue"][0]["diagnostics"]
    # No patient details go out: the create is the only audit row.
    assert "Weaver" not in response.content.decode()


def test_return_representation_answers_with_the_resource(
    coordinator: User, api_client_for: ClientFor, partner: Provider
) -> None:
    response = post(
        api_client_for(coordinator),
        adapted_myringotomy(partner.npi),
        Prefer="return=representation",
    )
    assert response.status_code == 201
    assert response.json()["resourceType"] == "ServiceRequest"


def test_a_conditional_create_that_matches_honours_return_minimal_and_reads_nothing(
    coordinator: User, api_client_for: ClientFor, partner: Provider
) -> None:
    client = api_client_for(coordinator)
    data = adapted_myringotomy(partner.npi)
    criteria = f"identifier={ORDER_IDS}|ret4421"
    first = post(client, data, **{"If-None-Exist": criteria})
    again = post(client, data, **{"If-None-Exist": criteria, "Prefer": "return=minimal"})
    assert again.status_code == 200
    assert again["Location"] == first["Location"]
    assert again.content == b""
    # Nothing about the patient was handed back, so nothing was read.
    assert list(PatientDataAccess.objects.values_list("action", flat=True)) == ["create"]
