"""The partner directory through FHIR: Practitioner, PractitionerRole, Organization and
the CapabilityStatement, each a valid R4 resource, searched in pages with a fixed number
of queries."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse
from fhir.resources.R4B import get_fhir_model_class

from interop.fhir.resources import IMPLEMENTED, NPI_SYSTEM, NUCC_SYSTEM
from interop.tests.conftest import outcome_text
from partners.factories import OrganizationFactory, ProviderFactory

pytestmark = pytest.mark.django_db

ClientFor = Callable[[Any], Client]


def _valid(resource: dict[str, Any]) -> dict[str, Any]:
    get_fhir_model_class(resource["resourceType"]).model_validate(resource)
    return resource


def test_the_capability_statement_lists_what_is_implemented(client: Client) -> None:
    response = client.get(reverse("fhir:metadata"))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/fhir+json"
    statement = _valid(response.json())
    assert statement["fhirVersion"] == "4.0.1"
    listed = {
        r["type"]: ({i["code"] for i in r["interaction"]}, {p["name"] for p in r["searchParam"]})
        for r in statement["rest"][0]["resource"]
    }
    assert set(listed) == {"Practitioner", "PractitionerRole", "Organization", "ServiceRequest"}
    assert listed["ServiceRequest"][0] == {"read", "search-type", "create"}
    assert listed["Practitioner"][0] == {"read", "search-type"}
    for resource_type, (_interactions, parameters) in IMPLEMENTED.items():
        assert {name for name, _kind, _doc in parameters} < listed[resource_type][1]


def test_a_practitioner_carries_npi_name_credential_and_nucc_specialty(
    coordinator: User, api_client_for: ClientFor
) -> None:
    provider = ProviderFactory.create(
        first_name="Ana",
        last_name="Ruiz",
        credential="MD",
        taxonomy_code="207Q00000X",
        specialty="Family Medicine",
    )
    response = api_client_for(coordinator).get(reverse("fhir:practitioner", args=[provider.pk]))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/fhir+json"
    practitioner = _valid(response.json())
    assert practitioner["id"] == str(provider.pk)
    assert practitioner["identifier"] == [{"system": NPI_SYSTEM, "value": provider.npi}]
    assert practitioner["name"][0]["family"] == "Ruiz"
    assert practitioner["name"][0]["given"] == ["Ana"]
    codes = [q["code"] for q in practitioner["qualification"]]
    assert {"text": "MD"} in codes
    assert {
        "coding": [{"system": NUCC_SYSTEM, "code": "207Q00000X", "display": "Family Medicine"}],
        "text": "Family Medicine",
    } in codes


def test_practitioners_are_found_by_npi_and_by_name(
    coordinator: User, api_client_for: ClientFor
) -> None:
    ana = ProviderFactory.create(first_name="Ana", last_name="Ruiz")
    ProviderFactory.create(first_name="Bo", last_name="Smith")
    client = api_client_for(coordinator)
    search = reverse("fhir:practitioner_search")
    by_npi = client.get(search, {"identifier": f"{NPI_SYSTEM}|{ana.npi}"}).json()
    assert [e["resource"]["id"] for e in by_npi["entry"]] == [str(ana.pk)]
    assert by_npi["total"] == 1
    assert client.get(search, {"identifier": ana.npi}).json()["total"] == 1
    assert client.get(search, {"identifier": f"urn:other|{ana.npi}"}).json()["total"] == 0
    by_name = _valid(client.get(search, {"name": "ruI"}).json())
    assert by_name["type"] == "searchset"
    assert [e["resource"]["id"] for e in by_name["entry"]] == [str(ana.pk)]
    assert by_name["entry"][0]["fullUrl"].endswith(f"/fhir/r4/Practitioner/{ana.pk}")


def test_a_format_asked_for_by_name_is_json_or_a_406_saying_so(
    coordinator: User, api_client_for: ClientFor
) -> None:
    ProviderFactory.create()
    client = api_client_for(coordinator)
    search = reverse("fhir:practitioner_search")
    for asked in ("json", "application/fhir+json", "application/json+fhir"):
        assert client.get(search, {"_format": asked}).json()["resourceType"] == "Bundle"
    for asked in ("xml", "application/fhir+xml", "ttl"):
        refused = client.get(search, {"_format": asked})
        assert refused.status_code == 406
        assert refused.json()["resourceType"] == "OperationOutcome"
        assert f"_format={asked} is not offered" in outcome_text(refused)
    # An Accept header for XML still gets JSON: the one format this server speaks.
    lenient = client.get(search, HTTP_ACCEPT="application/fhir+xml")
    assert lenient.status_code == 200


def test_searches_page_with_count_and_next_links(
    coordinator: User, api_client_for: ClientFor
) -> None:
    ProviderFactory.create_batch(5, last_name="Page")
    client = api_client_for(coordinator)
    seen: list[str] = []
    url: str | None = reverse("fhir:practitioner_search") + "?name=page&_count=2"
    pages = 0
    while url:
        bundle = client.get(url).json()
        assert bundle["total"] == 5
        seen += [e["resource"]["id"] for e in bundle["entry"]]
        links = {link["relation"]: link["url"] for link in bundle["link"]}
        assert "name=page" in links["self"]
        url = links.get("next")
        pages += 1
    assert pages == 3
    assert len(seen) == len(set(seen)) == 5


def test_a_search_costs_the_same_queries_for_a_page_of_three_or_of_twenty(
    coordinator: User,
    token_for: Callable[[Any], str],
    django_assert_num_queries: Any,
) -> None:
    client = Client(headers={"Authorization": f"Bearer {token_for(coordinator)}"})
    search = reverse("fhir:practitioner_search")
    roles = reverse("fhir:practitionerrole_search")
    organizations = reverse("fhir:organization_search")
    ProviderFactory.create_batch(3)
    # The token, the user's expired tokens (knox sweeps them), the role's permissions
    # (one query), the count and the page.
    with django_assert_num_queries(5):
        assert len(client.get(search).json()["entry"]) == 3
    ProviderFactory.create_batch(20)
    with django_assert_num_queries(5):
        assert len(client.get(search).json()["entry"]) == 20
    with django_assert_num_queries(5):
        assert len(client.get(roles).json()["entry"]) == 20
    with django_assert_num_queries(5):
        assert len(client.get(organizations).json()["entry"]) == 20


def test_an_organization_carries_name_address_phone_and_fax(
    liaison: User, api_client_for: ClientFor
) -> None:
    office = OrganizationFactory.create(
        name="Prairie Family Practice",
        address_line1="12 Main St",
        city="Lincoln",
        state="NE",
        zip_code="68508",
        phone="(402) 555-0100",
        fax="(402) 555-0101",
    )
    client = api_client_for(liaison)
    organization = _valid(client.get(reverse("fhir:organization", args=[office.pk])).json())
    assert organization["name"] == "Prairie Family Practice"
    assert organization["address"][0]["line"] == ["12 Main St"]
    assert organization["address"][0]["postalCode"] == "68508"
    telecom = {(t["system"], t["value"]) for t in organization["telecom"]}
    assert {("phone", "(402) 555-0100"), ("fax", "(402) 555-0101")} <= telecom
    found = client.get(reverse("fhir:organization_search"), {"name": "family"}).json()
    assert [e["resource"]["id"] for e in found["entry"]] == [str(office.pk)]
    assert client.get(reverse("fhir:organization_search"), {"name": "amily"}).json()["total"] == 0


def test_practitioner_roles_link_a_provider_to_their_office(
    coordinator: User, api_client_for: ClientFor
) -> None:
    provider = ProviderFactory.create(taxonomy_code="207X00000X", specialty="Orthopaedic Surgery")
    ProviderFactory.create()
    client = api_client_for(coordinator)
    role = _valid(client.get(reverse("fhir:practitionerrole", args=[provider.pk])).json())
    assert role["practitioner"]["reference"] == f"Practitioner/{provider.pk}"
    assert role["organization"]["reference"] == f"Organization/{provider.organization_id}"
    assert role["specialty"][0]["coding"][0] == {
        "system": NUCC_SYSTEM,
        "code": "207X00000X",
        "display": "Orthopaedic Surgery",
    }
    search = reverse("fhir:practitionerrole_search")
    for query in (
        {"practitioner": f"Practitioner/{provider.pk}"},
        {"practitioner": str(provider.pk)},
        {"organization": f"Organization/{provider.organization_id}"},
    ):
        found = client.get(search, query).json()
        assert [e["resource"]["id"] for e in found["entry"]] == [str(provider.pk)], query


@pytest.mark.parametrize(
    "query",
    [
        {"_count": "0"},
        {"_count": "x"},
        {"_count": "101"},
        {"_offset": "-1"},
        {"name": "a\x00b"},
        {"name": "x" * 500},
        # Six words: the sixth would be left out while the Bundle's links name it.
        {"name": "ana maria de la cruz ruiz"},
    ],
)
def test_a_search_parameter_that_cannot_be_read_is_a_400_saying_which(
    coordinator: User, api_client_for: ClientFor, query: dict[str, str]
) -> None:
    response = api_client_for(coordinator).get(reverse("fhir:practitioner_search"), query)
    assert response.status_code == 400
    assert next(iter(query)) in outcome_text(response)


def test_a_bad_reference_search_is_a_400(coordinator: User, api_client_for: ClientFor) -> None:
    response = api_client_for(coordinator).get(
        reverse("fhir:practitionerrole_search"), {"organization": "Patient/1"}
    )
    assert response.status_code == 400
    assert "not a Organization reference" in outcome_text(response)


@pytest.mark.parametrize("pk", ["999999", "abc", "1' OR '1'='1", "9" * 40])
def test_an_unknown_id_is_a_404_outcome(
    coordinator: User, api_client_for: ClientFor, pk: str
) -> None:
    response = api_client_for(coordinator).get(reverse("fhir:practitioner", args=[pk]))
    assert response.status_code == 404
    assert outcome_text(response)


# Digits other than 0-9, which str.isdigit() and int() also read as numbers.
ARABIC_INDIC = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")


def test_an_id_in_digits_other_than_0_to_9_is_a_404_outcome(
    coordinator: User, api_client_for: ClientFor
) -> None:
    provider = ProviderFactory.create()
    client = api_client_for(coordinator)
    for pk in ("²", str(provider.pk).translate(ARABIC_INDIC)):
        for name in ("fhir:practitioner", "fhir:practitionerrole", "fhir:servicerequest"):
            response = client.get(reverse(name, args=[pk]))
            assert response.status_code == 404, (name, pk)
            assert "No such resource" in outcome_text(response)


def test_a_reference_search_in_digits_other_than_0_to_9_is_a_400(
    coordinator: User, api_client_for: ClientFor
) -> None:
    provider = ProviderFactory.create()
    response = api_client_for(coordinator).get(
        reverse("fhir:practitionerrole_search"),
        {"practitioner": f"Practitioner/{str(provider.pk).translate(ARABIC_INDIC)}"},
    )
    assert response.status_code == 400
    assert "practitioner" in outcome_text(response)


def test_a_method_the_facade_does_not_offer_is_a_405_outcome(
    coordinator: User, api_client_for: ClientFor
) -> None:
    provider = ProviderFactory.create()
    response = api_client_for(coordinator).delete(reverse("fhir:practitioner", args=[provider.pk]))
    assert response.status_code == 405
    assert "DELETE" in outcome_text(response)


@pytest.mark.parametrize(
    "name", ["fhir:metadata", "fhir:practitioner_search", "fhir:servicerequest_search"]
)
def test_options_is_a_405_outcome_not_a_description_of_the_view(
    coordinator: User, api_client_for: ClientFor, name: str
) -> None:
    """R4 has no OPTIONS interaction (the CapabilityStatement is GET metadata): its answer
    was DRF's own description of the view, sent as application/fhir+json."""
    response = api_client_for(coordinator).options(reverse(name))
    assert response.status_code == 405
    assert "OPTIONS" in outcome_text(response)
    assert "OPTIONS" not in response["Allow"]


@pytest.mark.parametrize(
    "path",
    ["Patient", "Patient/1", "ServiceRequest/1/_history/2", "", "Patient%0A", "metadata%0A"],
)
def test_an_address_the_facade_does_not_offer_is_a_404_outcome(
    coordinator: User, api_client_for: ClientFor, path: str
) -> None:
    response = api_client_for(coordinator).get(f"/fhir/r4/{path}")
    assert response.status_code == 404
    assert "metadata" in outcome_text(response)


@pytest.mark.parametrize(
    "path", ["Practitioner/16/_history/1", "Practitioner/16/_history", "Organization/3/_history/1"]
)
def test_a_history_address_says_history_is_not_offered(
    coordinator: User, api_client_for: ClientFor, path: str
) -> None:
    response = api_client_for(coordinator).get(f"/fhir/r4/{path}")
    assert response.status_code == 404
    message = outcome_text(response)
    assert "History and versions (_history) are not offered" in message
    assert "“Practitioner” is not offered" not in message


def test_a_taxonomy_code_typed_with_a_double_space_does_not_break_the_search(
    coordinator: User, api_client_for: ClientFor
) -> None:
    # The admin and the spreadsheet import store the code as typed; a FHIR code may not
    # hold two spaces in a row, and one such partner failed every search page they were on.
    typed = ProviderFactory.create(taxonomy_code="207Q  000X", specialty="Family Medicine")
    ProviderFactory.create()
    client = api_client_for(coordinator)
    for name in ("fhir:practitioner_search", "fhir:practitionerrole_search"):
        response = client.get(reverse(name))
        assert response.status_code == 200, name
        assert len(_valid(response.json())["entry"]) == 2
    role = client.get(reverse("fhir:practitionerrole", args=[typed.pk])).json()
    assert role["specialty"][0]["coding"][0]["code"] == "207Q 000X"


@pytest.mark.parametrize(
    "path", ["ServiceRequest/", "Practitioner/", "Organization/3/", "PractitionerRole/3/x"]
)
def test_a_wrong_address_under_an_offered_type_does_not_say_the_type_is_not_offered(
    coordinator: User, api_client_for: ClientFor, path: str
) -> None:
    response = api_client_for(coordinator).get(f"/fhir/r4/{path}")
    assert response.status_code == 404
    message = outcome_text(response)
    resource_type = path.split("/")[0]
    assert "is not offered here" not in message
    assert f"{resource_type}/{{id}}" in message
    assert "trailing slash" in message


def test_a_search_gives_no_next_link_the_server_would_refuse(
    coordinator: User, api_client_for: ClientFor, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The deepest page a search reaches, made small so a few rows pass it.
    monkeypatch.setattr("interop.fhir.forms.MAX_OFFSET", 3)
    ProviderFactory.create_batch(6, last_name="Deep")
    client = api_client_for(coordinator)
    url: str | None = reverse("fhir:practitioner_search") + "?name=deep&_count=2"
    pages = 0
    while url:
        response = client.get(url)
        assert response.status_code == 200, outcome_text(response)
        pages += 1
        url = {link["relation"]: link["url"] for link in response.json()["link"]}.get("next")
    # The pages at 0 and 2; none links on to 4, past the deepest.
    assert pages == 2


def test_a_strict_search_refuses_the_parameters_it_would_ignore(
    coordinator: User, api_client_for: ClientFor
) -> None:
    ProviderFactory.create_batch(2)
    client = api_client_for(coordinator)
    search = reverse("fhir:practitioner_search")
    # Lenient, FHIR's default: the unknown parameter is ignored and left out of the links.
    lenient = client.get(search, {"_id": "1", "name": "x"})
    assert lenient.status_code == 200
    assert "_id" not in lenient.json()["link"][0]["url"]
    # Asked for strict handling (http://hl7.org/fhir/R4/search.html#errors): a 400.
    strict = client.get(
        search, {"_id": "1", "name": "x", "_format": "json"}, headers={"Prefer": "handling=strict"}
    )
    assert strict.status_code == 400
    message = outcome_text(strict)
    assert "_id" in message
    assert "name" not in message.split("Supported")[0]
    assert "_format" not in message.split("Supported")[0]
    strict_known = client.get(search, {"name": "x"}, headers={"Prefer": "handling=strict"})
    assert strict_known.status_code == 200


def test_an_empty_search_page_has_no_entry_array(
    coordinator: User, api_client_for: ClientFor
) -> None:
    ProviderFactory.create()
    response = api_client_for(coordinator).get(
        reverse("fhir:practitioner_search"), {"_offset": "99999"}
    )
    bundle = _valid(response.json())
    assert bundle["total"] == 1
    assert "entry" not in bundle


@pytest.mark.parametrize(
    ("name", "query"),
    [
        ("fhir:practitioner_search", {"identifier": ["1234567893", "1245319599"]}),
        ("fhir:practitioner_search", {"_count": ["5", "10"]}),
        ("fhir:practitionerrole_search", {"organization": ["1", "2"]}),
        ("fhir:servicerequest_search", {"requester": ["Practitioner/3", "Practitioner/4"]}),
    ],
)
def test_a_one_value_search_parameter_given_twice_is_a_400_naming_it(
    coordinator: User, api_client_for: ClientFor, name: str, query: dict[str, list[str]]
) -> None:
    response = api_client_for(coordinator).get(reverse(name), query)
    assert response.status_code == 400
    assert f"Search parameter {next(iter(query))}: Give it once" in outcome_text(response)
