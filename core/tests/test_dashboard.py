"""The dashboard: where each role starts the day, at the same cost whatever the data."""

import pytest
from django.urls import reverse
from django.utils import timezone

from outreach.factories import TaskFactory
from partners.factories import ProviderFactory, StaffMemberFactory
from referrals.factories import ReferralFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("role", ["manager", "liaison", "coordinator"])
def test_the_dashboard_runs_the_same_queries_for_5_and_60_referrals(
    client_for, request, role, django_assert_num_queries
):
    user = request.getfixturevalue(role)
    client = client_for(user)

    def fill(count):
        for n in range(count):
            provider = ProviderFactory(owner=user if role == "liaison" else None)
            ReferralFactory(provider=provider, status=("received", "scheduled", "closed")[n % 3])
            TaskFactory(assignee=user, provider=provider)
            # An office whose staff has a birthday this week (on a liaison's dashboard).
            StaffMemberFactory(organization=provider.organization, birthday=timezone.localdate())

    fill(5)
    client.get(reverse("core:dashboard"))  # warm the session and permission caches
    with django_assert_num_queries(10) as few:
        first = client.get(reverse("core:dashboard"))
    fill(55)
    with django_assert_num_queries(len(few.captured_queries)):
        second = client.get(reverse("core:dashboard"))
    assert first.status_code == second.status_code == 200
    pipeline = {stage["status"]: stage["count"] for stage in second.context["pipeline"]}
    assert (pipeline["received"], pipeline["scheduled"]) == (21, 20)


@pytest.mark.parametrize(
    ("hour", "greeting"), [(8, "Good morning"), (14, "Good afternoon"), (19, "Good evening")]
)
def test_the_greeting_follows_the_practices_time_of_day(
    client_for, liaison, monkeypatch, hour, greeting
):
    from datetime import datetime

    from django.template import defaulttags

    class At(datetime):
        @classmethod
        def now(cls, tz=None):
            return datetime(2026, 12, 4, hour, 30, tzinfo=tz)

    monkeypatch.setattr(defaulttags, "datetime", At)
    page = client_for(liaison).get(reverse("core:dashboard")).content.decode()
    assert f"{greeting}, " in page


def test_a_liaison_starts_from_the_dashboard_to_todays_visits_in_one_tap(client_for, liaison):
    # The day plan is where a liaison logs each visit; on a phone it was two taps deep in
    # the menu (Menu, Outreach, Day plan) from the page they land on.
    page = client_for(liaison).get(reverse("core:dashboard")).content.decode()

    assert f'href="{reverse("outreach:day_plan")}">Today\'s visits</a>' in page


@pytest.mark.parametrize("role", ["manager", "coordinator"])
def test_other_roles_dashboards_do_not_offer_a_day_of_visits(client_for, request, role):
    page = client_for(request.getfixturevalue(role)).get(reverse("core:dashboard"))

    assert "Today's visits" not in page.content.decode()
