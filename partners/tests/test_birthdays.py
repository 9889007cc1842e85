"""Office staff birthdays: the liaison hears of them in the week ahead, in the morning
digest and on the dashboard, for the offices where they look after a partner."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from core.factories import UserFactory
from core.roles import Role
from outreach.services.digest import liaison_digests_send
from partners.factories import OrganizationFactory, ProviderFactory, StaffMemberFactory
from partners.selectors import next_birthday, staff_birthdays

pytestmark = pytest.mark.django_db


def test_the_next_birthday_comes_round_this_year_or_next_and_a_leap_day_on_the_28th():
    assert next_birthday(date(1980, 12, 10), date(2026, 12, 6)) == date(2026, 12, 10)
    assert next_birthday(date(1980, 12, 6), date(2026, 12, 6)) == date(2026, 12, 6)
    assert next_birthday(date(1980, 1, 3), date(2026, 12, 30)) == date(2027, 1, 3)
    assert next_birthday(date(1992, 2, 29), date(2026, 2, 20)) == date(2026, 2, 28)
    assert next_birthday(date(1992, 2, 29), date(2028, 2, 20)) == date(2028, 2, 29)


def test_birthdays_of_the_week_are_found_for_each_owner_across_the_new_year():
    jamie, robin = UserFactory(role=Role.LIAISON), UserFactory(role=Role.LIAISON)
    shared = OrganizationFactory(name="Kearney Clinic")
    ProviderFactory(owner=jamie, organization=shared)
    ProviderFactory(owner=robin, organization=shared)
    ProviderFactory(owner=jamie, organization=shared)  # two partners there: listed once
    jamies = OrganizationFactory(name="Hastings Clinic")
    ProviderFactory(owner=jamie, organization=jamies)
    today = date(2026, 12, 29)
    new_year = StaffMemberFactory(organization=shared, first_name="Ana", birthday=date(1990, 1, 2))
    today_s = StaffMemberFactory(organization=jamies, first_name="Bo", birthday=date(1985, 12, 29))
    StaffMemberFactory(organization=jamies, first_name="Late", birthday=date(1985, 1, 5))
    StaffMemberFactory(organization=jamies, first_name="Unknown", birthday=None)

    found = staff_birthdays([jamie.pk, robin.pk], today=today)
    assert [(b.staff, b.on) for b in found[jamie.pk]] == [
        (today_s, date(2026, 12, 29)),
        (new_year, date(2027, 1, 2)),
    ]
    assert [b.staff for b in found[robin.pk]] == [new_year]


def test_a_leap_day_birthday_is_found_on_the_28th_of_other_years():
    jamie = UserFactory(role=Role.LIAISON)
    office = OrganizationFactory()
    ProviderFactory(owner=jamie, organization=office)
    leap = StaffMemberFactory(organization=office, birthday=date(1992, 2, 29))
    assert [b.on for b in staff_birthdays([jamie.pk], today=date(2027, 2, 28))[jamie.pk]] == [
        date(2027, 2, 28)
    ]
    assert staff_birthdays([jamie.pk], today=date(2027, 3, 1)) == {}
    assert [b.staff for b in staff_birthdays([jamie.pk], today=date(2028, 2, 23))[jamie.pk]] == [
        leap
    ]


def test_the_digest_names_the_week_s_birthdays_even_on_a_day_with_nothing_else():
    today = timezone.localdate()
    jamie = UserFactory(role=Role.LIAISON, first_name="Jamie", email="jamie@example.org")
    UserFactory(role=Role.LIAISON, email="idle@example.org")  # no partners: no email
    office = OrganizationFactory(name="Kearney Clinic")
    ProviderFactory(owner=jamie, organization=office)
    StaffMemberFactory(
        organization=office, first_name="Ana", last_name="Reyes", role="front_desk", birthday=today
    )
    StaffMemberFactory(organization=office, first_name="Far", birthday=today + timedelta(days=8))

    assert liaison_digests_send(today=today) == 1
    [digest] = mail.outbox
    assert "1 birthday" in digest.subject
    assert "Today: Ana Reyes (Front desk, Kearney Clinic)" in digest.body
    assert "Far" not in digest.body
    assert "Ana Reyes" in digest.alternatives[0][0]


def test_the_liaison_s_dashboard_lists_the_week_s_birthdays_and_others_see_none(
    client_for, liaison, manager
):
    today = timezone.localdate()
    office = OrganizationFactory(name="Kearney Clinic")
    ProviderFactory(owner=liaison, organization=office)
    StaffMemberFactory(
        organization=office,
        first_name="Ana",
        preferences="lunch: vegetarian",
        birthday=today + timedelta(days=2),
    )
    page = client_for(liaison).get(reverse("core:dashboard")).content.decode()
    assert 'data-testid="birthdays"' in page
    assert "Ana" in page and "lunch: vegetarian" in page
    assert office.get_absolute_url() in page
    assert (
        'data-testid="birthdays"'
        not in client_for(manager).get(reverse("core:dashboard")).content.decode()
    )
