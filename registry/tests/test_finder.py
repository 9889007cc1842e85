from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from core.factories import UserFactory
from core.roles import Role
from partners.factories import ProviderFactory, make_npi
from partners.models import Organization, Provider
from referrals.factories import ReferralFactory
from referrals.models import Referral
from registry.factories import PracticeLocationFactory, RegistryProviderFactory
from registry.models import (
    PracticeLocation,
    RegistryProvider,
    SharedPatientDataset,
    SharedPatientPair,
)
from registry.tests.conftest import SAMPLE

pytestmark = pytest.mark.django_db

FINDER = reverse("registry:finder")
ADD = reverse("registry:finder_add")


@pytest.fixture
def manager() -> User:
    return UserFactory.create(username="manager", role=Role.MANAGER)


@pytest.fixture
def liaison() -> User:
    return UserFactory.create(username="liaison", role=Role.LIAISON)


def logged_in(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def npis(response: Any) -> list[str]:
    return [row.record.npi for row in response.context["rows"]]


def test_family_physicians_within_fifty_miles_of_a_zip_come_nearest_first(
    run_import: Callable[..., str], manager: User
) -> None:
    run_import(SAMPLE)
    client = logged_in(manager)

    response = client.get(FINDER, {"specialty": "207Q00000X", "zip_code": "43215", "miles": "50"})

    assert response.status_code == 200
    # The real sample's family physicians around Columbus, OH: Lancaster (27 mi), Urbana
    # (42), Chillicothe (44) and West Liberty (45). Athens (66) is too far.
    assert npis(response) == ["1689677874", "1295738490", "1104829126", "1407859689"]
    miles = [row.miles for row in response.context["rows"]]
    assert miles == sorted(miles)
    assert 25 < miles[0] < 30
    assert all(m <= 50 for m in miles)
    assert b"LANCASTER" in response.content


def test_a_classification_includes_its_specializations_and_a_grouping_its_classes(
    manager: User,
) -> None:
    family = RegistryProviderFactory.create(primary_taxonomy_code="207Q00000X")
    sports = RegistryProviderFactory.create(primary_taxonomy_code="207QS1201X")
    cardio = RegistryProviderFactory.create(primary_taxonomy_code="207RC0000X")
    nurse = RegistryProviderFactory.create(primary_taxonomy_code="363LF0000X")
    client = logged_in(manager)

    by_class = client.get(
        FINDER,
        {"specialty": "classification:Allopathic & Osteopathic Physicians/Family Medicine"},
    )
    by_group = client.get(FINDER, {"specialty": "grouping:Allopathic & Osteopathic Physicians"})
    by_code = client.get(FINDER, {"specialty": "207QS1201X"})

    assert set(npis(by_class)) == {family.npi, sports.npi}
    assert set(npis(by_group)) == {family.npi, sports.npi, cardio.npi}
    assert npis(by_code) == [sports.npi]
    assert nurse.npi not in npis(by_group)


def test_distance_is_measured_from_one_of_our_locations(manager: User) -> None:
    clinic = PracticeLocationFactory.create(zip_code="68102")  # Omaha
    near = RegistryProviderFactory.create(zip_code="68144")
    far = RegistryProviderFactory.create(zip_code="43215")

    response = logged_in(manager).get(FINDER, {"location": clinic.pk, "miles": 30})

    assert npis(response) == [near.npi]
    assert far.npi not in npis(response)


def test_a_location_with_no_place_on_the_map_is_refused_for_a_distance(manager: User) -> None:
    clinic = PracticeLocationFactory.create(zip_code="68102")
    PracticeLocation.objects.filter(pk=clinic.pk).update(latitude=None, longitude=None)
    RegistryProviderFactory.create(zip_code="43215")  # far away: no distance must not show it

    response = logged_in(manager).get(FINDER, {"location": clinic.pk, "miles": 30})

    assert response.status_code == 200
    assert "has no place on the map" in response.content.decode()
    assert npis(response) == []


def test_a_location_with_no_place_on_the_map_is_refused_at_the_default_distance_too(
    manager: User,
) -> None:
    clinic = PracticeLocationFactory.create(zip_code="68102")
    PracticeLocation.objects.filter(pk=clinic.pk).update(latitude=None, longitude=None)
    RegistryProviderFactory.create(zip_code="43215")  # 700 miles away

    # Miles left empty: the search is the default 25 miles from the clinic.
    response = logged_in(manager).get(
        FINDER, {"location": str(clinic.pk), "specialty": "207Q00000X"}
    )

    assert response.status_code == 200
    assert "has no place on the map" in response.content.decode()
    assert npis(response) == []


def test_city_state_and_name_narrow_the_search(manager: User) -> None:
    smith = RegistryProviderFactory.create(last_name="SMITH", city="OMAHA", state="NE")
    RegistryProviderFactory.create(last_name="SMITHERS", city="LINCOLN", state="NE")
    RegistryProviderFactory.create(last_name="JONES", city="OMAHA", state="NE")
    client = logged_in(manager)

    response = client.get(FINDER, {"name": "smith", "city": "omaha", "state": "ne"})

    assert npis(response) == [smith.npi]


def test_deactivated_providers_are_never_found(manager: User) -> None:
    RegistryProviderFactory.create(deactivated=True)

    response = logged_in(manager).get(FINDER, {"state": "OH"})

    assert npis(response) == []


def test_results_show_who_is_a_partner_and_their_referral_counts(manager: User) -> None:
    record = RegistryProviderFactory.create()
    partner = ProviderFactory.create(npi=record.npi)
    ReferralFactory.create_batch(3, provider=partner, direction=Referral.Direction.INBOUND)
    ReferralFactory.create(provider=partner, direction=Referral.Direction.OUTBOUND)
    other = RegistryProviderFactory.create()

    response = logged_in(manager).get(FINDER, {"state": "OH"})

    rows = {row.record.npi: row for row in response.context["rows"]}
    assert rows[record.npi].partner.provider_id == partner.pk
    assert (rows[record.npi].partner.inbound, rows[record.npi].partner.outbound) == (3, 1)
    assert rows[other.npi].partner is None
    assert b"3 in" in response.content


def test_current_partners_can_be_left_out(manager: User) -> None:
    record = RegistryProviderFactory.create()
    ProviderFactory.create(npi=record.npi)
    newcomer = RegistryProviderFactory.create()

    response = logged_in(manager).get(FINDER, {"state": "OH", "hide_partners": "on"})

    assert npis(response) == [newcomer.npi]


@pytest.mark.parametrize("shared_patients", [False, True])
def test_the_finder_query_count_stays_the_same_as_rows_grow(
    manager: User, django_assert_num_queries, settings: Any, shared_patients: bool
) -> None:
    if shared_patients:
        # CMS shared patient patterns and our clinicians: two queries more, not one a row.
        settings.PRACTICE_NPIS = ["1760575641"]
        SharedPatientDataset.objects.create(
            year=2014, window_days=180, file_name="x.txt", imported_at="2026-01-01T00:00Z"
        )
    expected = 14 if shared_patients else 12
    location = PracticeLocationFactory.create()
    client = logged_in(manager)
    query = {"specialty": "207Q00000X", "location": str(location.pk), "miles": "50"}
    client.get(FINDER, query)  # warm the session

    def add_rows(count: int) -> None:
        for record in RegistryProviderFactory.create_batch(count):
            if int(record.npi[-3:]) % 2:
                partner = ProviderFactory.create(npi=record.npi)
                ReferralFactory.create(provider=partner)

    # Session, user, role and permissions (one query), specialty check, location (validate +
    # render), count, page ids, page rows, partner summaries, specialty labels, liaisons:
    # none of them per row.
    add_rows(3)
    with django_assert_num_queries(expected):
        small = client.get(FINDER, query)
    add_rows(40)
    with django_assert_num_queries(expected):
        large = client.get(FINDER, query)

    assert len(small.context["rows"]) == 3
    assert len(large.context["rows"]) == 25


def test_bad_query_strings_are_answered_with_the_form_not_an_error(manager: User) -> None:
    client = logged_in(manager)

    for query in (
        {"zip_code": "ABCDE"},
        {"zip_code": "00000", "miles": "10"},
        {"miles": "-4"},
        {"miles": "20"},
        {"location": "999999"},
        {"location": "x"},
        {"specialty": "nonsense"},
        {"state": "TOOLONG"},
        {"page": "9999", "state": "OH"},
        {"name": "\x00"},
    ):
        response = client.get(FINDER, query)
        assert response.status_code == 200, query


def test_an_htmx_search_returns_only_the_results(manager: User) -> None:
    RegistryProviderFactory.create()

    response = logged_in(manager).get(FINDER, {"state": "OH"}, headers={"HX-Request": "true"})

    assert b"<table" in response.content
    assert b'<nav class="navbar' not in response.content


def test_a_user_without_a_role_cannot_search() -> None:
    response = logged_in(UserFactory.create()).get(FINDER, {"state": "OH"})

    assert response.status_code == 403


def test_anonymous_visitors_are_sent_to_log_in() -> None:
    response = Client().get(FINDER)

    assert response.status_code == 302
    assert reverse("login") in response["Location"]


# --- Add as prospect ------------------------------------------------------------------------


def test_adding_a_provider_makes_a_prospect_with_their_office(
    run_import: Callable[..., str], manager: User, liaison: User
) -> None:
    run_import(SAMPLE)

    response = logged_in(manager).post(
        ADD, {"npi": "1679576722", "owner": liaison.pk}, headers={"HX-Request": "true"}
    )

    assert response.status_code == 200
    assert b"Prospect added" in response.content
    provider = Provider.objects.select_related("organization").get(npi="1679576722")
    assert (provider.first_name, provider.last_name) == ("David", "Wiebe")
    assert provider.status == Provider.Status.PROSPECT
    assert provider.owner == liaison
    assert provider.taxonomy_code == "207X00000X"
    assert provider.specialty == "Orthopaedic Surgery Physician"
    assert provider.phone == "(308) 865-2512"
    assert provider.organization is not None
    assert provider.organization.address_line1 == "3500 Central Ave"
    assert provider.organization.zip_code == "68847"
    assert provider.organization.fax == "(308) 865-2506"


def test_an_office_at_the_same_address_is_reused(manager: User, liaison: User) -> None:
    first = RegistryProviderFactory.create(address_line1="1 MAIN ST")
    second = RegistryProviderFactory.create(address_line1="1 MAIN ST")
    client = logged_in(manager)

    client.post(ADD, {"npi": first.npi, "owner": liaison.pk})
    client.post(ADD, {"npi": second.npi, "owner": liaison.pk})

    assert Organization.objects.count() == 1
    assert Provider.objects.filter(organization__isnull=False).count() == 2


def test_a_provider_without_a_us_zip_is_not_put_in_an_office_on_a_namesake_street(
    manager: User, liaison: User
) -> None:
    # "1 Main St" is in every town: the street alone does not make the same office.
    omaha = Organization.objects.create(
        name="Omaha Clinic", address_line1="1 Main St", zip_code="68102"
    )
    abroad = RegistryProviderFactory.create(
        address_line1="1 MAIN ST",
        city="TORONTO",
        state="ON",
        postal_code="M5V 2T6",
        country="CA",
        zip5="",
        latitude=None,
        longitude=None,
    )

    logged_in(manager).post(ADD, {"npi": abroad.npi, "owner": liaison.pk})

    organization = Provider.objects.get(npi=abroad.npi).organization
    assert organization is not None
    assert organization != omaha
    assert organization.city == "Toronto"


def test_the_office_takes_the_name_and_npi_of_the_registry_organization_there(
    manager: User, liaison: User
) -> None:
    RegistryProviderFactory.create(
        entity_type=RegistryProvider.EntityType.ORGANIZATION,
        organization_name="PRAIRIE FAMILY CLINIC",
        npi="1234567893",
        address_line1="9 ELM ST",
        last_name="",
    )
    doctor = RegistryProviderFactory.create(address_line1="9 ELM ST")

    logged_in(manager).post(ADD, {"npi": doctor.npi, "owner": liaison.pk})

    organization = Provider.objects.get(npi=doctor.npi).organization
    assert organization is not None
    assert (organization.name, organization.npi) == ("Prairie Family Clinic", "1234567893")


def test_an_office_a_colleague_creates_at_the_same_moment_is_joined_not_a_server_error(
    manager: User, liaison: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    RegistryProviderFactory.create(
        entity_type=RegistryProvider.EntityType.ORGANIZATION,
        organization_name="PRAIRIE FAMILY CLINIC",
        npi="1234567893",
        address_line1="9 ELM ST",
        last_name="",
    )
    doctor = RegistryProviderFactory.create(address_line1="9 ELM ST")
    checked = Organization.full_clean

    def colleague_saves_first(organization: Organization, *args: Any, **kwargs: Any) -> None:
        # Another liaison adding another of its doctors: their office with the clinic's
        # NPI is committed after this request looked for one and before it saves its own.
        checked(organization, *args, **kwargs)
        if organization.pk is None and not Organization.objects.filter(npi="1234567893"):
            Organization.objects.create(name="Prairie Family Clinic", npi="1234567893")

    monkeypatch.setattr(Organization, "full_clean", colleague_saves_first)

    response = logged_in(manager).post(
        ADD, {"npi": doctor.npi, "owner": liaison.pk}, headers={"HX-Request": "true"}
    )

    assert response.status_code == 200
    assert b"Prospect added" in response.content
    office = Organization.objects.get()
    assert Provider.objects.get(npi=doctor.npi).organization == office


def test_a_provider_already_in_the_directory_is_not_added_twice(
    manager: User, liaison: User
) -> None:
    record = RegistryProviderFactory.create()
    ProviderFactory.create(npi=record.npi)

    response = logged_in(manager).post(
        ADD, {"npi": record.npi, "owner": liaison.pk}, headers={"HX-Request": "true"}
    )

    assert b"already in the partner directory" in response.content
    assert Provider.objects.filter(npi=record.npi).count() == 1


def test_organizations_and_deactivated_npis_cannot_become_prospects(
    manager: User, liaison: User
) -> None:
    hospital = RegistryProviderFactory.create(entity_type=RegistryProvider.EntityType.ORGANIZATION)
    gone = RegistryProviderFactory.create(deactivated=True)
    client = logged_in(manager)

    for record in (hospital, gone):
        response = client.post(
            ADD, {"npi": record.npi, "owner": liaison.pk}, headers={"HX-Request": "true"}
        )
        assert response.status_code == 200
    assert not Provider.objects.exists()


def test_a_deactivated_npi_as_the_monthly_file_gives_it_is_refused_as_deactivated(
    run_import: Callable[..., str], manager: User, liaison: User
) -> None:
    # The real file's stub: CMS blanks everything but the NPI and the deactivation date,
    # the entity type included. The finder showed the row before last night's import.
    run_import(SAMPLE)
    stub = RegistryProvider.objects.get(npi="1306849450")
    assert stub.deactivated and stub.entity_type is None

    response = logged_in(manager).post(
        ADD, {"npi": stub.npi, "owner": liaison.pk}, headers={"HX-Request": "true"}
    )

    assert b"This NPI is deactivated." in response.content
    assert b"Only individual providers" not in response.content
    assert not Provider.objects.filter(npi=stub.npi).exists()


def test_a_liaison_adds_prospects_only_to_their_own_list(liaison: User) -> None:
    colleague = UserFactory.create(username="colleague", role=Role.LIAISON)
    record = RegistryProviderFactory.create()
    client = logged_in(liaison)

    refused = client.post(
        ADD, {"npi": record.npi, "owner": colleague.pk}, headers={"HX-Request": "true"}
    )
    accepted = client.post(ADD, {"npi": record.npi, "owner": liaison.pk})

    assert b"their own list" in refused.content
    assert accepted.status_code == 302
    assert Provider.objects.get(npi=record.npi).owner == liaison


def test_a_user_without_a_role_cannot_add_prospects(manager: User) -> None:
    record = RegistryProviderFactory.create()

    response = logged_in(UserFactory.create()).post(ADD, {"npi": record.npi, "owner": manager.pk})

    assert response.status_code == 403
    assert not Provider.objects.exists()


def test_bad_add_requests_never_fail_with_a_server_error(manager: User) -> None:
    client = logged_in(manager)

    for data in ({}, {"npi": "123"}, {"npi": "1234567893", "owner": "x"}, {"npi": "ab" * 5}):
        response = client.post(ADD, data, headers={"HX-Request": "true"})
        assert response.status_code == 200
    missing = client.post(ADD, {"npi": "1234567893", "owner": manager.pk})
    assert missing.status_code == 404
    assert client.get(ADD).status_code == 405


def test_the_specialty_typeahead_offers_groupings_classifications_and_codes(
    manager: User,
) -> None:
    client = logged_in(manager)
    url = reverse("registry:specialty_typeahead")

    family = client.get(url, {"specialty_search": "family medicine"})
    physicians = client.get(url, {"specialty_search": "osteopathic"})
    by_code = client.get(url, {"specialty_search": "207qs"})
    too_short = client.get(url, {"specialty_search": "f"})

    assert (
        b'data-picker-choice="classification:Allopathic &amp; Osteopathic Physicians/'
        b'Family Medicine"' in family.content
    )
    assert b'data-picker-choice="207Q00000X"' in family.content
    assert b'data-picker-choice="grouping:Allopathic &amp; Osteopathic Physicians"' in (
        physicians.content
    )
    assert b'data-picker-choice="207QS0010X"' in by_code.content
    assert b"data-picker-choice" not in too_short.content


def test_a_chosen_specialty_is_shown_by_name_in_the_search_box(manager: User) -> None:
    response = logged_in(manager).get(FINDER, {"specialty": "207Q00000X"})

    assert b'value="Family Medicine Physician"' in response.content


def test_by_npi_returns_the_whole_record_or_none() -> None:
    record = RegistryProviderFactory.create(last_name="WIEBE", first_name="DAVID")
    found = RegistryProvider.objects.by_npi(record.npi)
    assert found == record
    assert (found.last_name, found.first_name, found.deactivated) == ("WIEBE", "DAVID", False)
    assert found.enumeration_date == record.enumeration_date
    assert RegistryProvider.objects.by_npi("1234567893") is None


def test_the_finder_offers_a_liaison_only_their_own_list_and_a_manager_everyone(
    liaison: User, manager: User
) -> None:
    colleague = UserFactory.create(username="colleague", first_name="Quintessa", role=Role.LIAISON)
    RegistryProviderFactory.create(last_name="DOCTORQ")
    search = {"name": "DOCTORQ"}
    as_liaison = logged_in(liaison).get(FINDER, search)
    assert [user.pk for user in as_liaison.context["liaisons"]] == [liaison.pk]
    page = as_liaison.content.decode()
    assert f'<input type="hidden" name="owner" value="{liaison.pk}">' in page
    assert "Quintessa" not in page
    as_manager = logged_in(manager).get(FINDER, search)
    assert colleague in as_manager.context["liaisons"]
    assert 'select name="owner"' in as_manager.content.decode()


def test_the_finder_does_not_read_every_pair_ending_with_our_clinicians(
    manager: User, django_assert_num_queries, settings: Any
) -> None:
    # With national data our clinicians are the second physician of thousands of pairs:
    # a search reads the page's sums, never all of them.
    ours = "1760575641"
    settings.PRACTICE_NPIS = [ours]
    dataset = SharedPatientDataset.objects.create(
        year=2014, window_days=180, file_name="x.txt", imported_at="2026-01-01T00:00Z"
    )
    client = logged_in(manager)
    query = {"state": "OH"}
    client.get(FINDER, query)  # warm the session
    records = RegistryProviderFactory.create_batch(3)

    def add_pairs(count: int, start: int) -> None:
        SharedPatientPair.objects.bulk_create(
            SharedPatientPair(
                dataset=dataset,
                npi_from=make_npi(start + number),
                npi_to=ours,
                shared_count=20,
                patients=11,
                same_day_visits=0,
            )
            for number in range(count)
        )

    SharedPatientPair.objects.create(
        dataset=dataset,
        npi_from=records[0].npi,
        npi_to=ours,
        shared_count=30,
        patients=12,
        same_day_visits=1,
    )
    add_pairs(3, 700_000)
    # Session, user, permissions, count, page ids, page rows, partner summaries, labels,
    # liaisons, and for CMS data the newest dataset and the page's sums: the same 12
    # however many pairs end with our clinicians.
    with django_assert_num_queries(12):
        client.get(FINDER, query)
    add_pairs(200, 800_000)
    with django_assert_num_queries(12) as large:
        response = client.get(FINDER, query)

    assert not [q for q in large.captured_queries if "shared_count" in q["sql"]]
    by_npi = {row.record.npi: row.to_us for row in response.context["rows"]}
    assert by_npi == {records[0].npi: 12, records[1].npi: 0, records[2].npi: 0}
