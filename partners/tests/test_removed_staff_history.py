"""A staff member removed in the admin has no page any more, but their history is kept
(who changed their email, and who removed them): the office's page lists its removed
staff, each linked to their Changes page."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from core.templatetags.people import person
from partners.factories import OrganizationFactory, StaffMemberFactory
from partners.models import StaffMember

pytestmark = pytest.mark.django_db


def _removed_in_the_admin(client_for, administrator, member: StaffMember) -> None:
    response = client_for(administrator).post(
        reverse("admin:partners_staffmember_delete", args=[member.pk]), {"post": "yes"}
    )
    assert response.status_code == 302
    assert not StaffMember.objects.filter(pk=member.pk).exists()


def _removed_url(office, pk: int) -> str:
    return reverse("partners:removed_staff_history", args=[office.pk, pk])


def test_a_staff_member_removed_in_the_admin_is_listed_on_their_office_with_their_history(
    client_for, administrator, liaison
):
    office = OrganizationFactory(name="Dundee Family Practice")
    member = StaffMemberFactory(organization=office, first_name="Rita", last_name="Mason")
    member.email = "rita.m@dundee.example"
    member.save()
    pk = member.pk
    _removed_in_the_admin(client_for, administrator, member)

    client = client_for(liaison)
    office_page = client.get(office.get_absolute_url()).content.decode()
    assert 'data-testid="removed-staff"' in office_page
    assert "Rita Mason" in office_page
    assert _removed_url(office, pk) in office_page

    page = client.get(_removed_url(office, pk)).content.decode()
    assert "Changes to Rita Mason" in page
    assert "<strong>Removed</strong>" in page and f"by {person(administrator)}" in page
    assert "rita.m@dundee.example" in page
    # The way back is the office.
    assert f'<a href="{office.get_absolute_url()}">Dundee Family Practice</a>' in page


def test_an_office_without_removed_staff_shows_no_such_list(client_for, liaison):
    office = OrganizationFactory()
    StaffMemberFactory(organization=office)
    page = client_for(liaison).get(office.get_absolute_url()).content.decode()
    assert 'data-testid="removed-staff"' not in page


def test_a_removed_staff_members_history_is_reached_only_through_their_own_office(
    client_for, administrator, liaison
):
    office, other = OrganizationFactory(), OrganizationFactory()
    member = StaffMemberFactory(organization=office)
    pk = member.pk
    _removed_in_the_admin(client_for, administrator, member)
    client = client_for(liaison)
    assert client.get(_removed_url(other, pk)).status_code == 404
    assert _removed_url(office, pk) not in client.get(other.get_absolute_url()).content.decode()
    # Someone still at the office has their own Changes page, not this one.
    present = StaffMemberFactory(organization=office)
    assert client.get(_removed_url(office, present.pk)).status_code == 404
    assert client.get(_removed_url(office, 987654)).status_code == 404


def test_who_may_not_see_office_staff_may_not_see_removed_staff(
    client_for, administrator, no_role_user
):
    office = OrganizationFactory()
    member = StaffMemberFactory(organization=office)
    pk = member.pk
    _removed_in_the_admin(client_for, administrator, member)
    response = client_for(no_role_user).get(_removed_url(office, pk))
    assert response.status_code in (403, 404)


def test_the_office_page_reads_in_the_same_queries_however_many_staff_were_removed(
    client_for, administrator, manager
):
    office = OrganizationFactory()
    client = client_for(manager)
    member = StaffMemberFactory(organization=office)
    _removed_in_the_admin(client_for, administrator, member)
    client.get(office.get_absolute_url())

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get(office.get_absolute_url()).status_code == 200
        return len(captured.captured_queries)

    few = queries()
    for _ in range(5):
        _removed_in_the_admin(client_for, administrator, StaffMemberFactory(organization=office))
    assert queries() == few
    page = client.get(office.get_absolute_url()).content.decode()
    assert page.count(f"/offices/{office.pk}/removed-staff/") == 6


def test_staff_removed_from_an_office_later_merged_away_are_listed_on_the_office_kept(
    client_for, administrator, manager
):
    from partners.services.merges import partner_merge

    kept = OrganizationFactory(name="Dundee Family Practice")
    duplicate = OrganizationFactory(name="Dundee Family Practice (old)")
    member = StaffMemberFactory(organization=duplicate, first_name="Rita", last_name="Mason")
    pk = member.pk
    _removed_in_the_admin(client_for, administrator, member)
    partner_merge(survivor=kept, duplicate=duplicate, actor=manager)

    client = client_for(manager)
    office_page = client.get(kept.get_absolute_url()).content.decode()
    assert _removed_url(kept, pk) in office_page
    page = client.get(_removed_url(kept, pk)).content.decode()
    assert "Changes to Rita Mason" in page and "<strong>Removed</strong>" in page
    # The way back is the office kept.
    assert f'<a href="{kept.get_absolute_url()}">Dundee Family Practice</a>' in page
