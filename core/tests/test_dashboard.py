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
