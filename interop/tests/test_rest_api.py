"""The REST API: partners and referrals read with a token, the same role rules, patient
initials and audit as the pages, and an OpenAPI schema."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import yaml
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from audit.models import PatientDataAccess
from partners.factories import ProviderFactory
from referrals.factories import ReferralFactory

pytestmark = pytest.mark.django_db

ClientFor = Callable[[Any], Client]


def test_partners_are_listed_with_their_office(liaison: User, api_client_for: ClientFor) -> None:
    provider = ProviderFactory.create(last_name="Aaron")
    response = api_client_for(liaison).get(reverse("api:partner-list"))
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 1
    row = body["results"][0]
    assert (row["id"], row["npi"]) == (provider.pk, provider.npi)
    assert provider.organization is not None
    assert row["organization"]["fax"] == provider.organization.fax
    one = api_client_for(liaison).get(reverse("api:partner-detail", args=[provider.pk]))
    assert one.json()["last_name"] == "Aaron"


def test_a_partner_row_says_whether_they_or_their_office_opted_out_of_letters(
    liaison: User, manager: User, api_client_for: ClientFor
) -> None:
    from partners.services.offices import organization_set_letters_opt_out

    own = ProviderFactory.create(letters_opt_out=True)
    by_office = ProviderFactory.create()
    assert by_office.organization is not None
    organization_set_letters_opt_out(
        organization=by_office.organization, opted_out=True, actor=manager
    )
    rows = {
        row["id"]: row
        for row in api_client_for(liaison).get(reverse("api:partner-list")).json()["results"]
    }
    assert rows[own.pk]["letters_opt_out"] is True
    assert rows[own.pk]["organization"]["letters_opt_out"] is False
    assert rows[own.pk]["organization"]["marketing_opt_out"] is False
    assert rows[by_office.pk]["letters_opt_out"] is False
    assert rows[by_office.pk]["organization"]["letters_opt_out"] is True
    assert rows[own.pk]["marketing_opt_out"] is False


def test_a_partner_row_says_whether_they_want_no_newsletters_or_invitations(
    liaison: User, api_client_for: ClientFor
) -> None:
    partner = ProviderFactory.create(marketing_opt_out=True)
    rows = api_client_for(liaison).get(reverse("api:partner-list")).json()["results"]
    (row,) = [row for row in rows if row["id"] == partner.pk]
    assert (row["marketing_opt_out"], row["letters_opt_out"]) == (True, False)


def test_a_coordinator_reads_patient_details_and_each_read_is_audited(
    coordinator: User, api_client_for: ClientFor
) -> None:
    referral = ReferralFactory.create(patient_first_name="Maria", patient_last_name="Lopez")
    client = api_client_for(coordinator)
    detail = client.get(reverse("api:referral-detail", args=[referral.pk])).json()
    assert detail["patient"]["last_name"] == "Lopez"
    assert detail["patient"]["birth_date"] == referral.patient_dob.isoformat()
    assert detail["reason"] == referral.reason
    listed = client.get(reverse("api:referral-list")).json()
    assert listed["results"][0]["patient"]["first_name"] == "Maria"
    rows = PatientDataAccess.objects.filter(referral_id=referral.pk, source="api")
    assert sorted(rows.values_list("action", flat=True)) == ["list", "view"]


def test_a_liaison_sees_initials_of_their_own_partners_referrals_only(
    liaison: User, other_liaison: User, api_client_for: ClientFor
) -> None:
    mine = ReferralFactory.create(
        provider=ProviderFactory.create(owner=liaison),
        patient_first_name="Maria",
        patient_last_name="Lopez",
    )
    theirs = ReferralFactory.create(provider=ProviderFactory.create(owner=other_liaison))
    client = api_client_for(liaison)
    listed = client.get(reverse("api:referral-list")).json()
    assert [row["id"] for row in listed["results"]] == [mine.pk]
    patient = listed["results"][0]["patient"]
    assert patient == {
        "initials": "M.L.",
        "first_name": None,
        "last_name": None,
        "birth_date": None,
        "phone": None,
    }
    assert listed["results"][0]["reason"] is None
    assert client.get(reverse("api:referral-detail", args=[theirs.pk])).status_code == 404
    assert not PatientDataAccess.objects.exists()


def test_the_api_needs_a_token_and_a_role(
    no_role_user: User, api_client_for: ClientFor, client_for: ClientFor, manager: User
) -> None:
    assert Client().get(reverse("api:referral-list")).status_code == 401
    assert client_for(manager).get(reverse("api:referral-list")).status_code == 401
    assert api_client_for(no_role_user).get(reverse("api:referral-list")).status_code == 403
    assert api_client_for(no_role_user).get(reverse("api:partner-list")).status_code == 403


def test_nothing_is_written_through_the_api(manager: User, api_client_for: ClientFor) -> None:
    referral = ReferralFactory.create()
    client = api_client_for(manager)
    assert client.post(reverse("api:referral-list"), {}).status_code == 405
    url = reverse("api:referral-detail", args=[referral.pk])
    assert client.delete(url).status_code == 405


@pytest.mark.parametrize(
    "url", ["/api/v1/partners/", "/api/v1/referrals/", "/api/v1/partners/removed/"]
)
def test_options_is_a_405_not_an_undocumented_description_of_the_view(
    coordinator: User, api_client_for: ClientFor, url: str
) -> None:
    """The schema documents GET only; OPTIONS answered DRF's description of the view."""
    response = api_client_for(coordinator).options(url)
    assert response.status_code == 405
    assert response.json() == {"detail": 'Method "OPTIONS" not allowed.'}
    assert response["Allow"] == "GET, HEAD"


def test_a_page_of_referrals_costs_the_same_queries_as_rows_grow(
    coordinator: User, token_for: Callable[[Any], str], django_assert_num_queries: Any
) -> None:
    client = Client(headers={"Authorization": f"Bearer {token_for(coordinator)}"})
    ReferralFactory.create_batch(2)
    # Token, expired tokens, permissions, count, page, and the audit row insert.
    with django_assert_num_queries(6):
        assert len(client.get(reverse("api:referral-list")).json()["results"]) == 2
    ReferralFactory.create_batch(10)
    with django_assert_num_queries(6):
        assert len(client.get(reverse("api:referral-list")).json()["results"]) == 12


def test_the_openapi_schema_describes_the_api_and_only_it(db: None) -> None:
    response = Client().get(reverse("api:schema"))
    assert response.status_code == 200
    schema = yaml.safe_load(response.content)
    assert schema["openapi"].startswith("3.")
    assert set(schema["paths"]) == {
        "/api/v1/partners/",
        "/api/v1/partners/{id}/",
        "/api/v1/partners/removed/",
        "/api/v1/referrals/",
        "/api/v1/referrals/{id}/",
    }
    assert schema["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
    }


@pytest.mark.parametrize("version", ["2\nSet-Cookie: x=1", "2\x00", "2"])
def test_the_schema_is_of_the_one_version_whatever_version_is_asked_for(
    db: None, version: str
) -> None:
    """drf-spectacular wrote a `version` parameter into the schema's version and the
    download's file name: a newline in it was a 500 (no header may hold one), and a NUL
    made the web server drop the answer."""
    client = Client(raise_request_exception=False)
    response = client.get(reverse("api:schema"), {"version": version})
    assert response.status_code == 200
    assert yaml.safe_load(response.content)["info"]["version"] == "1"
    assert response["Content-Disposition"] == 'inline; filename="Referral CRM API.yaml"'


def test_a_format_the_api_does_not_offer_is_refused_naming_it(
    manager: User, api_client_for: ClientFor
) -> None:
    client = api_client_for(manager)
    refused = client.get("/api/v1/partners/", {"format": "xml"})
    assert refused.status_code == 406
    assert refused.json() == {
        "detail": "format=xml is not offered: this API answers in json (leave format out)."
    }
    assert client.get("/api/v1/partners/", {"format": "json"}).status_code == 200
