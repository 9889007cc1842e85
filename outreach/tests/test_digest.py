"""The liaison's daily digest email."""

from __future__ import annotations

from datetime import timedelta
from smtplib import SMTPRecipientsRefused
from unittest import mock

import pytest
from django.core import mail
from django.core.mail import EmailMultiAlternatives
from django.utils import timezone

from core.factories import UserFactory
from core.roles import Role
from outreach.factories import TaskFactory
from outreach.models import DigestDelivery, Task
from outreach.services.digest import liaison_digests_send
from outreach.tasks import send_liaison_digests
from partners.factories import ProviderFactory
from referrals.factories import ReferralFactory

pytestmark = pytest.mark.django_db


def test_each_liaison_gets_their_due_overdue_and_attention_tasks_once_a_day(settings):
    settings.SITE_URL = "http://crm.example.org"
    today = timezone.localdate()
    jamie = UserFactory(role=Role.LIAISON, first_name="Jamie", email="jamie@example.org")
    other = UserFactory(role=Role.LIAISON, email="other@example.org")
    TaskFactory(assignee=jamie, title="Drop off the new brochures", due_on=today)
    TaskFactory(assignee=jamie, title="Call Dr. Pilcher back", due_on=today - timedelta(days=3))
    TaskFactory(assignee=jamie, title="Lunch next week", due_on=today + timedelta(days=7))
    Task.objects.create(
        kind=Task.Kind.REKINDLE,
        title="Rekindle Dr. Wiebe",
        detail="No referral for 75 days.",
        due_on=today,
        assignee=jamie,
        provider=ProviderFactory(first_name="David", last_name="Wiebe", credential="MD"),
    )
    TaskFactory(assignee=other, title="Someone else's task", due_on=today)

    assert liaison_digests_send(today=today) == 2
    send_liaison_digests()  # beat fires again: nothing new

    assert len(mail.outbox) == 2
    [digest] = [m for m in mail.outbox if m.to == ["jamie@example.org"]]
    assert "Good morning Jamie" in digest.body
    assert "Drop off the new brochures" in digest.body
    assert "Call Dr. Pilcher back" in digest.body
    assert "Lunch next week" not in digest.body
    assert "David Wiebe, MD: No referral for 75 days." in digest.body
    assert "Someone else's task" not in digest.body
    assert "text/html" in [mimetype for _, mimetype in digest.alternatives]
    # Each task links back to the app at the configured address.
    brochures = Task.objects.get(title="Drop off the new brochures")
    link = f"http://crm.example.org{brochures.get_absolute_url()}"
    assert f"Drop off the new brochures: {link}" in digest.body
    assert f'href="{link}"' in digest.alternatives[0][0]


def test_a_task_about_a_referral_is_named_in_the_digest_without_the_patients_initials():
    today = timezone.localdate()
    jamie = UserFactory(role=Role.LIAISON, email="jamie@example.org")
    partner = ProviderFactory(first_name="David", last_name="Wiebe", credential="MD")
    referral = ReferralFactory(
        provider=partner, patient_first_name="Ruth", patient_last_name="Olsen"
    )
    Task.objects.create(
        kind=Task.Kind.THANK_YOU,
        title="Thank David Wiebe, MD for referring R.O.",
        due_on=today,
        assignee=jamie,
        provider=partner,
        referral=referral,
    )

    assert liaison_digests_send(today=today) == 1
    (digest,) = mail.outbox
    html = digest.alternatives[0][0]
    # Email leaves the practice: the task goes by its kind and partner, as in the calendar.
    assert "Thank-you · David Wiebe, MD" in digest.body
    assert "Thank-you · David Wiebe, MD" in html
    for text in (digest.subject, digest.body, html):
        assert "R.O." not in text and "Olsen" not in text


def test_a_digest_the_mail_server_refuses_does_not_stop_the_others_and_goes_next_run():
    today = timezone.localdate()
    refused = UserFactory(role=Role.LIAISON, email="typo@example.invalid")
    liaisons = [refused, *(UserFactory(role=Role.LIAISON) for _ in range(3))]
    for liaison in liaisons:
        TaskFactory(assignee=liaison, due_on=today)
    send = EmailMultiAlternatives.send

    def refuse_one(message, *args, **kwargs):
        if message.to == [refused.email]:
            raise SMTPRecipientsRefused({refused.email: (550, b"No such user")})
        return send(message, *args, **kwargs)

    with mock.patch.object(EmailMultiAlternatives, "send", refuse_one):
        assert liaison_digests_send(today=today) == 3

    assert sorted(m.to[0] for m in mail.outbox) == sorted(u.email for u in liaisons[1:])
    assert not DigestDelivery.objects.filter(user=refused).exists()
    assert liaison_digests_send(today=today) == 1  # the next run tries again


def test_a_liaison_with_nothing_due_gets_no_email():
    UserFactory(role=Role.LIAISON, email="free@example.org")
    assert liaison_digests_send() == 0
    assert mail.outbox == []


def test_the_digest_lists_todays_plan_and_the_weeks_meetings_and_events():
    from outreach.factories import EventFactory, PlannedVisitFactory
    from outreach.models import Invitation
    from partners.factories import OrganizationFactory

    today = timezone.localdate()
    jamie = UserFactory(role=Role.LIAISON, first_name="Jamie", email="jamie@example.org")
    other = UserFactory(role=Role.LIAISON, email="other@example.org")
    PlannedVisitFactory(
        liaison=jamie, organization=OrganizationFactory(name="Dundee Family Practice")
    )
    skipped = PlannedVisitFactory(
        liaison=jamie, organization=OrganizationFactory(name="Closed Clinic"), status="skipped"
    )
    partner = ProviderFactory(owner=jamie)
    soon = timezone.now() + timedelta(days=3)
    Invitation.objects.create(
        event=EventFactory(name="Annual partner dinner", starts_at=soon), provider=partner
    )
    Invitation.objects.create(
        event=EventFactory(name="Declined lunch-and-learn", starts_at=soon),
        provider=partner,
        rsvp="no",
    )
    Invitation.objects.create(
        event=EventFactory(name="Far-off open house", starts_at=soon + timedelta(days=20)),
        provider=partner,
    )
    EventFactory(name="CME evening she organises", kind="cme", starts_at=soon, organizer=jamie)
    EventFactory(name="Someone else's event", starts_at=soon, organizer=other)

    # Jamie has no task due: the plan and the events are reason enough for the email.
    assert liaison_digests_send(today=today) == 2

    [digest] = [m for m in mail.outbox if m.to == ["jamie@example.org"]]
    assert "1 visit" in digest.subject and "2 events" in digest.subject
    assert "1. Dundee Family Practice" in digest.body
    assert skipped.organization.name not in digest.body
    assert "Annual partner dinner (Annual meeting)" in digest.body
    assert "CME evening she organises (CME)" in digest.body
    assert "Declined lunch-and-learn" not in digest.body
    assert "Far-off open house" not in digest.body
    assert "Someone else's event" not in digest.body
    html, _ = digest.alternatives[0]
    assert "Annual partner dinner" in html and "Dundee Family Practice" in html


def test_beat_tries_the_morning_digest_again_for_one_that_failed(settings):
    # 6:30, then 7:30 and 8:30: a digest refused at 6:30 still goes out that morning.
    schedule = settings.CELERY_BEAT_SCHEDULE["send-liaison-digests"]["schedule"]
    assert (schedule.hour, schedule.minute) == ({6, 7, 8}, {30})


def _send_counting_queries(today):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        liaison_digests_send(today=today)
    return len(queries)


def test_each_section_lists_twenty_items_then_says_how_many_more_with_a_link(settings):
    settings.SITE_URL = "http://crm.example.org"
    today = timezone.localdate()
    jamie = UserFactory(role=Role.LIAISON, first_name="Jamie", email="jamie@example.org")
    for number in range(1, 26):
        TaskFactory(
            assignee=jamie,
            title=f"Overdue call {number:02}",
            due_on=today - timedelta(days=90 - number),
        )
    for number in range(1, 4):
        TaskFactory(assignee=jamie, title=f"Due call {number}", due_on=today)

    assert liaison_digests_send(today=today) == 1

    [digest] = mail.outbox
    assert "28 tasks" in digest.subject  # the subject counts every one
    # The oldest twenty, in order, then the count of the rest and where to see them.
    assert "Overdue call 20," in digest.body and "Overdue call 21" not in digest.body
    assert digest.body.index("Overdue call 01") < digest.body.index("Overdue call 20")
    overdue = "http://crm.example.org/outreach/tasks/?state=overdue"
    assert f"And 5 more: {overdue}" in digest.body
    assert all(f"Due call {number}" in digest.body for number in range(1, 4))
    assert digest.body.count("And ") == 1  # a short section has no "more" line
    html, _ = digest.alternatives[0]
    assert html.count("Overdue call") == 20
    assert f'And 5 more: <a href="{overdue}">' in html


def test_the_digest_takes_as_many_queries_for_a_hundred_tasks_as_for_one():
    from outreach.factories import PlannedVisitFactory

    today = timezone.localdate()
    few = UserFactory(role=Role.LIAISON, email="few@example.org")
    TaskFactory(assignee=few, due_on=today - timedelta(days=1))
    TaskFactory(assignee=few, due_on=today)
    PlannedVisitFactory(liaison=few)
    one = _send_counting_queries(today)
    DigestDelivery.objects.all().delete()
    TaskFactory.create_batch(50, assignee=few, due_on=today - timedelta(days=2))
    TaskFactory.create_batch(45, assignee=few, due_on=today)
    PlannedVisitFactory.create_batch(30, liaison=few)
    mail.outbox.clear()

    assert _send_counting_queries(today) == one
    [digest] = mail.outbox
    # Overdue, due today, visits.
    assert all(f"And {more} more" in digest.body for more in (31, 26, 11))
