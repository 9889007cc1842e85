"""ServiceRequest in (an EHR's referral becomes a received e-referral through the same
service as an HL7 v2 order) and out (referrals both ways, with patient details only for
the roles that see them on the pages, and every read of them audited)."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone
from fhir.resources.R4B import get_fhir_model_class

from audit.models import PatientDataAccess
from intake.models import Hl7Import
from interop.fhir.resources import NPI_SYSTEM
from interop.tests.conftest import FHIR_EXAMPLES, fhir_example, outcome_text, post_fhir
from partners.factories import ProviderFactory
from partners.models import Provider
from referrals.factories import ReferralFactory
from referrals.models import Inquiry, Referral, ReferralEvent

pytestmark = pytest.mark.django_db

ClientFor = Callable[[Any], Client]
SEARCH = "/fhir/r4/ServiceRequest"


def _valid(resource: dict[str, Any]) -> dict[str, Any]:
    get_fhir_model_class(resource["resourceType"]).model_validate(resource)
    return resource


def adapted_myringotomy(npi: str) -> dict[str, Any]:
    """The official myringotomy referral, its requester given an NPI (on a contained
    Practitioner) and its patient sent along (a contained Patient)."""
    data = fhir_example("ServiceRequest-myringotomy.json")
    data["contained"] = [
        {
            "resourceType": "Practitioner",
            "id": "referrer",
            "identifier": [{"system": NPI_SYSTEM, "value": npi}],
            "name": [{"family": "Shrink", "given": ["Serena"]}],
        },
        {
            "resourceType": "Patient",
            "id": "pat",
            "name": [{"use": "official", "family": "Weaver", "given": ["Beverly"]}],
            "birthDate": "2008-05-04",
            "telecom": [{"system": "phone", "value": "(402) 555-0199"}],
        },
    ]
    data["requester"] = {"reference": "#referrer", "display": "Serena Shrink"}
    data["subject"] = {"reference": "#pat", "display": "Beverly Weaver"}
    return data


@pytest.fixture
def partner(db: None) -> Provider:
    return ProviderFactory.create()


def test_the_official_examples_whose_requester_is_unknown_get_a_clear_422(
    coordinator: User, api_client_for: ClientFor
) -> None:
    client = api_client_for(coordinator)
    examples = sorted(FHIR_EXAMPLES.glob("ServiceRequest-*.json"))
    assert len(examples) == 20
    for path in examples:
        response = post_fhir(client, SEARCH, path.read_text(encoding="utf-8"))
        assert response.status_code == 422, path.name
        assert "requester must be identified by NPI" in outcome_text(response), path.name
    assert not Referral.objects.exists()


def test_an_adapted_example_from_a_known_partner_becomes_a_received_e_referral(
    coordinator: User, api_client_for: ClientFor, partner: Provider
) -> None:
    response = post_fhir(api_client_for(coordinator), SEARCH, adapted_myringotomy(partner.npi))
    assert response.status_code == 201, response.content
    referral = Referral.objects.get()
    assert response["Location"].endswith(f"/fhir/r4/ServiceRequest/{referral.pk}")
    assert referral.provider == partner
    assert referral.direction == Referral.Direction.INBOUND
    assert referral.status == Referral.Status.RECEIVED
    assert referral.channel == Referral.Channel.E_REFERRAL
    assert referral.urgency == Referral.Urgency.ROUTINE
    assert (referral.patient_first_name, referral.patient_last_name) == ("Beverly", "Weaver")
    assert referral.patient_dob == date(2008, 5, 4)
    assert referral.patient_phone == "(402) 555-0199"
    assert "Insertion of grommets" in referral.reason
    assert "For consideration of Grommets" in referral.reason
    assert "6 instances of rt-sided Otitis media" in referral.reason
    assert referral.created_by == coordinator
    # The same path as an HL7 order: history, funnel, once-only record, audit.
    assert ReferralEvent.objects.filter(referral=referral, to_status="received").exists()
    assert Inquiry.objects.filter(referral=referral).exists()
    assert Hl7Import.objects.get(referral=referral).message_control_id == "ret4421"
    audit = PatientDataAccess.objects.get(referral_id=referral.pk)
    assert (audit.action, audit.source, audit.user) == ("create", "api", coordinator)
    created = _valid(response.json())
    assert created["status"] == "active"
    assert created["requester"]["identifier"]["value"] == partner.npi


def test_the_requester_may_be_named_by_reference_identifier(
    coordinator: User, api_client_for: ClientFor, partner: Provider
) -> None:
    data = adapted_myringotomy(partner.npi)
    data["contained"] = data["contained"][1:]
    data["requester"] = {"identifier": {"system": NPI_SYSTEM, "value": partner.npi}}
    data["priority"] = "asap"
    response = post_fhir(api_client_for(coordinator), SEARCH, data)
    assert response.status_code == 201, response.content
    assert Referral.objects.get().urgency == Referral.Urgency.URGENT


@pytest.mark.parametrize(
    ("priority", "urgency"), [("routine", "routine"), ("urgent", "urgent"), ("stat", "stat")]
)
def test_priority_becomes_urgency(
    coordinator: User,
    api_client_for: ClientFor,
    partner: Provider,
    priority: str,
    urgency: str,
) -> None:
    data = adapted_myringotomy(partner.npi)
    data["priority"] = priority
    assert post_fhir(api_client_for(coordinator), SEARCH, data).status_code == 201
    assert Referral.objects.get().urgency == urgency


def test_the_same_order_twice_is_a_409_naming_the_first_in_fhir_terms(
    coordinator: User, api_client_for: ClientFor, partner: Provider
) -> None:
    client = api_client_for(coordinator)
    data = adapted_myringotomy(partner.npi)
    first = post_fhir(client, SEARCH, data)
    again = post_fhir(client, SEARCH, data)
    assert again.status_code == 409
    assert again.json()["issue"][0]["code"] == "duplicate"
    text = outcome_text(again)
    assert f"received before as ServiceRequest/{first.json()['id']}" in text
    assert "HL7" not in text and "message" not in text
    # Without an identifier, the same content is the same order.
    del data["identifier"]
    assert post_fhir(client, SEARCH, data).status_code == 201
    assert post_fhir(client, SEARCH, data).status_code == 409
    assert Referral.objects.count() == 2


def test_an_unknown_npi_is_a_422_naming_it(coordinator: User, api_client_for: ClientFor) -> None:
    npi = ProviderFactory.build().npi
    response = post_fhir(api_client_for(coordinator), SEARCH, adapted_myringotomy(npi))
    assert response.status_code == 422
    assert f"No partner in the directory has the requester's NPI {npi}" in outcome_text(response)
    assert not Referral.objects.exists()
    assert not Provider.objects.filter(npi=npi).exists()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda d: d["contained"][0].update(
                identifier=[{"system": NPI_SYSTEM, "value": "1234567890"}]
            ),
            "not a valid NPI",
        ),
        (lambda d: d.update(subject={"display": "Beverly Weaver"}), "contained Patient"),
        (lambda d: d["contained"][1].pop("birthDate"), "full birthDate"),
        (lambda d: d["contained"][1].update(birthDate="2008"), "full birthDate"),
        (lambda d: d["contained"][1].update(birthDate="1850-01-01"), "before 1900"),
        (lambda d: d["contained"][1].update(name=[{"text": "Cher"}]), "family and a given name"),
        (lambda d: [d.pop(k) for k in ("code", "reasonCode", "note")], "no reason"),
        (lambda d: d.update(status="completed"), "only an active"),
        (lambda d: d.update(note=[{"text": "x" * 6000}]), "longer than 5,000"),
        (
            lambda d: d["contained"][1].update(name=[{"family": "\u200b\u202e", "given": ["Al"]}]),
            "Patient last name holds only invisible characters",
        ),
    ],
)
def test_an_order_that_cannot_become_a_referral_is_a_422_saying_why(
    coordinator: User,
    api_client_for: ClientFor,
    partner: Provider,
    change: Callable[[dict[str, Any]], Any],
    message: str,
) -> None:
    data = adapted_myringotomy(partner.npi)
    change(data)
    response = post_fhir(api_client_for(coordinator), SEARCH, data)
    assert response.status_code == 422
    assert message in outcome_text(response)
    assert not Referral.objects.exists()


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ("{not json", 400, "not valid JSON"),
        ("[]", 400, "JSON object"),
        ('"ServiceRequest"', 400, "JSON object"),
        ("[" * 100_000 + "]" * 100_000, 400, "not valid JSON"),
        ('{"resourceType": "ServiceRequest", "x": "\\ud800"}', 400, "not valid JSON"),
        (b"\xff\xfe{}", 400, "not valid JSON"),
        (json.dumps(fhir_example("Practitioner-example.json")), 400, "Expected a ServiceRequest"),
        ('{"resourceType": "<script>alert(1)</script>"}', 400, "Expected a ServiceRequest"),
        ('{"status": "active"}', 400, "resourceType is missing"),
        (
            '{"resourceType": "ServiceRequest", "status": "bogus", "intent": "order"}',
            400,
            "not a valid FHIR R4 ServiceRequest",
        ),
    ],
)
def test_a_body_that_is_no_service_request_is_a_400_outcome(
    coordinator: User, api_client_for: ClientFor, body: str | bytes, status: int, message: str
) -> None:
    response = post_fhir(api_client_for(coordinator), SEARCH, body)
    assert response.status_code == status
    assert message in outcome_text(response)


def test_a_body_sent_as_another_content_type_is_a_415(
    coordinator: User, api_client_for: ClientFor, partner: Provider
) -> None:
    response = api_client_for(coordinator).post(
        SEARCH, json.dumps(adapted_myringotomy(partner.npi)), content_type="text/plain"
    )
    assert response.status_code == 415
    assert "application/fhir+json" in outcome_text(response)
    plain_json = api_client_for(coordinator).post(
        SEARCH, json.dumps(adapted_myringotomy(partner.npi)), content_type="application/json"
    )
    assert plain_json.status_code == 201


def test_a_body_too_large_is_a_413(
    coordinator: User, api_client_for: ClientFor, settings: Any
) -> None:
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    response = post_fhir(api_client_for(coordinator), SEARCH, "{" + " " * 2000 + "}")
    assert response.status_code == 413
    assert outcome_text(response)


def test_a_resource_nested_too_deeply_is_a_400_saying_so_not_a_500(
    coordinator: User, api_client_for: ClientFor, partner: Provider
) -> None:
    """Extensions may hold extensions: a few hundred levels (a 10 kB body) overflowed the
    validator's stack and the EHR got a 500."""
    data = adapted_myringotomy(partner.npi)
    extension: dict[str, Any] = {"url": "http://example.org/leaf", "valueString": "x"}
    for _ in range(200):
        extension = {"url": "http://example.org/branch", "extension": [extension]}
    data["extension"] = [extension]
    client = api_client_for(coordinator)
    client.raise_request_exception = False

    response = post_fhir(client, SEARCH, data)

    assert response.status_code == 400
    assert "nested" in outcome_text(response)
    assert not Referral.objects.exists()


@pytest.mark.parametrize(
    ("resource", "where"),
    [
        ({"resourceType": None}, "contained.2"),
        ({"resourceType": "Nope"}, "contained.2"),
        ({"resourceType": ["Patient"]}, "contained.2"),
        (
            {"resourceType": "Patient", "contained": [{"resourceType": "Nope"}]},
            "contained.2.contained.0",
        ),
        (
            {
                "resourceType": "Bundle",
                "type": "collection",
                "entry": [{"resource": {"resourceType": None}}],
            },
            "contained.2.entry.0.resource",
        ),
        (
            {
                "resourceType": "Parameters",
                "parameter": [{"name": "x", "resource": {"resourceType": 7}}],
            },
            "contained.2.parameter.0.resource",
        ),
    ],
)
def test_a_contained_resource_of_no_fhir_type_is_a_400_naming_where_not_a_500(
    coordinator: User,
    api_client_for: ClientFor,
    partner: Provider,
    resource: dict[str, Any],
    where: str,
) -> None:
    """The R4 models fail with a TypeError or KeyError, not a validation error, on a
    resource whose resourceType is no FHIR type, wherever it is held (a contained
    resource, a Bundle's entry inside one): the EHR got a 500."""
    data = adapted_myringotomy(partner.npi)
    data["contained"].append(resource)
    client = api_client_for(coordinator)
    client.raise_request_exception = False

    response = post_fhir(client, SEARCH, data)

    assert response.status_code == 400
    assert f"{where}: its resourceType is" in outcome_text(response)
    assert "not a FHIR R4 resource type" in outcome_text(response)
    assert not Referral.objects.exists()


HOSTILE = [
    "<script>alert('x')</script>",
    "Robert'); DROP TABLE referrals_referral;--",
    "' OR 1=1 --",
    "Zoë \u202eevil\u202c \U0001f9e8 \u0301\u200b",
    "nul\x00byte and \x07bell",
    "\U0001d518\U0001d52b\U0001d526 " * 70,  # mathematical letters, 280 characters
]


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_strings_are_stored_harmlessly(
    coordinator: User, api_client_for: ClientFor, partner: Provider, text: str
) -> None:
    data = adapted_myringotomy(partner.npi)
    # As much of it as a name holds: a longer name is refused (tested below).
    data["contained"][1]["name"] = [{"family": text[:100], "given": [text[:100]]}]
    data["note"] = [{"text": text}]
    data["identifier"][0]["value"] = text[:150]
    client = api_client_for(coordinator)
    response = post_fhir(client, SEARCH, data)
    assert response.status_code == 201, response.content
    referral = Referral.objects.get()
    assert "\x00" not in referral.patient_last_name + referral.reason
    # Shown escaped on the page, as anything typed into a form is.
    page = Client()
    page.force_login(coordinator)
    html = page.get(referral.get_absolute_url()).content.decode()
    assert "<script>alert" not in html
    read = client.get(f"{SEARCH}/{referral.pk}")
    assert read.status_code == 200
    _valid(read.json())


def test_hostile_search_values_are_400s_or_no_matches(
    coordinator: User, api_client_for: ClientFor
) -> None:
    client = api_client_for(coordinator)
    for value in HOSTILE:
        for parameter in ("status", "requester", "requester:identifier", "authored"):
            response = client.get(SEARCH, {parameter: value})
            assert response.status_code in (200, 400), (parameter, value)
            if response.status_code == 200:
                assert response.json()["total"] == 0


def test_a_referral_reads_back_with_patient_details_for_a_coordinator_and_is_audited(
    coordinator: User, api_client_for: ClientFor
) -> None:
    referral = ReferralFactory.create(
        patient_first_name="Maria",
        patient_last_name="Lopez",
        patient_dob=date(1970, 3, 1),
        urgency="urgent",
        reason="Knee pain.",
    )
    response = api_client_for(coordinator).get(f"{SEARCH}/{referral.pk}")
    assert response.status_code == 200
    resource = _valid(response.json())
    patient = resource["contained"][0]
    assert patient["name"][0] == {"use": "official", "family": "Lopez", "given": ["Maria"]}
    assert patient["birthDate"] == "1970-03-01"
    assert resource["subject"]["reference"] == "#patient"
    assert resource["reasonCode"] == [{"text": "Knee pain."}]
    assert resource["priority"] == "urgent"
    assert resource["requester"]["identifier"]["value"] == referral.provider.npi
    audit = PatientDataAccess.objects.get(referral_id=referral.pk)
    assert (audit.action, audit.source, audit.user) == ("view", "api", coordinator)


def test_an_outbound_referral_names_the_partner_as_performer(
    manager: User, api_client_for: ClientFor
) -> None:
    referral = ReferralFactory.create(direction="outbound", status="declined", decline_reason="x")
    resource = _valid(api_client_for(manager).get(f"{SEARCH}/{referral.pk}").json())
    assert "requester" not in resource
    assert resource["performer"][0]["reference"] == f"Practitioner/{referral.provider_id}"
    assert resource["status"] == "revoked"


def test_a_liaison_sees_initials_only_and_no_audit_row_is_written(
    liaison: User, api_client_for: ClientFor
) -> None:
    referral = ReferralFactory.create(
        provider=ProviderFactory.create(owner=liaison),
        # Names no partner or office (made up by Faker) could carry.
        patient_first_name="Xiomara",
        patient_last_name="Quintanilla-Oyelaran",
        reason="Knee pain.",
    )
    client = api_client_for(liaison)
    resource = _valid(client.get(f"{SEARCH}/{referral.pk}").json())
    text = json.dumps(resource)
    assert resource["subject"] == {"display": "X.Q."}
    assert "Quintanilla" not in text and "Xiomara" not in text and "Knee" not in text
    assert "contained" not in resource and "reasonCode" not in resource
    bundle = client.get(SEARCH).json()
    assert "Quintanilla" not in json.dumps(bundle)
    assert bundle["entry"][0]["resource"]["subject"] == {"display": "X.Q."}
    assert not PatientDataAccess.objects.exists()


def test_a_liaison_cannot_read_the_referrals_of_another_liaisons_partners(
    liaison: User, other_liaison: User, api_client_for: ClientFor
) -> None:
    theirs = ReferralFactory.create(provider=ProviderFactory.create(owner=other_liaison))
    mine = ReferralFactory.create(provider=ProviderFactory.create(owner=liaison))
    client = api_client_for(liaison)
    response = client.get(f"{SEARCH}/{theirs.pk}")
    assert response.status_code == 404
    assert outcome_text(response)
    assert [e["resource"]["id"] for e in client.get(SEARCH).json()["entry"]] == [str(mine.pk)]


def test_a_liaison_may_not_create_referrals(
    liaison: User, api_client_for: ClientFor, partner: Provider
) -> None:
    response = post_fhir(api_client_for(liaison), SEARCH, adapted_myringotomy(partner.npi))
    assert response.status_code == 403
    assert "role does not allow" in outcome_text(response)
    assert not Referral.objects.exists()


def test_searches_filter_by_status_requester_and_authored_date_and_audit_the_page(
    coordinator: User, api_client_for: ClientFor
) -> None:
    now = timezone.now()
    ana = ProviderFactory.create()
    old = ReferralFactory.create(provider=ana, received_at=now - timedelta(days=40))
    recent = ReferralFactory.create(provider=ana, received_at=now - timedelta(days=1))
    seen = ReferralFactory.create(received_at=now - timedelta(days=2), status="seen")
    client = api_client_for(coordinator)

    def ids(query: dict[str, Any]) -> list[str]:
        bundle = _valid(client.get(SEARCH, query).json())
        return [entry["resource"]["id"] for entry in bundle.get("entry", [])]

    assert ids({}) == [str(recent.pk), str(seen.pk), str(old.pk)]
    assert ids({"status": "completed"}) == [str(seen.pk)]
    assert ids({"status": "active,on-hold"}) == [str(recent.pk), str(old.pk)]
    # FHIR codes the server never holds (a posted draft is received as active) find nothing.
    assert ids({"status": "draft"}) == []
    assert ids({"status": "draft,completed"}) == [str(seen.pk)]
    # Nothing here is a duplicate (referral_mark_duplicate).
    assert ids({"status": "entered-in-error"}) == []
    assert ids({"requester:identifier": f"{NPI_SYSTEM}|{ana.npi}"}) == [
        str(recent.pk),
        str(old.pk),
    ]
    assert ids({"requester.identifier": ana.npi}) == [str(recent.pk), str(old.pk)]
    assert ids({"requester": f"Practitioner/{ana.pk}"}) == [str(recent.pk), str(old.pk)]
    since = (now - timedelta(days=10)).date().isoformat()
    assert ids({"authored": f"ge{since}"}) == [str(recent.pk), str(seen.pk)]
    assert ids({"authored": [f"lt{since}", "ge2000-01-01"]}) == [str(old.pk)]
    listed = PatientDataAccess.objects.filter(action="list", source="api")
    assert {row.referral_id for row in listed} == {old.pk, recent.pk, seen.pk}
    assert client.get(SEARCH, {"status": "nonsense"}).status_code == 400
    assert client.get(SEARCH, {"authored": "yesterday"}).status_code == 400


def test_more_authored_values_than_the_search_reads_are_a_400_not_dropped(
    coordinator: User, api_client_for: ClientFor
) -> None:
    """The fifth was ignored, yet the Bundle's self link named it as applied: a client
    read a page of every referral as the match for its dates."""
    ReferralFactory.create()
    client = api_client_for(coordinator)
    dates = ["ge2000-01-01", "ge2001-01-01", "ge2002-01-01", "ge2003-01-01", "lt2000-01-01"]

    response = client.get(SEARCH, {"authored": dates})

    assert response.status_code == 400
    assert "authored" in outcome_text(response)
    assert client.get(SEARCH, {"authored": dates[:4]}).json()["total"] == 1


def test_a_referral_search_costs_the_same_queries_as_rows_grow(
    coordinator: User, token_for: Callable[[Any], str], django_assert_num_queries: Any
) -> None:
    client = Client(headers={"Authorization": f"Bearer {token_for(coordinator)}"})
    ReferralFactory.create_batch(2)
    # Token, expired tokens, permissions, count, page, and the audit row insert.
    with django_assert_num_queries(6):
        assert len(client.get(SEARCH).json()["entry"]) == 2
    ReferralFactory.create_batch(10)
    with django_assert_num_queries(6):
        assert len(client.get(SEARCH).json()["entry"]) == 12


def test_the_posted_official_example_copy_is_untouched(partner: Provider) -> None:
    original = fhir_example("ServiceRequest-myringotomy.json")
    adapted_myringotomy(partner.npi)
    assert fhir_example("ServiceRequest-myringotomy.json") == copy.deepcopy(original)


@pytest.mark.parametrize("prefix", ["eq", "ne", "gt", "ge", "lt", "le"])
def test_an_authored_search_on_the_first_or_last_day_of_the_calendar_is_answered(
    coordinator: User, api_client_for: ClientFor, prefix: str
) -> None:
    referral = ReferralFactory.create()
    client = api_client_for(coordinator)

    def ids(day: str) -> list[str]:
        response = client.get(SEARCH, {"authored": f"{prefix}{day}"})
        assert response.status_code == 200, response.content
        return [entry["resource"]["id"] for entry in _valid(response.json()).get("entry", [])]

    # Every referral is after 0001-01-01 and before 9999-12-31.
    after_first = prefix in ("ne", "gt", "ge")
    before_last = prefix in ("ne", "lt", "le")
    assert ids("0001-01-01") == ([str(referral.pk)] if after_first else [])
    assert ids("9999-12-31") == ([str(referral.pk)] if before_last else [])


def test_a_conditional_create_on_the_last_day_of_the_calendar_is_answered(
    coordinator: User, api_client_for: ClientFor, partner: Provider
) -> None:
    ReferralFactory.create()
    response = api_client_for(coordinator).post(
        SEARCH,
        json.dumps(adapted_myringotomy(partner.npi)),
        content_type="application/fhir+json",
        headers={"If-None-Exist": "authored=gt9999-12-31"},
    )
    assert response.status_code == 201, response.content


@pytest.mark.parametrize(
    ("element", "value"),
    [("intent", "bogus"), ("intent", 7), ("priority", "bogus"), ("priority", "Routine")],
)
def test_an_intent_or_priority_outside_the_r4_codes_is_a_400_naming_it(
    coordinator: User, api_client_for: ClientFor, partner: Provider, element: str, value: Any
) -> None:
    data = adapted_myringotomy(partner.npi)
    data[element] = value
    response = post_fhir(api_client_for(coordinator), SEARCH, data)
    assert response.status_code == 400, response.content
    assert element in outcome_text(response)
    assert not Referral.objects.exists()


@pytest.mark.parametrize(
    ("element", "value", "said"),
    [
        ("resourceType", 5, "resourceType is not text"),
        ("resourceType", "Service\x00Request", "resourceType is “Service\\u0000Request”"),
        ("resourceType", "Service\u200bRequest", "resourceType is “Service\\u200bRequest”"),
        ("intent", "order\x07", "intent is “order\\u0007”"),
        ("priority", "\u202eroutine", "priority is “\\u202eroutine”"),
    ],
)
def test_a_code_that_only_looks_right_is_shown_as_sent_in_the_400(
    coordinator: User,
    api_client_for: ClientFor,
    partner: Provider,
    element: str,
    value: Any,
    said: str,
) -> None:
    """A number was reported as a missing resourceType, and a code with an invisible
    character in it as the very code the message asked for ("Expected a ServiceRequest,
    but resourceType is “ServiceRequest”"): the sender could not see what to fix."""
    data = adapted_myringotomy(partner.npi)
    data[element] = value
    response = post_fhir(api_client_for(coordinator), SEARCH, data)
    assert response.status_code == 400, response.content
    assert said in outcome_text(response)
    assert not Referral.objects.exists()


@pytest.mark.parametrize("intent", ["proposal", "plan", "option", "filler-order"])
def test_a_request_that_is_not_the_requesters_order_is_a_422(
    coordinator: User, api_client_for: ClientFor, partner: Provider, intent: str
) -> None:
    data = adapted_myringotomy(partner.npi)
    data["intent"] = intent
    response = post_fhir(api_client_for(coordinator), SEARCH, data)
    assert response.status_code == 422, response.content
    assert f"intent is {intent}" in outcome_text(response)
    assert not Referral.objects.exists()


@pytest.mark.parametrize("intent", ["order", "original-order", "reflex-order"])
def test_an_order_of_the_requester_is_received_whichever_kind(
    coordinator: User, api_client_for: ClientFor, partner: Provider, intent: str
) -> None:
    data = adapted_myringotomy(partner.npi)
    data["intent"] = intent
    response = post_fhir(api_client_for(coordinator), SEARCH, data)
    assert response.status_code == 201, response.content
    assert response.json()["intent"] == "order"


@pytest.mark.parametrize(
    ("name", "element"),
    [
        ({"family": "W" * 101, "given": ["Beverly"]}, "name.family"),
        ({"family": "Weaver", "given": ["Beverly", "A" * 100]}, "name.given"),
        ({"text": "Beverly " + "W" * 10_000}, "name.family"),
    ],
)
def test_a_patient_name_too_long_to_keep_is_a_422_naming_it_not_cut(
    coordinator: User,
    api_client_for: ClientFor,
    partner: Provider,
    name: dict[str, Any],
    element: str,
) -> None:
    data = adapted_myringotomy(partner.npi)
    data["contained"][1]["name"] = [name]
    response = post_fhir(api_client_for(coordinator), SEARCH, data)
    assert response.status_code == 422, response.content
    assert f"Patient's {element} is longer than 100 characters" in outcome_text(response)
    assert not Referral.objects.exists()


# A name part withheld, as FHIR JSON sends it: null in the array, its reason in "_given".
MASKED = {
    "extension": [
        {"url": "http://hl7.org/fhir/StructureDefinition/data-absent-reason", "valueCode": "masked"}
    ]
}


def test_a_given_name_part_sent_as_an_extension_only_is_left_out_not_a_500(
    coordinator: User, api_client_for: ClientFor, partner: Provider
) -> None:
    data = adapted_myringotomy(partner.npi)
    data["contained"][1]["name"] = [
        {"family": "Weaver", "given": ["Beverly", None], "_given": [None, MASKED]}
    ]
    response = post_fhir(api_client_for(coordinator), SEARCH, data)
    assert response.status_code == 201, response.content
    assert Referral.objects.get().patient_first_name == "Beverly"


def test_a_given_name_withheld_entirely_is_a_422_naming_what_is_missing(
    coordinator: User, api_client_for: ClientFor, partner: Provider
) -> None:
    data = adapted_myringotomy(partner.npi)
    data["contained"][1]["name"] = [{"family": "Weaver", "given": [None], "_given": [MASKED]}]
    response = post_fhir(api_client_for(coordinator), SEARCH, data)
    assert response.status_code == 422, response.content
    assert "needs a family and a given name" in outcome_text(response)
    assert not Referral.objects.exists()


@pytest.mark.parametrize("phone", ["call the mother", "555-0199", "+44 20 7946 0958", "9" * 40])
def test_a_patient_phone_that_is_no_us_number_is_a_422_naming_it(
    coordinator: User, api_client_for: ClientFor, partner: Provider, phone: str
) -> None:
    data = adapted_myringotomy(partner.npi)
    data["contained"][1]["telecom"] = [{"system": "phone", "value": phone}]
    response = post_fhir(api_client_for(coordinator), SEARCH, data)
    assert response.status_code == 422, response.content
    assert "telecom phone" in outcome_text(response)
    assert not Referral.objects.exists()


def test_a_refused_patient_phone_is_not_echoed_in_the_error_body(
    coordinator: User, api_client_for: ClientFor, partner: Provider
) -> None:
    # An OperationOutcome ends up in the sender's integration-engine logs: it names the
    # element at fault, never the patient's phone.
    data = adapted_myringotomy(partner.npi)
    data["contained"][1]["telecom"] = [{"system": "phone", "value": "+44 20 7946 0958"}]
    response = post_fhir(api_client_for(coordinator), SEARCH, data)
    assert response.status_code == 422, response.content
    assert "telecom phone" in outcome_text(response)
    assert "7946" not in response.content.decode()


def test_a_patient_phone_is_stored_as_staff_dial_it(
    coordinator: User, api_client_for: ClientFor, partner: Provider
) -> None:
    data = adapted_myringotomy(partner.npi)
    data["contained"][1]["telecom"] = [{"system": "phone", "value": "+1 402.555.0199 ext. 12"}]
    response = post_fhir(api_client_for(coordinator), SEARCH, data)
    assert response.status_code == 201, response.content
    assert Referral.objects.get().patient_phone == "(402) 555-0199 x12"


def test_a_referral_marked_as_a_duplicate_is_entered_in_error(
    coordinator: User, api_client_for: ClientFor
) -> None:
    """FHIR's own status for a record that should not have been in it: an EHR reading the
    referrals sees the copy as such, not as a referral the practice cancelled."""
    from referrals.services.duplicates import referral_mark_duplicate

    now = timezone.now()
    original = ReferralFactory.create(received_at=now - timedelta(days=2))
    copy_ = ReferralFactory.create(
        received_at=now - timedelta(days=1),
        provider=original.provider,
        patient_last_name=original.patient_last_name,
        patient_dob=original.patient_dob,
    )
    cancelled = ReferralFactory.create(
        received_at=now - timedelta(days=3), status="cancelled", cancel_reason="Moved away"
    )
    referral_mark_duplicate(referral=copy_, original=original, actor=None)
    client = api_client_for(coordinator)

    def ids(query: dict[str, Any]) -> list[str]:
        bundle = _valid(client.get(SEARCH, query).json())
        return [entry["resource"]["id"] for entry in bundle.get("entry", [])]

    assert _valid(client.get(f"{SEARCH}/{copy_.pk}").json())["status"] == "entered-in-error"
    assert ids({"status": "entered-in-error"}) == [str(copy_.pk)]
    assert ids({"status": "revoked"}) == [str(cancelled.pk)]
    assert ids({"status": "revoked,entered-in-error"}) == [str(copy_.pk), str(cancelled.pk)]
    assert ids({"status": "active"}) == [str(original.pk)]
    api = client.get(f"/api/v1/referrals/{copy_.pk}/").json()
    assert api["status"] == "cancelled" and api["duplicate_of"] == original.pk


def test_a_referral_sent_out_twice_and_marked_as_a_copy_is_entered_in_error(
    coordinator: User, api_client_for: ClientFor
) -> None:
    from referrals.services.duplicates import referral_mark_duplicate

    now = timezone.now()
    first = ReferralFactory.create(
        direction="outbound", received_at=now - timedelta(days=2), in_network=True
    )
    again = ReferralFactory.create(
        direction="outbound",
        received_at=now - timedelta(days=1),
        provider=first.provider,
        patient_last_name=first.patient_last_name,
        patient_dob=first.patient_dob,
        in_network=True,
    )
    referral_mark_duplicate(referral=again, original=first, actor=None)
    client = api_client_for(coordinator)

    def ids(query: dict[str, Any]) -> list[str]:
        bundle = _valid(client.get(SEARCH, query).json())
        return [entry["resource"]["id"] for entry in bundle.get("entry", [])]

    assert ids({"status": "active"}) == [str(first.pk)]
    assert ids({"status": "entered-in-error"}) == [str(again.pk)]
