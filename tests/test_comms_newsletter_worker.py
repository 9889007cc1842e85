"""The newsletter, report summary, reschedule and follow-up reminder automations end to
end: a real Celery worker delivering to real SMTP servers on loopback, one standing in
for the practice's mail server and one for its HISP's Direct relay."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from bench.smtp_sink import SmtpSink
from conftest import WorkerProcess, wait_for, worker_with_env
from core.factories import UserFactory
from core.roles import Role
from outreach.factories import TaskFactory
from outreach.models import Letter, LetterTemplate, NewsletterIssue, Task
from outreach.tasks import send_follow_up_reminders, send_report_summaries
from partners.factories import ProviderFactory
from partners.models import Provider
from referrals.factories import ReferralFactory
from referrals.models import Status
from referrals.services.workflow import referral_log, referral_transition
from registry.models import RegistryEndpoint

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

K = LetterTemplate.Kind
DIRECT_FROM = "referrals@direct.riverside-ortho.example"


@pytest.fixture(scope="module")
def sinks() -> Iterator[tuple[SmtpSink, SmtpSink]]:
    mail_server, relay = SmtpSink().start(), SmtpSink().start()
    yield mail_server, relay
    mail_server.stop()
    relay.stop()


@pytest.fixture(scope="module")
def comms_worker(
    celery_worker_process: WorkerProcess,
    sinks: tuple[SmtpSink, SmtpSink],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[WorkerProcess]:
    """The session's worker, restarted with email to one sink and Direct to the other."""
    mail_server, relay = sinks
    env = {
        "TEST_WORKER_EMAIL_URL": mail_server.url,
        "DIRECT_EMAIL_URL": relay.url,
        "DIRECT_FROM_EMAIL": DIRECT_FROM,
    }
    log = tmp_path_factory.mktemp("comms-worker") / "worker.log"
    with worker_with_env(celery_worker_process, env, log) as worker:
        yield worker


@pytest.fixture(autouse=True)
def clean_sinks(sinks: tuple[SmtpSink, SmtpSink]) -> None:
    for sink in sinks:
        with sink.lock:
            sink.received.clear()
            sink.messages.clear()


def test_a_newsletter_sent_from_the_browser_reaches_every_partner_once_by_their_channel(
    comms_worker, sinks, client_for
):
    mail_server, relay = sinks
    manager = UserFactory(role=Role.MANAGER)
    emailed = [ProviderFactory(tier="A", email=f"dr{n}@example.org") for n in range(12)]
    portal = ProviderFactory(tier="A", preferred_channel=Provider.PreferredChannel.PORTAL)
    RegistryEndpoint.objects.create(
        provider_id=portal.npi,
        endpoint_type="DIRECT",
        endpoint="dr.portal@direct.lakeside.example",
        row_hash="e2e",
    )
    mailed = ProviderFactory(tier="A", email="", preferred_channel=Provider.PreferredChannel.MAIL)
    opted_out = ProviderFactory(tier="A", email="no@example.org", letters_opt_out=True)
    ProviderFactory(tier="C", email="not-in-audience@example.org")

    data = {
        "subject": "Spring news",
        "body": "Dear {{ provider_name }}, our MRI is open.",
        "tiers": ["A"],
    }
    client = client_for(manager)
    review = client.post(reverse("outreach:newsletter_create"), data).content.decode()
    count = re.search(r'name="confirm_count" value="(\d+)"', review)[1]
    key = re.search(r'name="confirm_audience" value="(\w+)"', review)[1]
    response = client.post(
        reverse("outreach:newsletter_create"),
        {**data, "confirm_count": count, "confirm_audience": key},
    )
    issue = NewsletterIssue.objects.get()
    assert response.status_code == 302

    def finished() -> bool:
        page = client_for(manager).get(issue.get_absolute_url(), HTTP_HX_REQUEST="true")
        return b"Done" in page.content

    wait_for(finished, timeout=90, what="the newsletter send to finish")
    wait_for(lambda: mail_server.total >= 12 and relay.total >= 1, what="the sinks to see it")

    letters = {letter.provider_id: letter for letter in issue.letters.all()}
    assert len(letters) == 15
    assert set(mail_server.received) == {letters[p.pk].message_id for p in emailed}
    assert set(mail_server.received.values()) == {1}
    assert relay.received == {letters[portal.pk].message_id: 1}
    assert relay.messages[0]["To"] == "dr.portal@direct.lakeside.example"
    assert letters[portal.pk].channel == Letter.Channel.DIRECT
    assert letters[mailed.pk].status == Letter.Status.PRINT_QUEUE
    assert letters[opted_out.pk].status == Letter.Status.SKIPPED
    issue.refresh_from_db()
    assert (issue.state, issue.audience_size, issue.prepared_count) == ("sent", 15, 15)


def test_a_reschedule_sends_the_referrer_a_second_notice_with_the_new_date(comms_worker, sinks):
    mail_server, _relay = sinks
    provider = ProviderFactory(email="dr.wiebe@example.org")
    referral = referral_log(referral=ReferralFactory.build(provider=provider), actor=None)
    first = timezone.now() + timedelta(days=3)
    second = first + timedelta(days=7)
    referral = referral_transition(referral=referral, to_status=Status.ACCEPTED, actor=None)
    referral = referral_transition(
        referral=referral, to_status=Status.SCHEDULED, actor=None, appointment_at=first
    )
    wait_for(
        lambda: Letter.objects.filter(referral=referral, kind=K.SCHEDULED, status="sent").exists(),
        what="the first notice",
    )
    referral_transition(
        referral=referral, to_status=Status.SCHEDULED, actor=None, appointment_at=second
    )

    notice = wait_for(
        lambda: Letter.objects.filter(
            referral=referral, kind=K.SCHEDULED, sequence=2, status="sent"
        ).first(),
        what="the reschedule notice",
    )
    wait_for(lambda: mail_server.received.get(notice.message_id), what="it to arrive")
    assert f"{timezone.localtime(second):%B %-d, %Y}" in notice.body
    assert Letter.objects.filter(referral=referral, kind=K.SCHEDULED).count() == 2


def test_beat_sends_the_weekly_summary_and_the_follow_up_reminder(comms_worker, sinks):
    mail_server, _relay = sinks
    provider = ProviderFactory(
        email="weekly@example.org", report_cadence=Provider.ReportCadence.WEEKLY
    )
    referral = ReferralFactory(provider=provider, status=Status.REPORT_SENT)
    last_week = timezone.localdate() - timedelta(days=7)
    iso = last_week.isocalendar()
    Letter.objects.create(
        kind=K.OUTCOME,
        referral=referral,
        provider=provider,
        subject="Consult report",
        body="held",
        due_on=last_week,
        status=Letter.Status.IN_SUMMARY,
        period=f"{iso.year}-W{iso.week:02d}",
    )
    liaison = UserFactory(role=Role.LIAISON, email="jamie@example.org")
    task = TaskFactory(
        assignee=liaison, due_on=timezone.localdate(), title="Call the office manager"
    )

    send_report_summaries.delay()
    send_follow_up_reminders.delay()

    summary = wait_for(
        lambda: Letter.objects.filter(
            provider=provider, kind=K.REPORT_SUMMARY, status="sent"
        ).first(),
        what="the weekly summary to be sent",
    )
    wait_for(
        lambda: Task.objects.filter(pk=task.pk, reminded_at__isnull=False).exists(),
        what="the reminder",
    )
    wait_for(lambda: mail_server.total >= 2, what="both emails")
    subjects = [message["Subject"] for message in mail_server.messages]
    assert summary.message_id in mail_server.received
    assert any("Call the office manager" in subject for subject in subjects)
