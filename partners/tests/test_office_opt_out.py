"""An office's opt-out of letters: set on the office's form, stamped with when and by
whom, kept as history, shown on the office's page and on each of its partners' pages,
and kept through a merge. What it does to letters is in outreach/tests/test_office_opt_out."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import pytest
from django.urls import reverse

from partners.factories import OrganizationFactory
from partners.models import Organization
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
