"""A partner deleted or merged away reads as 410 Gone through FHIR, as the spec asks of a
deleted resource (http://hl7.org/fhir/R4/http.html#read), with an OperationOutcome saying
which; an id that never existed stays a 404."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from interop.tests.conftest import outcome_text
from partners.factories import ProviderFactory
from partners.models import Provider
from partners.services.merges import partner_merge

pytestmark = pytest.mark.django_db

ClientFor = Callable[[Any], Client]
READS = ["fhir:practitioner", "fhir:practitionerrole"]


def issue_code(response: Any) -> str:
    code: str = response.json()["issue"][0]["code"]
    return code


@pytest.mark.parametrize("name", READS)
def test_a_deleted_partner_is_gone(liaison: User, api_client_for: ClientFor, name: str) -> None:
    provider = ProviderFactory.create()
    provider_id = provider.pk
    provider.delete()

    response = api_client_for(liaison).get(reverse(name, args=[provider_id]))

    assert response.status_code == 410
    assert issue_code(response) == "deleted"
    assert outcome_text(response) == "This partner was deleted."


@pytest.mark.parametrize(
    ("name", "kind"), list(zip(READS, ["Practitioner", "PractitionerRole"], strict=True))
)
def test_a_merged_partner_is_gone_naming_the_survivor(
    liaison: User, manager: User, api_client_for: ClientFor, name: str, kind: str
) -> None:
    survivor, duplicate = ProviderFactory.create_batch(2)
    partner_merge(survivor=survivor, duplicate=duplicate, actor=manager)

    response = api_client_for(liaison).get(reverse(name, args=[duplicate.pk]))

    assert response.status_code == 410
    assert issue_code(response) == "deleted"
    assert outcome_text(response) == (
        f"This partner was merged into another record: read {kind}/{survivor.pk} instead."
    )
    assert api_client_for(liaison).get(reverse(name, args=[survivor.pk])).status_code == 200


@pytest.mark.parametrize("name", READS)
def test_an_id_that_never_existed_is_still_a_404(
    liaison: User, api_client_for: ClientFor, name: str
) -> None:
    gone = ProviderFactory.create()
    gone.delete()
    never = Provider.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    response = api_client_for(liaison).get(reverse(name, args=[never + 1000]))
    assert response.status_code == 404
    assert issue_code(response) == "not-found"


@pytest.mark.parametrize("name", READS)
def test_a_role_that_may_not_read_partners_learns_nothing_of_a_removal(
    no_role_user: User, api_client_for: ClientFor, name: str
) -> None:
    provider = ProviderFactory.create()
    provider_id = provider.pk
    provider.delete()
    response = api_client_for(no_role_user).get(reverse(name, args=[provider_id]))
    assert response.status_code == 403


def test_searches_leave_removed_partners_out(liaison: User, api_client_for: ClientFor) -> None:
    kept, gone = ProviderFactory.create_batch(2)
    gone.delete()
    bundle = api_client_for(liaison).get(reverse("fhir:practitioner_search")).json()
    assert [entry["resource"]["id"] for entry in bundle["entry"]] == [str(kept.pk)]


def test_a_deleted_or_merged_office_is_gone_and_the_admin_s_bulk_delete_leaves_a_record_too(
    liaison: User, manager: User, api_client_for: ClientFor
) -> None:
    from partners.factories import OrganizationFactory
    from partners.models import Organization

    client = api_client_for(liaison)
    deleted = OrganizationFactory.create()
    deleted_id = deleted.pk
    deleted.delete()
    response = client.get(reverse("fhir:organization", args=[deleted_id]))
    assert response.status_code == 410
    assert outcome_text(response) == "This office was deleted."

    survivor, duplicate = OrganizationFactory.create_batch(2)
    partner_merge(survivor=survivor, duplicate=duplicate, actor=manager)
    response = client.get(reverse("fhir:organization", args=[duplicate.pk]))
    assert response.status_code == 410
    assert outcome_text(response) == (
        f"This office was merged into another record: read Organization/{survivor.pk} instead."
    )
    assert client.get(reverse("fhir:organization", args=[survivor.pk])).status_code == 200

    # The admin's delete action deletes through the queryset.
    batch = OrganizationFactory.create_batch(2)
    Organization.objects.filter(pk__in=[office.pk for office in batch]).delete()
    for office in batch:
        assert client.get(reverse("fhir:organization", args=[office.pk])).status_code == 410
    never = (Organization.objects.order_by("-pk").values_list("pk", flat=True).first() or 0) + 99
    assert client.get(reverse("fhir:organization", args=[never + 1000])).status_code == 404
