"""On a follow-up's due date its owner gets a reminder email, once per task."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from bench.smtp_sink import SmtpSink
from core.factories import UserFactory
from core.roles import Role
from outreach import reminders
from outreach.factories import TaskFactory
from outreach.models import Task
from partners.factories import ProviderFactory
from referrals.factories import ReferralFactory

pytestmark = pytest.mark.django_db


def test_the_owner_of_a_follow_up_due_today_is_reminded_once(settings):
    settings.SITE_URL = "https://crm.example.org"
    today = timezone.localdate()
    liaison = UserFactory(role=Role.LIAISON, email="jamie@example.org", first_name="Jamie")
    provider = ProviderFactory(first_name="Dana", last_name="Whitfield", credential="MD")
    task = TaskFactory(
        assignee=liaison, provider=provider, due_on=today, title="Bring the MRI brochure"
    )

    assert reminders.follow_up_reminders_send(today=today) == 1
    assert reminders.follow_up_reminders_send(today=today) == 0

    (message,) = mail.outbox
    assert message.to == ["jamie@example.org"]
    assert "Bring the MRI brochure" in message.subject
    assert "Dana Whitfield, MD" in message.body
    assert message.alternatives[0][1] == "text/html"
    link = f"https://crm.example.org{task.get_absolute_url()}"
    assert link in message.body and f'href="{link}"' in message.alternatives[0][0]
    task.refresh_from_db()
    assert task.reminded_at is not None


def test_a_follow_up_about_a_referral_is_reminded_without_the_patients_initials():
    today = timezone.localdate()
    liaison = UserFactory(role=Role.LIAISON, email="jamie@example.org")
    provider = ProviderFactory(first_name="Dana", last_name="Whitfield", credential="MD")
    referral = ReferralFactory(
        provider=provider, patient_first_name="Ruth", patient_last_name="Olsen"
    )
    TaskFactory(
        assignee=liaison,
        provider=provider,
        referral=referral,
        due_on=today,
        title="Ask how R.O. got on",
    )

    assert reminders.follow_up_reminders_send(today=today) == 1
    (message,) = mail.outbox
    assert "Follow-up · Dana Whitfield, MD" in message.subject
    for text in (message.subject, message.body, message.alternatives[0][0]):
        assert "R.O." not in text and "Olsen" not in text


def test_only_open_follow_ups_due_now_with_an_owner_who_has_email_are_reminded():
    today = timezone.localdate()
    liaison = UserFactory(role=Role.LIAISON, email="jamie@example.org")
    TaskFactory(assignee=liaison, due_on=today + timedelta(days=1))  # not yet
    TaskFactory(assignee=liaison, due_on=today - timedelta(days=30))  # long overdue: digest
    TaskFactory(assignee=liaison, due_on=today, status=Task.Status.DONE)
    TaskFactory(assignee=liaison, due_on=today, kind=Task.Kind.REKINDLE)
    TaskFactory(assignee=UserFactory(role=Role.LIAISON, email=""), due_on=today)
    TaskFactory(assignee=None, due_on=today)
    missed = TaskFactory(assignee=liaison, due_on=today - timedelta(days=1))  # a missed run

    assert reminders.follow_up_reminders_send(today=today) == 1
    assert [m.subject for m in mail.outbox] == [mail.outbox[0].subject]
    assert missed.title in mail.outbox[0].subject


def test_a_failed_send_is_not_marked_reminded_and_goes_next_run(settings):
    today = timezone.localdate()
    task = TaskFactory(assignee=UserFactory(email="jamie@example.org"), due_on=today)
    sink = SmtpSink().start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", sink.port
    try:
        sink.refuse = True
        assert reminders.follow_up_reminders_send(today=today) == 0
        task.refresh_from_db()
        assert task.reminded_at is None
        sink.refuse = False
        assert reminders.follow_up_reminders_send(today=today) == 1
    finally:
        sink.stop()
    assert sink.total == 1


def test_beat_tries_a_reminder_the_mail_server_refused_again_that_morning(settings):
    # The next run would otherwise be tomorrow's: a reminder for a follow-up due today,
    # refused at 6:35, would arrive the day after it was due.
    schedule = settings.CELERY_BEAT_SCHEDULE["send-follow-up-reminders"]["schedule"]
    assert (schedule.hour, schedule.minute) == ({6, 7, 8}, {35})


def test_beat_runs_the_reminders_and_the_summaries_every_morning(settings):
    tasks = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert "outreach.tasks.send_follow_up_reminders" in tasks
    assert "outreach.tasks.send_report_summaries" in tasks


def test_a_next_step_typed_with_a_line_break_is_reminded_and_stops_no_one_elses(
    client_for, liaison
):
    """A next step is one line, but a tampered post (or a client that keeps the line
    break) can carry one into the follow-up's title: its reminder is sent with the title
    on one line, and the reminders of everyone after it go out too."""
    today = timezone.localdate()
    liaison.email = "jamie@example.org"
    liaison.save()
    provider = ProviderFactory(owner=liaison)
    response = client_for(liaison).post(
        reverse("outreach:activity_create"),
        {
            "provider": provider.pk,
            "kind": "visit",
            "occurred_at": timezone.localtime().strftime("%Y-%m-%dT%H:%M"),
            "providers": [provider.pk],
            "next_step": "Bring the MRI brochure\r\nand the referral pads",
            "next_step_due": today.isoformat(),
        },
    )
    assert response.status_code == 302
    assert Task.objects.get().title == "Bring the MRI brochure\r\nand the referral pads"
    TaskFactory(
        assignee=UserFactory(email="sam@example.org"),
        due_on=today,
        title="Call Dr. Pilcher",
    )

    assert reminders.follow_up_reminders_send(today=today) == 2

    subjects = sorted(message.subject for message in mail.outbox)
    assert subjects[0].endswith(": Bring the MRI brochure and the referral pads")
    assert subjects[1].endswith(": Call Dr. Pilcher")
