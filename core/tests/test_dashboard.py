"""The dashboard: where each role starts the day, at the same cost whatever the data."""

import pytest
from django.urls import reverse
from django.utils import timezone

from outreach.factories import TaskFactory
from outreach.models import Letter, LetterTemplate
from partners.factories import ProviderFactory, StaffMemberFactory
from referrals.factories import ReferralFactory

pytestmark = pytest.mark.django_db


def _failed_letter(provider, status=Letter.Status.FAILED):
    return Letter.objects.create(
        kind=LetterTemplate.Kind.THANK_YOU,
        provider=provider,
        subject="Thank you for referring R.O.",
        body="Thank you.",
        due_on=timezone.localdate(),
        status=status,
        channel=Letter.Channel.EMAIL,
        last_error="SMTPRecipientsRefused on attempt 5",
    )


# Managers and coordinators count the letters that failed for good: one query more.
@pytest.mark.parametrize(
    ("role", "queries"), [("manager", 11), ("liaison", 10), ("coordinator", 11)]
)
def test_the_dashboard_runs_the_same_queries_for_5_and_60_referrals(
    client_for, request, role, queries, django_assert_num_queries
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
            _failed_letter(provider)

    fill(5)
    client.get(reverse("core:dashboard"))  # warm the session and permission caches
    with django_assert_num_queries(queries) as few:
        first = client.get(reverse("core:dashboard"))
    fill(55)
    with django_assert_num_queries(len(few.captured_queries)):
        second = client.get(reverse("core:dashboard"))
    assert first.status_code == second.status_code == 200
    pipeline = {stage["status"]: stage["count"] for stage in second.context["pipeline"]}
    assert (pipeline["received"], pipeline["scheduled"]) == (21, 20)
    assert second.context["failed_letters"] == (None if role == "liaison" else 60)


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


def _failed_letters_card(page: str) -> str:
    card = page[page.index('data-testid="failed-letters"') :]
    return card[: card.index("</a>") + len("</a>")]


@pytest.mark.parametrize("role", ["manager", "coordinator"])
def test_the_print_queue_roles_see_how_many_letters_failed_for_good_with_a_link_to_them(
    client_for, request, role
):
    provider = ProviderFactory()
    _failed_letter(provider)
    _failed_letter(provider)
    _failed_letter(provider, status=Letter.Status.SENT)
    _failed_letter(provider, status=Letter.Status.PRINT_QUEUE)
    response = client_for(request.getfixturevalue(role)).get(reverse("core:dashboard"))
    assert response.context["failed_letters"] == 2
    page = response.content.decode()
    card = _failed_letters_card(page)
    assert f'href="{reverse("outreach:print_queue")}#failed-letters"' in card
    assert ">2</a>" in card
    assert "link-danger" in card


def test_no_failed_letters_reads_zero_without_alarm(client_for, coordinator):
    _failed_letter(ProviderFactory(), status=Letter.Status.SENT)
    page = client_for(coordinator).get(reverse("core:dashboard")).content.decode()
    card = _failed_letters_card(page)
    assert ">0</a>" in card
    assert "link-danger" not in card


def test_a_liaison_who_cannot_deal_with_failed_letters_is_not_shown_them(client_for, liaison):
    _failed_letter(ProviderFactory())
    response = client_for(liaison).get(reverse("core:dashboard"))
    assert response.context["failed_letters"] is None
    assert 'data-testid="failed-letters"' not in response.content.decode()


def test_the_failed_letters_link_lands_on_the_queues_failed_section(client_for, coordinator):
    _failed_letter(ProviderFactory())
    page = client_for(coordinator).get(reverse("outreach:print_queue")).content.decode()
    assert 'id="failed-letters"' in page


def test_the_count_of_failed_letters_is_read_from_their_partial_index(db):
    from django.db import connection

    from core.factories import UserFactory
    from core.roles import Role

    queryset = Letter.objects.for_user(UserFactory(role=Role.COORDINATOR), write=True).failed()
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            # Postgres scans a table this small whatever its indexes: ask for the plan it
            # takes once the table is large.
            cursor.execute("SET LOCAL enable_seqscan = off")
    plan = queryset.order_by().explain()
    assert "letter_failed_idx" in plan


def test_a_liaison_starts_from_the_dashboard_to_todays_visits_in_one_tap(client_for, liaison):
    # The day plan is where a liaison logs each visit; on a phone it was two taps deep in
    # the menu (Menu, Outreach, Day plan) from the page they land on.
    page = client_for(liaison).get(reverse("core:dashboard")).content.decode()

    assert f'href="{reverse("outreach:day_plan")}">Today\'s visits</a>' in page


@pytest.mark.parametrize("role", ["manager", "coordinator"])
def test_other_roles_dashboards_do_not_offer_a_day_of_visits(client_for, request, role):
    page = client_for(request.getfixturevalue(role)).get(reverse("core:dashboard"))

    assert "Today's visits" not in page.content.decode()
