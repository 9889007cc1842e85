"""An office's opt-out of letters: set on the office's form, stamped with when and by
whom, kept as history, shown on the office's page and on each of its partners' pages,
and kept through a merge. What it does to letters is in outreach/tests/test_office_opt_out."""

from __future__ import annotations

import re
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from django.urls import reverse

from outreach.factories import ActivityFactory
from partners.factories import OrganizationFactory, ProviderFactory, StaffMemberFactory
from partners.models import LettersOptOutChange, Organization, Provider
from partners.services.merges import partner_merge, partner_merge_preview
from partners.services.offices import organization_set_letters_opt_out

pytestmark = pytest.mark.django_db

NEW_YORK = ZoneInfo("America/New_York")


def _form(office: Organization, **changes: str) -> dict[str, str]:
    data = {
        "name": office.name,
        "phone": office.phone,
        "fax": office.fax,
        "email": office.email,
        "address_line1": office.address_line1,
        "city": office.city,
        "state": office.state,
        "zip_code": office.zip_code,
    }
    return {**data, **changes}


def _edit(office: Organization) -> str:
    return reverse("partners:organization_update", args=[office.pk])


# --- The service and its history ---------------------------------------------------------


def test_opting_out_stamps_when_and_by_whom_and_keeps_a_history_row(manager, liaison):
    office = OrganizationFactory()

    change = organization_set_letters_opt_out(organization=office, opted_out=True, actor=manager)

    office.refresh_from_db()
    assert office.letters_opt_out and office.letters_opt_out_by == manager
    assert office.letters_opt_out_at == change.changed_at
    assert (change.opted_out, change.changed_by) == (True, manager)

    # Nothing changes, nothing is recorded: the date is when it was set, not last saved.
    assert (
        organization_set_letters_opt_out(organization=office, opted_out=True, actor=liaison) is None
    )
    cleared = organization_set_letters_opt_out(organization=office, opted_out=False, actor=liaison)
    office.refresh_from_db()
    assert not office.letters_opt_out
    assert (office.letters_opt_out_at, office.letters_opt_out_by) == (None, None)
    assert list(office.opt_out_changes.values_list("opted_out", "changed_by")) == [
        (False, liaison.pk),
        (True, manager.pk),
    ]
    assert cleared.changed_at >= change.changed_at


def test_the_database_refuses_an_opt_out_without_its_date(db):
    from django.db import IntegrityError, transaction

    office = OrganizationFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        Organization.objects.filter(pk=office.pk).update(letters_opt_out=True)


# --- The office's form -------------------------------------------------------------------


@pytest.mark.parametrize("role", ["manager", "liaison", "coordinator"])
def test_a_role_that_edits_the_office_opts_it_out_on_its_form(client_for, role, request):
    user = request.getfixturevalue(role)
    office = OrganizationFactory(phone="(402) 555-0100")

    response = client_for(user).post(_edit(office), _form(office, letters_opt_out="on"))

    assert response.status_code == 302
    office.refresh_from_db()
    assert office.letters_opt_out and office.letters_opt_out_by == user
    assert LettersOptOutChange.objects.filter(organization=office, changed_by=user).count() == 1


def test_unticking_the_box_clears_it_and_saving_other_fields_keeps_its_date(client_for, manager):
    office = OrganizationFactory()
    organization_set_letters_opt_out(organization=office, opted_out=True, actor=manager)
    since = Organization.objects.get(pk=office.pk).letters_opt_out_at
    client = client_for(manager)

    client.post(_edit(office), _form(office, letters_opt_out="on", notes="Call Tuesdays"))
    office.refresh_from_db()
    assert office.letters_opt_out_at == since and office.notes == "Call Tuesdays"

    client.post(_edit(office), _form(office))  # the box unticked: not in the post
    office.refresh_from_db()
    assert not office.letters_opt_out and office.letters_opt_out_at is None
    assert office.opt_out_changes.count() == 2


def test_an_office_form_opened_before_it_opted_out_does_not_opt_it_back_in(
    client_for, coordinator, manager
):
    """The office calls to stop letters while a coordinator has its form open to fix the
    fax (the box unticked, as it was). Their save must not opt the office back in: nothing
    is saved, the form says why and keeps what they typed."""
    office = OrganizationFactory(fax="(402) 555-0100")
    opened = client_for(coordinator).get(_edit(office)).content.decode()
    found = re.search(r'name="version" value="([^"]*)"', opened)
    organization_set_letters_opt_out(organization=office, opted_out=True, actor=manager)

    response = client_for(coordinator).post(
        _edit(office),
        _form(office, fax="(402) 555-0199", version=found.group(1) if found else ""),
    )

    office.refresh_from_db()
    assert office.letters_opt_out and office.fax == "(402) 555-0100"
    page = response.content.decode()
    assert response.status_code == 200
    assert "Someone changed this office after you opened it" in page
    assert 'value="(402) 555-0199"' in page


def test_the_form_shows_the_box_ticked_for_an_opted_out_office(client_for, manager):
    office = OrganizationFactory()
    organization_set_letters_opt_out(organization=office, opted_out=True, actor=manager)
    page = client_for(manager).get(_edit(office)).content.decode()
    box = page.split('name="letters_opt_out"', 1)[1].split(">", 1)[0]
    assert "checked" in box


def test_a_refused_form_comes_back_with_its_errors_and_records_no_opt_out(client_for, manager):
    office = OrganizationFactory(zip_code="68847")

    response = client_for(manager).post(
        _edit(office), _form(office, zip_code="6884", letters_opt_out="on")
    )

    page = response.content.decode()
    assert response.status_code == 200
    assert "Not a ZIP code: 5 digits, or ZIP+4." in page
    box = page.split('name="letters_opt_out"', 1)[1].split(">", 1)[0]
    assert "checked" in box  # as typed
    office.refresh_from_db()
    assert not office.letters_opt_out and office.zip_code == "68847"
    assert not LettersOptOutChange.objects.exists()


def test_a_new_office_may_be_added_opted_out(client_for, liaison):
    response = client_for(liaison).post(
        reverse("partners:organization_create"),
        {"name": "Lakeside Family Medicine", "letters_opt_out": "on"},
    )
    office = Organization.objects.get(name="Lakeside Family Medicine")
    assert response.status_code == 302
    assert office.letters_opt_out and office.letters_opt_out_by == liaison
    assert office.opt_out_changes.get().changed_by == liaison


def test_a_user_without_a_role_cannot_opt_an_office_out(client_for, no_role_user):
    office = OrganizationFactory()
    response = client_for(no_role_user).post(_edit(office), _form(office, letters_opt_out="on"))
    assert response.status_code in (403, 404)
    office.refresh_from_db()
    assert not office.letters_opt_out


# --- Shown on the office's page and its partners' pages ----------------------------------


def _opted_out_on_march_3(office: Organization, actor) -> None:
    organization_set_letters_opt_out(organization=office, opted_out=True, actor=actor)
    moment = datetime(2026, 3, 3, 10, 0, tzinfo=NEW_YORK)
    Organization.objects.filter(pk=office.pk).update(letters_opt_out_at=moment)
    LettersOptOutChange.objects.filter(organization=office).update(changed_at=moment)


def test_the_office_page_says_since_when_and_who_and_shows_the_history(client_for, manager):
    manager.first_name, manager.last_name = "Maria", "Lopez"
    manager.save()
    office = OrganizationFactory()
    _opted_out_on_march_3(office, manager)

    page = client_for(manager).get(office.get_absolute_url()).content.decode()

    assert "Opted out of letters since Mar 3, 2026 (Maria Lopez)" in page
    assert "Opted out of letters by Maria Lopez" in page  # the history


def test_each_partner_page_says_the_office_opted_out(client_for, liaison):
    office = OrganizationFactory()
    provider = ProviderFactory(organization=office, owner=liaison)
    newcomer = ProviderFactory(organization=office)
    _opted_out_on_march_3(office, liaison)
    client = client_for(liaison)

    for partner in (provider, newcomer):
        page = client.get(partner.get_absolute_url()).content.decode()
        assert "Office opted out of letters since Mar 3, 2026" in page

    organization_set_letters_opt_out(organization=office, opted_out=False, actor=liaison)
    page = client.get(provider.get_absolute_url()).content.decode()
    assert "Office opted out" not in page and "Letters by email" in page


def test_a_partner_page_of_an_office_that_takes_letters_says_nothing_of_it(client_for, manager):
    provider = ProviderFactory()
    page = client_for(manager).get(provider.get_absolute_url()).content.decode()
    assert "opted out" not in page.lower()


def test_the_office_list_marks_opted_out_offices(client_for, coordinator):
    out, taking = OrganizationFactory(name="Out Clinic"), OrganizationFactory(name="In Clinic")
    organization_set_letters_opt_out(organization=out, opted_out=True, actor=None)
    page = client_for(coordinator).get(reverse("partners:organization_list")).content.decode()
    out_row = page.split("Out Clinic", 1)[1].split("</a>", 1)[0]
    in_row = page.split("In Clinic", 1)[1].split("</a>", 1)[0]
    assert taking.letters_opt_out is False
    assert "No letters" in out_row and "No letters" not in in_row


def test_the_partner_list_filters_on_letters_the_office_declined(client_for, manager):
    office = OrganizationFactory()
    organization_set_letters_opt_out(organization=office, opted_out=True, actor=None)
    by_office = ProviderFactory(organization=office, last_name="Quillfeather")
    own = ProviderFactory(letters_opt_out=True, last_name="Brannagh")
    taking = ProviderFactory(last_name="Zellweger")
    client = client_for(manager)
    url = reverse("partners:provider_list")

    opted_out = client.get(url, {"letters": "opted_out"}).content.decode()
    taking_letters = client.get(url, {"letters": "taking"}).content.decode()

    assert by_office.last_name in opted_out and own.last_name in opted_out
    assert taking.last_name not in opted_out
    assert taking.last_name in taking_letters and by_office.last_name not in taking_letters
    assert client.get(url, {"letters": "nonsense"}).status_code == 200


def test_the_office_page_runs_the_same_queries_however_many_partners_and_changes(
    client_for, manager, django_assert_num_queries
):
    office = OrganizationFactory()
    ProviderFactory(organization=office)
    ActivityFactory(organization=office)
    organization_set_letters_opt_out(organization=office, opted_out=True, actor=manager)
    client = client_for(manager)
    url = office.get_absolute_url()
    client.get(url)
    # 11: session, user and permissions; the office with who opted it out; its providers,
    # staff, the staff removed from it with who removed them, activities (and the two
    # prefetches of who was met); and the opt-out history with who changed it.
    with django_assert_num_queries(11) as few:
        client.get(url)
    ProviderFactory.create_batch(5, organization=office)
    StaffMemberFactory.create_batch(3, organization=office)
    ActivityFactory.create_batch(3, organization=office)
    for opted_out in (False, True, False, True):
        organization_set_letters_opt_out(organization=office, opted_out=opted_out, actor=manager)
    with django_assert_num_queries(len(few.captured_queries)):
        client.get(url)


# --- Merging offices ---------------------------------------------------------------------


def test_a_merged_office_keeps_the_opt_out_of_either_record_with_its_date(manager):
    survivor, duplicate = OrganizationFactory(npi=""), OrganizationFactory(npi="")
    organization_set_letters_opt_out(organization=duplicate, opted_out=True, actor=manager)
    since = Organization.objects.get(pk=duplicate.pk).letters_opt_out_at
    partner = ProviderFactory(organization=survivor)

    preview = partner_merge_preview(survivor=survivor, duplicate=duplicate)
    partner_merge(survivor=survivor, duplicate=duplicate, actor=manager)

    row = next(f for f in preview.fields if f.label == "Office opted out of letters")
    assert (row.survivor, row.duplicate, row.result) == ("", "Yes", "Yes")
    survivor.refresh_from_db()
    assert survivor.letters_opt_out and survivor.letters_opt_out_at == since
    assert survivor.letters_opt_out_by == manager
    assert survivor.opt_out_changes.count() == 1  # the duplicate's history came along
    assert Provider.objects.get(pk=partner.pk).letters_opted_out


def test_merging_two_offices_that_take_letters_changes_nothing(manager):
    survivor, duplicate = OrganizationFactory(npi=""), OrganizationFactory(npi="")
    partner_merge(survivor=survivor, duplicate=duplicate, actor=manager)
    survivor.refresh_from_db()
    assert not survivor.letters_opt_out and survivor.letters_opt_out_at is None
