"""REST API lists: filters an integration syncs by, capped pages, and a 400 naming the
parameter for a value the API cannot read."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml
from django.contrib.auth.models import User
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from audit.models import PatientDataAccess
from partners.factories import ProviderFactory
from partners.models import Organization, Provider
from partners.services.health import providers_assess_health
from partners.services.merges import partner_merge
from referrals.factories import ReferralFactory
from referrals.models import Referral

pytestmark = pytest.mark.django_db

ClientFor = Callable[[Any], Client]
PRACTICE_TZ = ZoneInfo("America/New_York")


def ids(response: Any) -> list[int]:
    assert response.status_code == 200, response.content
    return sorted(row["id"] for row in response.json()["results"])


def partners(client: Client, **params: Any) -> Any:
    return client.get(reverse("api:partner-list"), params)


def referrals(client: Client, **params: Any) -> Any:
    return client.get(reverse("api:referral-list"), params)


def test_partners_filter_by_npi_taxonomy_specialty_status_and_health(
    liaison: User, api_client_for: ClientFor
) -> None:
    ortho = ProviderFactory.create(
        taxonomy_code="207X00000X",
        specialty="Orthopaedic Surgery",
        status=Provider.Status.ACTIVE,
        health=Provider.Health.AT_RISK,
    )
    family = ProviderFactory.create(
        taxonomy_code="207Q00000X",
        specialty="Family Medicine",
        status=Provider.Status.PROSPECT,
        health=Provider.Health.NEW,
    )
    client = api_client_for(liaison)
    assert ids(partners(client, npi=ortho.npi)) == [ortho.pk]
    assert ids(partners(client, taxonomy="207Q00000X")) == [family.pk]
    assert ids(partners(client, specialty="orthopaedic")) == [ortho.pk]
    assert ids(partners(client, status="prospect")) == [family.pk]
    assert ids(partners(client, status=["prospect", "active"])) == [ortho.pk, family.pk]
    assert ids(partners(client, health="at_risk")) == [ortho.pk]
    assert ids(partners(client, organization=family.organization_id)) == [family.pk]


def test_partners_filter_by_the_time_they_last_changed(
    liaison: User, api_client_for: ClientFor
) -> None:
    old, recent = ProviderFactory.create_batch(2)
    Provider.objects.filter(pk=old.pk).update(updated_at=timezone.now() - timedelta(days=10))
    assert old.organization is not None
    Organization.objects.filter(pk=old.organization.pk).update(
        updated_at=timezone.now() - timedelta(days=10)
    )
    since = (timezone.now() - timedelta(days=1)).isoformat()
    assert ids(partners(api_client_for(liaison), updated_since=since)) == [recent.pk]


def test_referrals_filter_by_status_direction_urgency_channel_and_partner(
    coordinator: User, api_client_for: ClientFor
) -> None:
    partner = ProviderFactory.create()
    inbound = ReferralFactory.create(
        provider=partner,
        direction=Referral.Direction.INBOUND,
        status=Referral.Status.RECEIVED,
        urgency=Referral.Urgency.STAT,
        channel=Referral.Channel.E_REFERRAL,
    )
    outbound = ReferralFactory.create(
        direction=Referral.Direction.OUTBOUND,
        status=Referral.Status.SCHEDULED,
        urgency=Referral.Urgency.ROUTINE,
        channel=Referral.Channel.FAX,
    )
    client = api_client_for(coordinator)
    assert ids(referrals(client, status="scheduled")) == [outbound.pk]
    assert ids(referrals(client, status=["scheduled", "received"])) == [inbound.pk, outbound.pk]
    assert ids(referrals(client, direction="inbound")) == [inbound.pk]
    assert ids(referrals(client, urgency="stat")) == [inbound.pk]
    assert ids(referrals(client, channel="fax")) == [outbound.pk]
    assert ids(referrals(client, provider=partner.pk)) == [inbound.pk]
    assert ids(referrals(client, provider_npi=partner.npi)) == [inbound.pk]


def test_referrals_filter_by_received_day_in_the_practice_time_zone_both_ends_included(
    coordinator: User, api_client_for: ClientFor
) -> None:
    # 11 pm in New York on Jan 31 is already Feb 1 in UTC: it belongs to Jan 31.
    late_january = ReferralFactory.create(
        received_at=datetime(2026, 1, 31, 23, 0, tzinfo=PRACTICE_TZ)
    )
    february = ReferralFactory.create(received_at=datetime(2026, 2, 1, 9, 0, tzinfo=PRACTICE_TZ))
    client = api_client_for(coordinator)
    january = {"received_after": "2026-01-01", "received_before": "2026-01-31"}
    assert ids(referrals(client, **january)) == [late_january.pk]
    assert ids(referrals(client, received_after="2026-02-01")) == [february.pk]


def test_a_partner_whose_office_changed_is_in_a_sync_since_then(
    liaison: User, api_client_for: ClientFor
) -> None:
    moved = ProviderFactory.create()
    ProviderFactory.create()  # at an office nobody changed
    ten_days_ago = timezone.now() - timedelta(days=10)
    Provider.objects.update(updated_at=ten_days_ago)
    Organization.objects.update(updated_at=ten_days_ago)
    assert moved.organization is not None
    office = Organization.objects.get(pk=moved.organization.pk)
    office.fax = "(402) 555-0188"
    office.save()
    since = (timezone.now() - timedelta(days=1)).isoformat()
    response = partners(api_client_for(liaison), updated_since=since)
    assert ids(response) == [moved.pk]
    assert response.json()["results"][0]["organization"]["fax"] == "(402) 555-0188"


@pytest.mark.parametrize("how", ["one", "in_bulk"])
def test_a_partner_whose_office_was_deleted_is_in_a_sync_since_then(
    liaison: User, api_client_for: ClientFor, how: str
) -> None:
    left = ProviderFactory.create()
    ProviderFactory.create()  # at an office nobody deleted
    ten_days_ago = timezone.now() - timedelta(days=10)
    Provider.objects.update(updated_at=ten_days_ago)
    Organization.objects.update(updated_at=ten_days_ago)
    assert left.organization is not None
    # The admin deletes one office from its page, or several with its bulk action.
    if how == "one":
        Organization.objects.get(pk=left.organization.pk).delete()
    else:
        Organization.objects.filter(pk=left.organization.pk).delete()
    since = (timezone.now() - timedelta(days=1)).isoformat()
    response = partners(api_client_for(liaison), updated_since=since)
    assert ids(response) == [left.pk]
    assert response.json()["results"][0]["organization"] is None


def test_a_partner_whose_health_the_nightly_assessment_changed_is_in_the_next_sync(
    liaison: User, api_client_for: ClientFor
) -> None:
    silent = ProviderFactory.create()
    ReferralFactory.create(provider=silent, received_at=timezone.now() - timedelta(days=300))
    Provider.objects.update(updated_at=timezone.now() - timedelta(days=10))
    since = (timezone.now() - timedelta(days=1)).isoformat()
    providers_assess_health(as_of=timezone.localdate())
    response = partners(api_client_for(liaison), updated_since=since)
    assert ids(response) == [silent.pk]
    assert response.json()["results"][0]["health"] == Provider.Health.DORMANT


def test_referrals_a_merge_moved_to_the_surviving_partner_are_in_a_sync_since_then(
    manager: User, api_client_for: ClientFor
) -> None:
    survivor, duplicate = ProviderFactory.create_batch(2)
    moved = ReferralFactory.create(provider=duplicate)
    ReferralFactory.create(provider=survivor)
    Referral.objects.update(updated_at=timezone.now() - timedelta(days=10))
    partner_merge(survivor=survivor, duplicate=duplicate, actor=manager)
    since = (timezone.now() - timedelta(days=1)).isoformat()
    client = api_client_for(manager)
    response = referrals(client, updated_since=since)
    assert ids(response) == [moved.pk]
    assert response.json()["results"][0]["provider"] == survivor.pk


def test_referrals_filter_by_the_time_they_last_changed(
    coordinator: User, api_client_for: ClientFor
) -> None:
    old, recent = ReferralFactory.create_batch(2)
    Referral.objects.filter(pk=old.pk).update(updated_at=timezone.now() - timedelta(days=10))
    since = (timezone.now() - timedelta(days=1)).isoformat()
    assert ids(referrals(api_client_for(coordinator), updated_since=since)) == [recent.pk]


def test_filters_never_widen_what_a_liaison_may_read(
    liaison: User, other_liaison: User, api_client_for: ClientFor
) -> None:
    theirs = ReferralFactory.create(provider=ProviderFactory.create(owner=other_liaison))
    client = api_client_for(liaison)
    assert ids(referrals(client, provider=theirs.provider_id)) == []
    assert ids(referrals(client, provider_npi=theirs.provider.npi)) == []


def test_a_filtered_page_audits_only_the_referrals_on_it(
    coordinator: User, api_client_for: ClientFor
) -> None:
    shown = ReferralFactory.create(status=Referral.Status.SEEN)
    ReferralFactory.create(status=Referral.Status.RECEIVED)
    assert ids(referrals(api_client_for(coordinator), status="seen")) == [shown.pk]
    audited = PatientDataAccess.objects.values_list("referral_id", flat=True)
    assert list(audited) == [shown.pk]


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("status", {"status": "lost"}),
        ("direction", {"direction": "sideways"}),
        ("provider", {"provider": "abc"}),
        ("provider", {"provider": "1.5"}),
        ("provider", {"provider": "0"}),
        ("provider_npi", {"provider_npi": "12345"}),
        ("received_after", {"received_after": "2026-02-30"}),
        ("received_before", {"received_before": "yesterday"}),
        ("updated_since", {"updated_since": "not-a-time"}),
        ("channel", {"channel": "\x00"}),
    ],
)
def test_a_referral_filter_value_the_api_cannot_read_is_a_400_naming_it(
    coordinator: User, api_client_for: ClientFor, name: str, params: dict[str, str]
) -> None:
    response = referrals(api_client_for(coordinator), **params)
    assert response.status_code == 400
    assert list(response.json()) == [name]


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("npi", {"npi": "123456789X"}),
        ("status", {"status": "friend"}),
        ("health", {"health": "great"}),
        ("specialty", {"specialty": "ortho\x00"}),
        ("organization", {"organization": "99999999999999999999999"}),
        ("updated_since", {"updated_since": "2026-13-01"}),
    ],
)
def test_a_partner_filter_value_the_api_cannot_read_is_a_400_naming_it(
    liaison: User, api_client_for: ClientFor, name: str, params: dict[str, str]
) -> None:
    response = partners(api_client_for(liaison), **params)
    assert response.status_code == 400
    assert list(response.json()) == [name]


# Digits other than 0-9, which int() also reads as numbers.
ARABIC_INDIC = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")


def test_an_id_filter_in_digits_other_than_0_to_9_is_a_400_naming_it(
    coordinator: User, api_client_for: ClientFor
) -> None:
    provider = ProviderFactory.create()
    organization = str(provider.organization_id).translate(ARABIC_INDIC)
    response = partners(api_client_for(coordinator), organization=organization)
    assert response.status_code == 400
    assert response.json() == {"organization": ["Must be an id: a whole number in digits 0-9."]}


@pytest.mark.parametrize("name", ["api:partner-detail", "api:referral-detail"])
def test_a_row_id_in_digits_other_than_0_to_9_is_a_404_saying_so(
    coordinator: User, api_client_for: ClientFor, name: str
) -> None:
    referral = ReferralFactory.create()
    pk = referral.provider_id if name == "api:partner-detail" else referral.pk
    response = api_client_for(coordinator).get(
        reverse(name, args=[str(pk).translate(ARABIC_INDIC)])
    )
    assert response.status_code == 404
    assert "is not an id" in response.json()["detail"]


def test_a_one_value_filter_given_twice_is_a_400_naming_it(
    coordinator: User, api_client_for: ClientFor
) -> None:
    inbound = ReferralFactory.create(direction=Referral.Direction.INBOUND)
    client = api_client_for(coordinator)
    response = referrals(client, direction=["inbound", "outbound"])
    assert response.status_code == 400
    assert response.json() == {"direction": ["Give it once: it takes one value."]}
    # Filters that take several values still do.
    assert ids(referrals(client, status=["received", "seen"])) == [inbound.pk]


def test_a_page_is_at_most_100_rows_and_a_bigger_one_is_a_400_saying_so(
    coordinator: User, api_client_for: ClientFor
) -> None:
    ReferralFactory.create_batch(101)
    client = api_client_for(coordinator)
    body = referrals(client, page_size=100).json()
    assert (body["count"], len(body["results"])) == (101, 100)
    assert body["next"] is not None
    refused = referrals(client, page_size=1000)
    assert refused.status_code == 400
    assert refused.json() == {"page_size": ["Must be a whole number from 1 to 100."]}


@pytest.mark.parametrize(
    "params", [{"page": "0"}, {"page": "x"}, {"page_size": "-5"}, {"page": ""}]
)
def test_a_page_number_or_size_that_is_not_a_whole_number_in_range_is_a_400(
    coordinator: User, api_client_for: ClientFor, params: dict[str, str]
) -> None:
    response = referrals(api_client_for(coordinator), **params)
    assert response.status_code == 400
    assert list(response.json()) == list(params)


@pytest.mark.parametrize(("name", "values"), [("page", ["1", "2"]), ("page_size", ["5", "100"])])
def test_a_page_number_or_size_given_twice_is_a_400_not_the_last_one_read(
    coordinator: User, api_client_for: ClientFor, name: str, values: list[str]
) -> None:
    # The last value was read and the others dropped unsaid, as a filter's once were.
    ReferralFactory.create_batch(6)
    response = referrals(api_client_for(coordinator), **{name: values})
    assert response.status_code == 400
    assert response.json() == {name: ["Give it once: it takes one value."]}


def test_a_page_past_the_last_is_a_404_saying_so(
    coordinator: User, api_client_for: ClientFor
) -> None:
    # It said "Invalid page.", which a sync job's log cannot tell from a bad parameter.
    ReferralFactory.create()
    response = referrals(api_client_for(coordinator), page=2)
    assert response.status_code == 404
    assert response.json() == {
        "detail": "Page 2 is past the last page of this list: follow each page's next "
        "link, which is null on the last."
    }


def test_a_filter_sent_empty_is_a_400_not_every_row(
    coordinator: User, api_client_for: ClientFor
) -> None:
    ReferralFactory.create()
    response = referrals(api_client_for(coordinator), provider_npi="")
    assert response.status_code == 400
    assert response.json() == {
        "provider_npi": ["Empty: leave the parameter out not to filter by it."]
    }


@pytest.mark.parametrize(
    ("name", "values"), [("status", [""]), ("status", ["seen", ""]), ("urgency", [""])]
)
def test_a_choice_filter_sent_empty_is_a_400_saying_it_is_empty(
    coordinator: User, api_client_for: ClientFor, name: str, values: list[str]
) -> None:
    # It said "Select a valid choice.  is not one of the available choices.", naming
    # nothing a sync job's log could point to.
    response = referrals(api_client_for(coordinator), **{name: values})
    assert response.status_code == 400
    assert response.json() == {name: ["Empty: leave the parameter out not to filter by it."]}


@pytest.mark.parametrize("path", ["/api/v1/referrals/1.5/", "/api/v1/nothing%0A"])
def test_an_address_the_api_does_not_have_is_a_json_404(
    coordinator: User, api_client_for: ClientFor, path: str
) -> None:
    response = api_client_for(coordinator).get(path)
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert "schema" in response.json()["detail"]


@pytest.mark.parametrize("path", ["/api/v1/referrals", "/api/v1/partners/7"])
def test_an_address_without_its_trailing_slash_is_a_404_naming_the_right_one(
    coordinator: User, api_client_for: ClientFor, path: str
) -> None:
    response = api_client_for(coordinator).get(path, {"page_size": "5"})
    assert response.status_code == 404
    assert f"{path}/" in response.json()["detail"]


def test_a_filtered_page_costs_the_same_queries_as_rows_grow(
    coordinator: User, token_for: Callable[[Any], str], django_assert_num_queries: Any
) -> None:
    client = Client(headers={"Authorization": f"Bearer {token_for(coordinator)}"})
    ReferralFactory.create_batch(2, status=Referral.Status.SEEN)
    # Token, expired tokens, permissions, count, page, and the audit row insert.
    with django_assert_num_queries(6):
        assert len(referrals(client, status="seen").json()["results"]) == 2
    ReferralFactory.create_batch(10, status=Referral.Status.SEEN)
    with django_assert_num_queries(6):
        assert len(referrals(client, status="seen").json()["results"]) == 12


def test_the_openapi_schema_lists_the_filters(db: None) -> None:
    schema = yaml.safe_load(Client().get(reverse("api:schema")).content)

    def parameters(path: str) -> set[str]:
        return {parameter["name"] for parameter in schema["paths"][path]["get"]["parameters"]}

    assert parameters("/api/v1/partners/") >= {
        "npi",
        "taxonomy",
        "specialty",
        "status",
        "health",
        "updated_since",
        "page_size",
    }
    assert parameters("/api/v1/referrals/") >= {
        "status",
        "direction",
        "provider",
        "provider_npi",
        "received_after",
        "received_before",
        "updated_since",
    }


def test_the_openapi_schema_generates_without_warnings(db: None, tmp_path: Path) -> None:
    # drf-spectacular warns about anything it cannot describe (an unknown field type, a
    # filter it cannot read); any warning is a schema clients would get wrong.
    call_command("spectacular", "--fail-on-warn", "--validate", "--file", str(tmp_path / "s.yaml"))


@pytest.mark.parametrize(
    ("since", "everything"),
    [("0001-01-01T00:00:00+05:00", True), ("9999-12-31T23:00:00-05:00", False)],
)
def test_an_updated_since_at_the_edge_of_time_finds_all_or_nothing(
    coordinator: User, api_client_for: ClientFor, since: str, everything: bool
) -> None:
    # Valid times that fall outside years 1-9999 once turned to UTC.
    referral = ReferralFactory.create()
    client = api_client_for(coordinator)
    for response in (
        partners(client, updated_since=since),
        referrals(client, updated_since=since),
    ):
        assert response.status_code == 200
        assert bool(response.json()["results"]) is everything
    assert ids(referrals(client, updated_since=since)) == ([referral.pk] if everything else [])


@pytest.mark.parametrize(("name", "longest"), [("taxonomy", 10), ("specialty", 100)])
def test_the_openapi_schema_gives_the_longest_value_a_text_filter_takes(
    coordinator: User, api_client_for: ClientFor, name: str, longest: int
) -> None:
    # A client (or a generated test) that keeps to the schema must not get a 400 for it.
    schema = yaml.safe_load(Client().get(reverse("api:schema")).content)
    (parameter,) = [
        parameter
        for parameter in schema["paths"]["/api/v1/partners/"]["get"]["parameters"]
        if parameter["name"] == name
    ]
    assert parameter["schema"]["maxLength"] == longest
    client = api_client_for(coordinator)
    assert partners(client, **{name: "x" * longest}).status_code == 200
    too_long = partners(client, **{name: "x" * (longest + 1)})
    assert too_long.status_code == 400
    assert f"at most {longest} characters" in too_long.json()[name][0]


@pytest.mark.parametrize("name", ["taxonomy", "specialty"])
def test_the_openapi_schema_says_a_text_filter_takes_no_null_character(
    coordinator: User, api_client_for: ClientFor, name: str
) -> None:
    # Every text field refuses NUL (Postgres cannot hold it); the schema says so, so a
    # value it allows is never a 400.
    schema = yaml.safe_load(Client().get(reverse("api:schema")).content)
    (parameter,) = [
        parameter
        for parameter in schema["paths"]["/api/v1/partners/"]["get"]["parameters"]
        if parameter["name"] == name
    ]
    pattern = parameter["schema"]["pattern"]
    assert re.search(pattern, "Ortho") is not None
    assert re.search(pattern, "Or\x00tho") is None
    refused = partners(api_client_for(coordinator), **{name: "Or\x00"})
    assert refused.status_code == 400
    assert refused.json()[name] == ["Null characters are not allowed."]


def test_referrals_filter_by_whether_the_practice_counts_them(
    coordinator: User, api_client_for: ClientFor
) -> None:
    """A copy marked as a duplicate is in the list (duplicate_of says so); a sync that
    counts a partner's referrals asks counted=true and counts as every report does."""
    from referrals.services.duplicates import referral_mark_duplicate

    kept = ReferralFactory.create()
    copy = ReferralFactory.create(
        provider=kept.provider,
        patient_last_name=kept.patient_last_name,
        patient_dob=kept.patient_dob,
    )
    referral_mark_duplicate(referral=copy, original=kept, actor=None)
    client = api_client_for(coordinator)

    assert ids(referrals(client)) == [kept.pk, copy.pk]
    counted = referrals(client, counted="true", provider=kept.provider_id)
    assert ids(counted) == [kept.pk] and counted.json()["count"] == 1
    assert ids(referrals(client, counted="false")) == [copy.pk]
    refused = referrals(client, counted="yes")
    assert refused.status_code == 400
    assert "counted" in refused.json()
