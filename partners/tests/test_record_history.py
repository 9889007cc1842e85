"""Who changed a partner's or office's record, when, and what from and to: a fax number
typed wrong sends patients' letters to a stranger, and the practice must be able to say
who changed it. Every way a record changes leaves its row (a form, an import, a merge)."""

from __future__ import annotations

import csv
import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from core.templatetags.people import person
from partners.factories import OrganizationFactory, ProviderFactory, StaffMemberFactory
from partners.forms import OrganizationForm, ProviderForm, StaffMemberForm
from partners.models import PartnerImport, Provider
from partners.services.merges import partner_merge

pytestmark = pytest.mark.django_db


def _as_the_form_sends_it(form, **changes):
    data = {}
    for name in form.fields:
        value = form[name].value()
        if value is None or value is False:
            continue
        data[name] = (
            "on" if value is True else (value.isoformat() if hasattr(value, "isoformat") else value)
        )
    return {**data, **changes}


def _changes_page(client, url):
    response = client.get(url)
    assert response.status_code == 200
    return response.content.decode()


def test_a_partner_edit_shows_who_changed_which_field_from_what_to_what(
    client_for, coordinator, liaison, other_liaison
):
    provider = ProviderFactory(phone="(402) 555-0100", owner=liaison, status="prospect")
    client = client_for(coordinator)
    data = _as_the_form_sends_it(
        ProviderForm(instance=provider),
        phone="(402) 555-0199",
        owner=other_liaison.pk,
        status="active",
    )
    saved = client.post(reverse("partners:provider_update", args=[provider.pk]), data)
    assert saved.status_code == 302

    page = _changes_page(client, reverse("partners:provider_history", args=[provider.pk]))

    assert f"by {person(coordinator)}" in page
    assert "Phone" in page and "(402) 555-0100" in page and "(402) 555-0199" in page
    # A person by name and a choice by its label, not their ids and codes.
    assert person(liaison) in page and person(other_liaison) in page
    assert "Prospect" in page and "Active" in page
    # The fields that did not change are not listed as changes.
    assert "Last name" not in page
    assert page.count("<strong>Changed</strong>") == 1
    assert "<strong>Added</strong>" in page


def test_an_office_fax_change_is_in_the_office_history(client_for, manager):
    office = OrganizationFactory(fax="(402) 555-0300")
    client = client_for(manager)
    data = _as_the_form_sends_it(OrganizationForm(instance=office), fax="(402) 555-0301")
    assert (
        client.post(reverse("partners:organization_update", args=[office.pk]), data).status_code
        == 302
    )

    page = _changes_page(client, reverse("partners:organization_history", args=[office.pk]))

    assert "Designated fax" in page
    assert "(402) 555-0300" in page and "(402) 555-0301" in page
    assert f"by {person(manager)}" in page


def test_a_spreadsheet_import_names_itself_and_who_uploaded_it(client_for, manager, confirm_import):
    provider = ProviderFactory(phone="(402) 555-0100")
    client = client_for(manager)
    buffer = io.StringIO()
    csv.writer(buffer).writerows(
        [
            ["NPI", "First name", "Last name", "Phone"],
            [provider.npi, provider.first_name, provider.last_name, "(402) 555-0123"],
        ]
    )
    client.post(
        reverse("partners:import_upload"),
        {"file": SimpleUploadedFile("partners.csv", buffer.getvalue().encode())},
    )
    partner_import = PartnerImport.objects.get()
    client.post(
        reverse("partners:import_mapping", args=[partner_import.pk]),
        {"column_0": "npi", "column_1": "first_name", "column_2": "last_name", "column_3": "phone"},
    )
    confirm_import(client, partner_import)
    provider.refresh_from_db()
    assert provider.phone == "(402) 555-0123"

    page = _changes_page(client, reverse("partners:provider_history", args=[provider.pk]))

    assert f"Spreadsheet import {partner_import.pk}" in page
    assert f"by {person(manager)}" in page
    assert "(402) 555-0100" in page and "(402) 555-0123" in page


def test_a_merge_says_so_in_the_history_of_the_record_kept(client_for, manager):
    survivor = ProviderFactory(phone="")
    duplicate = ProviderFactory(phone="(402) 555-0444")
    partner_merge(survivor=survivor, duplicate=duplicate, actor=manager)

    page = _changes_page(
        client_for(manager), reverse("partners:provider_history", args=[survivor.pk])
    )

    assert f"Merged with its duplicate, record {duplicate.pk}" in page
    assert "(402) 555-0444" in page
    assert Provider.history.filter(id=duplicate.pk, history_type="-").exists()


def test_a_save_that_changed_nothing_shown_is_not_listed(client_for, manager):
    provider = ProviderFactory()
    provider.save()  # a tier change, say: kept with its own history
    page = _changes_page(
        client_for(manager), reverse("partners:provider_history", args=[provider.pk])
    )
    assert "<strong>Changed</strong>" not in page


def test_the_history_reads_in_the_same_queries_however_many_changes(client_for, manager, liaison):
    provider = ProviderFactory(owner=liaison)
    client = client_for(manager)
    url = reverse("partners:provider_history", args=[provider.pk])
    client.get(url)

    def queries():
        with CaptureQueriesContext(connection) as captured:
            client.get(url)
        return len(captured.captured_queries)

    provider.phone = "(402) 555-0001"
    provider.owner = manager
    provider.save()
    few = queries()
    for n in range(30):
        provider.phone = f"(402) 555-{n:04d}"
        provider.owner = liaison if n % 2 else manager
        provider.save()
    assert queries() == few


def test_who_may_not_see_a_partner_may_not_see_its_history(client_for, no_role_user):
    provider = ProviderFactory()
    office = OrganizationFactory()
    client = client_for(no_role_user)
    assert client.get(reverse("partners:provider_history", args=[provider.pk])).status_code in (
        403,
        404,
    )
    assert client.get(reverse("partners:organization_history", args=[office.pk])).status_code in (
        403,
        404,
    )


def test_hostile_text_in_a_change_is_shown_as_text(client_for, manager):
    provider = ProviderFactory(notes="")
    provider.notes = "<script>alert(1)</script>\nline two"
    provider.save()
    page = _changes_page(
        client_for(manager), reverse("partners:provider_history", args=[provider.pk])
    )
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;<br>line two" in page


def test_a_staff_member_s_edit_is_on_their_changes_page_reached_from_their_office(
    client_for, manager, liaison
):
    """An office manager's email typed wrong sends the office's invitations to a stranger:
    who changed it, and from what, is on the person's Changes page, linked from the office."""
    office = OrganizationFactory(name="Dundee Family Practice")
    member = StaffMemberFactory(
        organization=office,
        first_name="Rita",
        email="rita@dundee.example",
        role="office_manager",
        phone="(402) 555-0100",  # a random one can be no real number, and the form says so
    )
    client = client_for(liaison)
    data = _as_the_form_sends_it(
        StaffMemberForm(instance=member), email="rita.m@dundee.example", role="referral_coordinator"
    )
    assert client.post(reverse("partners:staff_update", args=[member.pk]), data).status_code == 302

    url = reverse("partners:staff_history", args=[member.pk])
    assert url in _changes_page(client_for(manager), office.get_absolute_url())
    assert url in _changes_page(client, reverse("partners:staff_update", args=[member.pk]))
    page = _changes_page(client_for(manager), url)
    assert f"by {person(liaison)}" in page
    assert "rita@dundee.example" in page and "rita.m@dundee.example" in page
    # The role by its label; the way back is the office (a staff member has no page).
    assert "Office manager" in page and "Referral coordinator" in page
    assert f'<a href="{office.get_absolute_url()}">Dundee Family Practice</a>' in page
    assert page.count("<strong>Changed</strong>") == 1
    assert "First name" not in page


def test_who_may_not_see_office_staff_may_not_see_their_history(client_for, no_role_user):
    member = StaffMemberFactory()
    response = client_for(no_role_user).get(reverse("partners:staff_history", args=[member.pk]))
    assert response.status_code in (403, 404)


def test_the_upgrade_starts_each_staff_member_s_history_as_they_stood():
    """Staff saved before history was kept get a first row as they stood, so the first
    change after the upgrade shows what it changed from."""
    import importlib

    from django.apps import apps

    from partners.models import StaffMember

    member = StaffMemberFactory(email="rita@dundee.example")
    StaffMember.history.all().delete()  # as they were before the upgrade
    migration = importlib.import_module("partners.migrations.0023_staff_history_start")
    migration.start_history(apps, None)

    row = member.history.get()
    assert (row.email, row.history_type) == ("rita@dundee.example", "+")
    assert row.history_change_reason == migration.STARTED
    assert row.history_date == member.updated_at


def test_an_office_merge_shows_on_the_changes_pages_of_the_partners_and_staff_it_moved(
    client_for, manager
):
    """Merging two offices moves the duplicate's partners and staff with an update(), which
    writes no history: each of them gets a row saying which office they moved from and to,
    and why, by the manager who merged (through the request)."""
    kept = OrganizationFactory(name="Dundee Family Practice")
    duplicate = OrganizationFactory(name="Dundee Family Practice (old)")
    partner = ProviderFactory(organization=duplicate)
    member = StaffMemberFactory(organization=duplicate)
    staying = ProviderFactory(organization=kept)
    client = client_for(manager)
    merged = client.post(
        reverse("partners:organization_merge", args=[kept.pk]),
        {"duplicate": duplicate.pk, "confirm": "on"},
    )
    assert merged.status_code == 302, merged.content.decode()[:2000]

    reason = f"Moved when record {duplicate.pk} was merged into record {kept.pk}"
    for url in (
        reverse("partners:provider_history", args=[partner.pk]),
        reverse("partners:staff_history", args=[member.pk]),
    ):
        page = _changes_page(client, url)
        assert reason in page
        assert f"by {person(manager)}" in page
        # From the duplicate, which is gone (its id is said), to the office kept, by name.
        assert f"a record since removed ({duplicate.pk})" in page
        assert "Dundee Family Practice" in page
    # The history before the merge still names the office as it was then.
    assert partner.history.earliest("history_date").organization_id == duplicate.pk
    assert not staying.history.filter(history_change_reason=reason).exists()
