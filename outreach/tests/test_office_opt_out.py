"""An office's opt-out of letters covers every partner of the office, those who join it
later included, on every path a partner's own opt-out is honoured: letters written and
letters at delivery, newsletters, summaries, event reminders and rekindle notes. Like a
partner's own, it covers every automated letter (the clinical ones about a referral too),
and clearing it restores them."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from unittest import mock

import pytest
from django.core import mail
from django.test import TestCase
from django.urls import reverse
from django.utils import timezone

from outreach import meetings, newsletters, rekindle, summaries
from outreach.factories import EventFactory, TaskFactory
from outreach.models import Invitation, Letter, LetterTemplate, NewsletterIssue, Task
from outreach.services import delivery, letters, loop
from partners.factories import OrganizationFactory, ProviderFactory
from partners.models import Provider
from partners.services.offices import organization_set_letters_opt_out
from referrals.factories import ReferralFactory
from referrals.models import Status
from referrals.services.workflow import referral_log, referral_transition

pytestmark = pytest.mark.django_db

K = LetterTemplate.Kind
S = Letter.Status


def _office(*, opted_out: bool = False):
    office = OrganizationFactory.create(name="Lakeside Family Medicine")
    if opted_out:
        organization_set_letters_opt_out(organization=office, opted_out=True, actor=None)
    return office


def _partner(office, **fields):
    fields.setdefault("email", "whitfield@example.org")
    return ProviderFactory(organization=office, **fields)


def _received(provider):
    return referral_log(
        referral=ReferralFactory.build(
            provider=provider, patient_first_name="Ruth", patient_last_name="Olsen"
        ),
        actor=None,
    )


def _walk(referral, *statuses, at=None):
    appointment = at or timezone.now()
    for status in statuses:
        referral = referral_transition(
            referral=referral,
            to_status=status,
            actor=None,
            appointment_at=appointment,
            at=appointment if status in (Status.SEEN, Status.REPORT_SENT) else None,
        )
    return referral


def _deliver_now(letter):
    Letter.objects.filter(pk=letter.pk).update(due_on=timezone.localdate())
    delivery.letter_deliver(letter_id=letter.pk)
    letter.refresh_from_db()
    return letter


# --- The rule, in one place -------------------------------------------------------------


def test_a_partner_of_an_opted_out_office_is_opted_out_and_one_without_an_office_is_not():
    office = _office(opted_out=True)
    colleague = _partner(office)
    alone = ProviderFactory(organization=None)
    elsewhere = _partner(_office())

    assert colleague.letters_opted_out and colleague.office_opted_out
    assert not alone.letters_opted_out and not elsewhere.letters_opted_out
    assert set(Provider.objects.opted_out_of_letters()) == {colleague}
    assert set(Provider.objects.taking_letters()) == {alone, elsewhere}
    assert letters.letter_route(colleague, K.ACKNOWLEDGMENT) == ("", S.SKIPPED, "")


# --- Letters about a referral (closing the loop) -----------------------------------------


def test_no_loop_letter_is_written_to_a_physician_of_an_opted_out_office():
    referral = _received(_partner(_office(opted_out=True)))

    _, acknowledgment = loop.loop_message_prepare(referral_id=referral.pk, status=Status.RECEIVED)

    assert (acknowledgment.status, acknowledgment.channel) == (S.SKIPPED, "")
    assert delivery.letter_deliver(letter_id=acknowledgment.pk) is None
    assert mail.outbox == []
    # The sweep counts it as handled, as for a partner's own opt-out.
    assert (referral.pk, Status.RECEIVED) not in loop.referral_events_missing_messages()


def test_clinical_letters_are_skipped_too_but_the_owner_still_gets_the_thank_you_task():
    # The same rule as a partner's own opt-out: every automated letter, the thank-you and
    # the consult report cover letter included; thanking them stays a task for the owner.
    referral = _walk(
        _received(_partner(_office(opted_out=True))),
        Status.ACCEPTED,
        Status.SCHEDULED,
        Status.SEEN,
        Status.REPORT_SENT,
    )

    task, thank_you = loop.loop_message_prepare(referral_id=referral.pk, status=Status.SEEN)
    _, cover_letter = loop.loop_message_prepare(referral_id=referral.pk, status=Status.REPORT_SENT)

    assert thank_you.status == S.SKIPPED and cover_letter.status == S.SKIPPED
    assert task.kind == Task.Kind.THANK_YOU and task.status == Task.Status.OPEN


def test_a_physician_who_joins_the_office_after_it_opted_out_gets_no_letters():
    office = _office(opted_out=True)
    newcomer = _partner(office, email="newcomer@example.org")  # added after the opt-out

    referral = _received(newcomer)
    _, letter = loop.loop_message_prepare(referral_id=referral.pk, status=Status.RECEIVED)

    assert letter.status == S.SKIPPED


def test_a_physician_moved_into_an_opted_out_office_gets_no_letters():
    provider = _partner(_office())
    provider.organization = _office(opted_out=True)
    provider.save()

    _, letter = loop.loop_message_prepare(
        referral_id=_received(provider).pk, status=Status.RECEIVED
    )

    assert letter.status == S.SKIPPED


def test_a_letter_waiting_when_the_office_opts_out_is_not_sent():
    office = _office()
    referral = _walk(_received(_partner(office)), Status.ACCEPTED, Status.SCHEDULED, Status.SEEN)
    _, letter = loop.thank_you_prepare(referral_id=referral.pk)
    assert (letter.status, letter.channel) == (S.PENDING, Letter.Channel.EMAIL)

    organization_set_letters_opt_out(organization=office, opted_out=True, actor=None)
    letter = _deliver_now(letter)

    assert mail.outbox == []
    assert (letter.status, letter.channel, letter.recipient) == (S.SKIPPED, "", "")
    assert letter.sent_at is None
    assert delivery.letters_to_deliver() == []


def test_clearing_the_opt_out_restores_letters_and_sends_those_still_waiting():
    office = _office()
    referral = _walk(_received(_partner(office)), Status.ACCEPTED, Status.SCHEDULED, Status.SEEN)
    _, waiting = loop.thank_you_prepare(referral_id=referral.pk)
    organization_set_letters_opt_out(organization=office, opted_out=True, actor=None)
    _, skipped = loop.loop_message_prepare(referral_id=referral.pk, status=Status.RECEIVED)
    assert skipped.status == S.SKIPPED

    organization_set_letters_opt_out(organization=office, opted_out=False, actor=None)
    waiting = _deliver_now(waiting)
    later = _received(_partner(office, email="colleague@example.org"))
    _, acknowledgment = loop.loop_message_prepare(referral_id=later.pk, status=Status.RECEIVED)

    assert waiting.status == S.SENT and len(mail.outbox) == 1
    assert (acknowledgment.status, acknowledgment.recipient) == (
        S.PENDING,
        "colleague@example.org",
    )
    # What was skipped while it held stays skipped: history, not sent late.
    skipped.refresh_from_db()
    assert skipped.status == S.SKIPPED


def test_a_referral_moved_to_a_physician_of_an_opted_out_office_has_its_letters_skipped():
    referral = _received(_partner(_office()))
    _, letter = loop.loop_message_prepare(referral_id=referral.pk, status=Status.RECEIVED)
    assert letter.status == S.PENDING
    referral.provider = _partner(_office(opted_out=True), email="other@example.org")
    referral.save()

    assert loop.loop_messages_readdress(referral_id=referral.pk) == 1

    letter.refresh_from_db()
    assert letter.status == S.SKIPPED


# --- Consult report summaries ------------------------------------------------------------


def _at(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time(10)))


def _report_sent(provider, day: date):
    referral = referral_log(
        referral=ReferralFactory.build(
            provider=provider,
            patient_first_name="Ruth",
            patient_last_name="Olsen",
            received_at=_at(day - timedelta(days=10)),
        ),
        actor=None,
    )
    for status in (Status.ACCEPTED, Status.SCHEDULED, Status.SEEN, Status.REPORT_SENT):
        referral = referral_transition(
            referral=referral,
            to_status=status,
            actor=None,
            appointment_at=_at(day - timedelta(days=2)),
            at=_at(day - timedelta(days=1)) if status != Status.REPORT_SENT else _at(day),
        )
    _task, letter = loop.loop_message_prepare(referral_id=referral.pk, status=Status.REPORT_SENT)
    return letter


def test_a_weekly_partner_of_an_opted_out_office_gets_no_summary():
    office = _office()
    provider = _partner(office, report_cadence=Provider.ReportCadence.WEEKLY)
    held = _report_sent(provider, date(2026, 3, 3))
    assert held.status == S.IN_SUMMARY  # written before the office opted out
    organization_set_letters_opt_out(organization=office, opted_out=True, actor=None)
    after = _report_sent(provider, date(2026, 3, 4))

    (summary,) = summaries.report_summaries_prepare(today=date(2026, 3, 9))

    assert after.status == S.SKIPPED
    assert (summary.status, summary.channel) == (S.SKIPPED, "")


# --- Newsletters -------------------------------------------------------------------------


def test_a_newsletter_skips_every_physician_of_an_opted_out_office():
    office = _office(opted_out=True)
    first, second = _partner(office), _partner(office, email="b@example.org")
    elsewhere = _partner(_office(), email="c@example.org")
    issue = NewsletterIssue.objects.create(subject="News", body="Dear {{ provider_name }}")

    pending = newsletters.newsletter_prepare(issue_id=issue.pk)

    status = dict(issue.letters.values_list("provider_id", "status"))
    assert status == {first.pk: S.SKIPPED, second.pk: S.SKIPPED, elsewhere.pk: S.PENDING}
    assert pending == list(issue.letters.filter(provider=elsewhere).values_list("pk", flat=True))
    assert newsletters.newsletter_progress(issue).skipped == 2


def test_preparing_a_newsletter_checks_the_office_in_the_same_query_per_chunk(
    django_assert_max_num_queries,
):
    # The pinned budget of test_newsletters: the office's opt-out adds no query per partner.
    opted_out, taking = _office(opted_out=True), _office()
    for index in range(30):
        _partner(opted_out if index % 2 else taking, email="x@example.org")
    issue = NewsletterIssue.objects.create(subject="News", body="Dear {{ provider_name }}")
    with mock.patch.object(newsletters, "CHUNK", 10), django_assert_max_num_queries(25):
        newsletters.newsletter_prepare(issue_id=issue.pk)
    assert issue.letters.filter(status=S.SKIPPED).count() == 15


def test_the_newsletter_preview_counts_who_gets_nothing(client_for, manager):
    office = _office(opted_out=True)
    _partner(office)
    _partner(office, email="b@example.org")
    _partner(_office(), email="c@example.org", letters_opt_out=True)
    _partner(_office(), email="d@example.org")

    response = client_for(manager).post(
        reverse("outreach:newsletter_preview"), {"subject": "News", "body": "Hello"}
    )

    page = response.content.decode()
    assert '<strong id="audience-count">4</strong>' in page
    assert "3 of them opted out of letters or newsletters (themselves or their office)" in page


# --- Event reminders ---------------------------------------------------------------------


def test_an_event_reminder_to_a_physician_of_an_opted_out_office_is_skipped():
    start = (timezone.localtime() + timedelta(days=5)).replace(hour=18, minute=30)
    event = EventFactory(starts_at=start, remind_days_before=7)
    out = Invitation.objects.create(event=event, provider=_partner(_office(opted_out=True)))
    taking = Invitation.objects.create(event=event, provider=_partner(_office()))

    meetings.event_reminders_prepare()

    assert Letter.objects.get(invitation=out).status == S.SKIPPED
    assert Letter.objects.get(invitation=taking).status == S.PENDING


# --- Rekindle notes ----------------------------------------------------------------------


def _rekindle_task(liaison, provider):
    return TaskFactory(
        kind=Task.Kind.REKINDLE,
        title=f"Rekindle {provider.display_name}",
        assignee=liaison,
        provider=provider,
    )


def test_no_rekindle_note_goes_to_a_physician_of_an_opted_out_office(client_for, liaison):
    provider = _partner(_office(opted_out=True), owner=liaison)
    task = _rekindle_task(liaison, provider)
    client = client_for(liaison)
    url = reverse("outreach:rekindle_note", args=[task.pk])

    page = client.get(url).content.decode()
    with (
        mock.patch("outreach.tasks.deliver_letter.apply_async") as publish,
        TestCase.captureOnCommitCallbacks(execute=True),
    ):
        response = client.post(url, {"subject": "Hello", "body": "Lunch?"})

    assert "office, Lakeside Family Medicine, opted out of letters" in page
    assert "Send the note" not in page
    assert response.status_code == 200
    assert "office, Lakeside Family Medicine, opted out of letters" in response.content.decode()
    assert not Letter.objects.exists() and not publish.called
    task.refresh_from_db()
    assert task.status == Task.Status.OPEN


def test_the_note_route_says_the_office_opted_out_not_the_partner():
    route = rekindle.note_route(_partner(_office(opted_out=True)))
    assert route.opted_out and route.office_opted_out
    own = rekindle.note_route(_partner(_office(), letters_opt_out=True))
    assert own.opted_out and not own.office_opted_out
