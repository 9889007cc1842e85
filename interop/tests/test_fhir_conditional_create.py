"""Conditional create (If-None-Exist, http://hl7.org/fhir/R4/http.html#ccreate): an EHR
that is unsure whether its order arrived sends it again with a search, and gets back the
ServiceRequest that exists rather than a second referral or an error."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from audit.models import PatientDataAccess
from interop.tests.conftest import outcome_text
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


def post_if_none_exist(client: Client, data: dict[str, Any], criteria: str) -> Any:
    return client.post(
        SEARCH,
        json.dumps(data),
        content_type="application/fhir+json",
        headers={"If-None-Exist": criteria},
    )


def test_a_conditional_create_with_no_match_creates_the_referral(
    coordinator: User, api_client_for: ClientFor, partner: Provider
) -> None:
    response = post_if_none_exist(
        api_client_for(coordinator),
        adapted_myringotomy(partner.npi),
        f"identifier={ORDER_IDS}|ret4421",
    )
    assert response.status_code == 201, response.content
    referral = Referral.objects.get()
    assert response["Location"].endswith(reverse("fhir:servicerequest", args=[referral.pk]))
    assert response.json()["identifier"] == [{"system": ORDER_IDS, "value": "ret4421"}]


def test_a_conditional_create_that_matches_answers_200_with_the_existing_order(
    coordinator: User, api_client_for: ClientFor, partner: Provider
) -> None:
    client = api_client_for(coordinator)
    data = adapted_myringotomy(partner.npi)
    first = post_if_none_exist(client, data, f"identifier={ORDER_IDS}|ret4421")
    again = post_if_none_exist(client, data, f"identifier={ORDER_IDS}|ret4421")
    assert again.status_code == 200, again.content
    assert again["Location"] == first["Location"]
    assert again.json()["id"] == first.json()["id"]
    assert Referral.objects.count() == 1
    # Handing back patient details is a read of them: audited like any other.
    actions = sorted(PatientDataAccess.objects.values_list("action", flat=True))
    assert actions == ["create", "view"]


def test_a_conditional_create_finds_the_order_even_when_the_body_differs(
    coordinator: User, api_client_for: ClientFor, partner: Provider
) -> None:
    client = api_client_for(coordinator)
    data = adapted_myringotomy(partner.npi)
    first = post_if_none_exist(client, data, f"identifier={ORDER_IDS}|ret4421")
    data["identifier"] = [{"system": ORDER_IDS, "value": "ret9999"}]
    again = post_if_none_exist(client, data, f"identifier={ORDER_IDS}|ret4421")
    assert again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    assert Referral.objects.count() == 1


def test_a_conditional_create_under_another_identifier_system_creates(
    coordinator: User, api_client_for: ClientFor, partner: Provider
) -> None:
    client = api_client_for(coordinator)
    data = adapted_myringotomy(partner.npi)
    assert post_if_none_exist(client, data, f"identifier={ORDER_IDS}|ret4421").status_code == 201
    data["identifier"] = [{"system": "urn:other-ehr", "value": "ret4421"}]
    response = post_if_none_exist(client, data, "identifier=urn:other-ehr|ret4421")
    assert response.status_code == 201
    assert Referral.objects.count() == 2


def test_a_conditional_create_matching_several_orders_is_a_412(
    coordinator: User, api_client_for: ClientFor, partner: Provider
) -> None:
    client = api_client_for(coordinator)
    data = adapted_myringotomy(partner.npi)
    for value in ("a-1", "a-2"):
        data["identifier"] = [{"system": ORDER_IDS, "value": value}]
        assert (
            post_if_none_exist(client, data, f"identifier={ORDER_IDS}|{value}").status_code == 201
        )
    data["identifier"] = [{"system": ORDER_IDS, "value": "a-3"}]
    response = post_if_none_exist(client, data, f"requester:identifier={partner.npi}")
    assert response.status_code == 412
    assert response.json()["issue"][0]["code"] == "multiple-matches"
    assert "more than one ServiceRequest" in outcome_text(response)
    assert Referral.objects.count() == 2


@pytest.mark.parametrize(
    ("criteria", "named"),
    [
        ("", "identifier"),
        ("identifer=x|1", "identifer"),
        ("identifier=x|1&_count=1", "_count"),
    ],
)
def test_an_if_none_exist_the_server_cannot_search_is_a_400_naming_what_is_wrong(
    coordinator: User, api_client_for: ClientFor, partner: Provider, criteria: str, named: str
) -> None:
    response = post_if_none_exist(
        api_client_for(coordinator), adapted_myringotomy(partner.npi), criteria
    )
    assert response.status_code == 400
    text = outcome_text(response)
    assert "If-None-Exist" in text and named in text
    assert not Referral.objects.exists()


def test_an_if_none_exist_with_a_bad_value_is_a_400_naming_the_parameter(
    coordinator: User, api_client_for: ClientFor, partner: Provider
) -> None:
    response = post_if_none_exist(
        api_client_for(coordinator), adapted_myringotomy(partner.npi), "status=finished"
    )
    assert response.status_code == 400
    assert "If-None-Exist: Search parameter status" in outcome_text(response)


def test_a_search_by_identifier_finds_the_posted_order(
    coordinator: User, api_client_for: ClientFor, partner: Provider
) -> None:
    client = api_client_for(coordinator)
    created = post_if_none_exist(
        client, adapted_myringotomy(partner.npi), f"identifier={ORDER_IDS}|ret4421"
    )
    for criteria in (f"{ORDER_IDS}|ret4421", "ret4421"):
        bundle = client.get(SEARCH, {"identifier": criteria}).json()
        assert [entry["resource"]["id"] for entry in bundle["entry"]] == [created.json()["id"]]
    assert client.get(SEARCH, {"identifier": "urn:other|ret4421"}).json()["total"] == 0


def test_the_capability_statement_advertises_conditional_create(client: Client) -> None:
    statement = client.get(reverse("fhir:metadata")).json()
    by_type = {resource["type"]: resource for resource in statement["rest"][0]["resource"]}
    assert by_type["ServiceRequest"]["conditionalCreate"] is True
    assert "conditionalCreate" not in by_type["Practitioner"]


def test_a_conditional_create_giving_a_one_value_parameter_twice_is_a_400(
    coordinator: User, api_client_for: ClientFor, partner: Provider
) -> None:
    response = post_if_none_exist(
        api_client_for(coordinator),
        adapted_myringotomy(partner.npi),
        "requester=Practitioner/3&requester=Practitioner/4",
    )
    assert response.status_code == 400
    assert "If-None-Exist: Search parameter requester: Give it once" in outcome_text(response)
    assert not Referral.objects.exists()
