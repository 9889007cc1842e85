"""Annual meetings with key partners: when one is due, where it shows, the reminders."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

import pytest
from django.conf import settings
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from core.factories import UserFactory
from outreach import meetings, tasks
from outreach.factories import EventFactory, TaskFactory
from outreach.models import Event, Invitation, Task
from partners.factories import ProviderFactory
from partners.models import Provider

pytestmark = pytest.mark.django_db


def at(day: date, hour: int = 18) -> datetime:
    return timezone.make_aware(datetime.combine(day, time(hour)))


def met(provider: Provider, on: date, *, kind: str = Event.Kind.ANNUAL_MEETING) -> Event:
    event = EventFactory.create(kind=kind, starts_at=at(on))
    Invitation.objects.create(event=event, provider=provider, rsvp="yes", attended=True)
    return event


def test_year_before_keeps_the_date_and_turns_february_29_into_the_28th():
    assert meetings.year_before(date(2026, 11, 22)) == date(2025, 11, 22)
    assert meetings.year_before(date(2028, 2, 29)) == date(2027, 2, 28)


def test_a_key_partner_is_due_when_their_last_annual_meeting_is_over_12_months_ago():
    today = timezone.localdate()
    ProviderFactory(tier="A", last_name="Never")
    old_b = ProviderFactory(tier="B", last_name="Old")
    met(old_b, today - timedelta(days=400))
    recent_a = ProviderFactory(tier="A", last_name="Recent")
    met(recent_a, today - timedelta(days=330))
    anniversary_a = ProviderFactory(tier="A", last_name="Anniversary")
    met(anniversary_a, meetings.year_before(today))
    no_show_b = ProviderFactory(tier="B", last_name="Noshow")
    no_show = EventFactory(starts_at=at(today - timedelta(days=60)))
    Invitation.objects.create(event=no_show, provider=no_show_b, rsvp="yes", attended=False)
    dinner_a = ProviderFactory(tier="A", last_name="Dinner")
    met(dinner_a, today - timedelta(days=30), kind=Event.Kind.DINNER)
    ProviderFactory(tier="C", last_name="Minor")
    ProviderFactory(tier="", last_name="Untiered")

    due = list(meetings.annual_meetings_due(Provider.objects.all(), today=today))

    # Tier A first, the never-met first within a tier; a dinner is not an annual meeting,
    # a no-show did not meet us, and exactly 12 months ago is not "more than 12".
    assert [p.last_name for p in due] == ["Dinner", "Never", "Noshow", "Old"]
    assert due[3].last_annual_meeting_at == at(today - timedelta(days=400))
    assert due[0].last_annual_meeting_at is None
    assert not meetings.annual_meeting_status(recent_a, today=today).due
    assert not meetings.annual_meeting_status(anniversary_a, today=today).due
    assert meetings.annual_meeting_status(anniversary_a, today=today + timedelta(days=1)).due


def test_a_partner_met_on_august_1_is_due_again_on_august_2_the_next_year():
    partner = ProviderFactory(tier="B")
    met(partner, date(2025, 8, 1))
    status = meetings.annual_meeting_status(partner, today=date(2026, 8, 1))
    assert status.key_partner
    assert status.last_at == at(date(2025, 8, 1))
    assert status.due_on == date(2026, 8, 2)
    assert not status.due
    assert meetings.annual_meeting_status(partner, today=date(2026, 8, 2)).due
    partner.tier = "C"
    assert not meetings.annual_meeting_status(partner, today=date(2026, 8, 2)).due


def test_on_february_29_the_list_and_the_partner_page_agree_on_who_is_due():
    # Met on February 28, 2023: over 12 months ago on February 29, 2024 (the partner page
    # says due); met on March 1, 2023: not yet.
    feb_28 = ProviderFactory(tier="A", last_name="Twentyeighth")
    met(feb_28, date(2023, 2, 28))
    march_1 = ProviderFactory(tier="A", last_name="March")
    met(march_1, date(2023, 3, 1))
    leap_day = date(2024, 2, 29)

    due = list(meetings.annual_meetings_due(Provider.objects.all(), today=leap_day))

    assert meetings.annual_meeting_status(feb_28, today=leap_day).due
    assert not meetings.annual_meeting_status(march_1, today=leap_day).due
    assert [p.last_name for p in due] == ["Twentyeighth"]


def test_the_partner_page_says_when_the_annual_meeting_is_due(client_for, liaison):
    today = timezone.localdate()
    due = ProviderFactory(tier="A", owner=liaison)
    ok = ProviderFactory(tier="B", owner=liaison)
    met(ok, today - timedelta(days=100))
    upcoming = EventFactory(starts_at=at(today + timedelta(days=20)))
    Invitation.objects.create(event=upcoming, provider=due)

    page = client_for(liaison).get(due.get_absolute_url()).content.decode()
    card = page.split('data-testid="annual-meeting"')[1].split("</div></div>")[0]
    assert "Due" in card
    assert "Last attended: never" in card
    assert "visits and lunches are logged as activities and do not count" in card
    assert f"Invited to one on {upcoming.starts_at:%b} " in card

    page = client_for(liaison).get(ok.get_absolute_url()).content.decode()
    card = page.split('data-testid="annual-meeting"')[1].split("</div></div>")[0]
    assert "Due" not in card
    assert "next due" in card


def test_the_list_shows_a_liaison_their_partners_and_a_manager_everyones(
    client_for, liaison, other_liaison, manager, coordinator
):
    mine = ProviderFactory(tier="A", owner=liaison, last_name="Mineowned")
    ProviderFactory(tier="B", owner=other_liaison, last_name="Theirsowned")
    url = reverse("outreach:annual_meeting_list")

    page = client_for(liaison).get(url, {"scope": "all"}).content.decode()
    assert "Mineowned" in page
    assert "Theirsowned" not in page  # a liaison cannot widen the scope
    page = client_for(manager).get(url, {"scope": "all"}).content.decode()
    assert "Mineowned" in page and "Theirsowned" in page
    # A manager owns no partners: the page starts from everyone's.
    page = client_for(manager).get(url).content.decode()
    assert "Mineowned" in page and "Theirsowned" in page
    page = client_for(manager).get(url, {"scope": "mine"}).content.decode()
    assert "Mineowned" not in page
    page = client_for(manager).get(url, {"scope": "all", "tier": "B"}).content.decode()
    assert "Mineowned" not in page and "Theirsowned" in page
    assert client_for(coordinator).get(url).status_code == 403
    met(mine, timezone.localdate() - timedelta(days=10))
    assert "Mineowned" not in client_for(liaison).get(url).content.decode()


def test_the_list_runs_the_same_queries_for_3_or_15_partners(
    client_for, manager, django_assert_num_queries
):
    client = client_for(manager)
    url = reverse("outreach:annual_meeting_list")

    def fill(count: int) -> None:
        for provider in ProviderFactory.create_batch(count, tier="A", owner=manager):
            met(provider, timezone.localdate() - timedelta(days=500))

    fill(3)
    client.get(url, {"scope": "all"})
    with django_assert_num_queries(5) as few:
        client.get(url, {"scope": "all"})
    fill(12)
    with django_assert_num_queries(len(few.captured_queries)):
        response = client.get(url, {"scope": "all"})
    assert response.content.decode().count("Last annual meeting") == 15


def test_the_nightly_run_gives_each_due_key_partner_one_open_task_for_its_owner(liaison):
    today = timezone.localdate()
    due = ProviderFactory(tier="A", owner=liaison, first_name="Ana", last_name="Reyes")
    met(due, today - timedelta(days=500))
    ProviderFactory(tier="A", owner=None)  # nobody to remind
    invited = ProviderFactory(tier="B", owner=liaison)
    Invitation.objects.create(
        event=EventFactory(starts_at=at(today + timedelta(days=30))), provider=invited
    )
    fine = ProviderFactory(tier="A", owner=liaison)
    met(fine, today - timedelta(days=20))

    created = meetings.annual_meeting_reminders_create(today=today)
    tasks.remind_annual_meetings()  # beat fires again: nothing new

    task = Task.objects.get(kind=Task.Kind.ANNUAL_MEETING)
    assert created == [task]
    assert task.provider == due
    assert task.assignee == liaison
    assert task.due_on == today
    assert task.title == f"Annual meeting with {due.display_name} is due"
    assert "Last annual meeting:" in task.detail
    # The database refuses a second open one, whoever writes it.
    with pytest.raises(IntegrityError), transaction.atomic():
        Task.objects.create(
            kind=Task.Kind.ANNUAL_MEETING, title="again", due_on=today, provider=due
        )
    # Closed without a meeting, it does not come back the next night.
    Task.objects.filter(pk=task.pk).update(status=Task.Status.DONE)
    assert meetings.annual_meeting_reminders_create(today=today + timedelta(days=1)) == []


def test_a_reminder_done_years_ago_and_this_year_s_other_tasks_do_not_stop_the_next(liaison):
    today = timezone.localdate()
    partner = ProviderFactory(tier="A", owner=liaison)
    met(partner, today - timedelta(days=400))
    old = TaskFactory(
        kind=Task.Kind.ANNUAL_MEETING, provider=partner, assignee=liaison, status="done"
    )
    Task.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=800))
    # This year's ordinary work for the partner: a thank-you done, a follow-up still open.
    TaskFactory(kind=Task.Kind.THANK_YOU, provider=partner, assignee=liaison, status="done")
    TaskFactory(kind=Task.Kind.FOLLOW_UP, provider=partner, assignee=liaison)

    [task] = meetings.annual_meeting_reminders_create(today=today)

    assert (task.kind, task.provider) == (Task.Kind.ANNUAL_MEETING, partner)


def test_recording_attendance_at_an_annual_meeting_completes_the_reminder(client_for, liaison):
    today = timezone.localdate()
    partner = ProviderFactory(tier="A", owner=liaison)
    [task] = meetings.annual_meeting_reminders_create(today=today)
    event = EventFactory(starts_at=timezone.now() - timedelta(hours=2))
    Invitation.objects.create(event=event, provider=partner, rsvp="yes", attended=True)

    client_for(liaison).post(reverse("outreach:event_attendance", args=[event.pk]))

    task.refresh_from_db()
    assert task.status == Task.Status.DONE
    assert not meetings.annual_meeting_status(partner).due
    assert not meetings.annual_meetings_due(Provider.objects.all()).exists()


def test_beat_runs_the_annual_meeting_reminders_and_the_event_reminders():
    names = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert "outreach.tasks.remind_annual_meetings" in names
    assert "outreach.tasks.send_event_reminders" in names
    assert tasks.remind_annual_meetings.name == "outreach.tasks.remind_annual_meetings"
    assert tasks.send_event_reminders.name == "outreach.tasks.send_event_reminders"


def test_a_new_event_can_start_as_an_annual_meeting_or_a_cme(client_for, manager):
    url = reverse("outreach:event_create")
    page = client_for(manager).get(url, {"kind": "annual_meeting"}).content.decode()
    assert '<option value="annual_meeting" selected>' in page
    page = client_for(manager).get(url, {"kind": "cme"}).content.decode()
    assert '<option value="cme" selected>CME</option>' in page
    assert client_for(manager).get(url, {"kind": "<script>"}).status_code == 200


def test_a_key_partner_with_a_long_name_does_not_stop_the_reminders_for_everyone():
    # Names and credential at their longest: the task's title must still fit its column.
    long_named = ProviderFactory(
        tier="A",
        owner=UserFactory(),
        first_name="F" * 100,
        last_name="L" * 100,
        credential="C" * 50,
    )
    other = ProviderFactory(tier="A", owner=UserFactory())

    created = meetings.annual_meeting_reminders_create()

    assert {task.provider for task in created} == {long_named, other}
    assert all(len(task.title) <= 200 for task in created)
