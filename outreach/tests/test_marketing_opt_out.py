"""A partner who wants no newsletters ("take me off your mailing list") is not a partner who
wants to hear nothing about the patients they send: their opt-out of newsletters and
invitations stops newsletters, rekindle notes and event reminders only, while the letters
about their referrals (acknowledgment, scheduled, thank-you, consult report) still go."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from outreach import meetings, newsletters, rekindle
from outreach.factories import EventFactory, TaskFactory
from outreach.models import Invitation, Letter, NewsletterIssue, Task
from outreach.services import delivery, loop
from partners.factories import ProviderFactory
from partners.models import Provider
from partners.services.merges import partner_merge
from referrals.factories import ReferralFactory
from referrals.models import Status
from referrals.services.workflow import referral_log

pytestmark = pytest.mark.django_db

S = Letter.Status


def _no_newsletters(**fields) -> Provider:
    fields.setdefault("email", "whitfield@example.org")
    return ProviderFactory.create(marketing_opt_out=True, **fields)


def _received(provider: Provider):
    return referral_log(referral=ReferralFactory.build(provider=provider), actor=None)


def _deliver_now(letter: Letter) -> Letter:
    Letter.objects.filter(pk=letter.pk).update(due_on=timezone.localdate())
    delivery.letter_deliver(letter_id=letter.pk)
    letter.refresh_from_db()
    return letter


def test_no_newsletter_but_every_letter_about_their_patients():
    provider = _no_newsletters()
    issue = NewsletterIssue.objects.create(subject="News", body="Dear {{ provider_name }}")

    newsletters.newsletter_prepare(issue_id=issue.pk)
    _, acknowledgment = loop.loop_message_prepare(
        referral_id=_received(provider).pk, status=Status.RECEIVED
    )

    assert issue.letters.get(provider=provider).status == S.SKIPPED
    assert (acknowledgment.status, acknowledgment.recipient) == (S.PENDING, provider.email)
    assert _deliver_now(acknowledgment).status == S.SENT


def test_no_event_reminder_and_no_rekindle_note(client_for, liaison):
    provider = _no_newsletters(owner=liaison)
    start = (timezone.localtime() + timedelta(days=5)).replace(hour=18, minute=30)
    invitation = Invitation.objects.create(
        event=EventFactory(starts_at=start, remind_days_before=7), provider=provider
    )
    meetings.event_reminders_prepare()
    assert Letter.objects.get(invitation=invitation).status == S.SKIPPED

    route = rekindle.note_route(provider)
    assert route.opted_out and route.marketing_opted_out
    task = TaskFactory(
        kind=Task.Kind.REKINDLE, title="Rekindle", assignee=liaison, provider=provider
    )
    page = client_for(liaison).get(reverse("outreach:rekindle_note", args=[task.pk]))
    assert "opted out of newsletters and invitations" in page.content.decode()
    assert "Send the note" not in page.content.decode()


def test_a_newsletter_waiting_when_they_opt_out_is_not_sent_but_a_thank_you_is():
    provider = ProviderFactory(email="whitfield@example.org")
    issue = NewsletterIssue.objects.create(subject="News", body="Dear {{ provider_name }}")
    newsletters.newsletter_prepare(issue_id=issue.pk)
    waiting = issue.letters.get(provider=provider)
    _, acknowledgment = loop.loop_message_prepare(
        referral_id=_received(provider).pk, status=Status.RECEIVED
    )
    assert waiting.status == acknowledgment.status == S.PENDING

    Provider.objects.filter(pk=provider.pk).update(marketing_opt_out=True)

    assert _deliver_now(waiting).status == S.SKIPPED
    assert _deliver_now(acknowledgment).status == S.SENT
    assert len(mail.outbox) == 1


def test_the_partner_form_sets_it_and_the_partner_page_says_so(client_for, manager):
    provider = ProviderFactory(email="whitfield@example.org")
    form = client_for(manager).get(reverse("partners:provider_update", args=[provider.pk]))
    data = {
        name: value
        for name, value in form.context["form"].initial.items()
        if value is not None and name != "letters_opt_out"
    }
    data["marketing_opt_out"] = "on"

    response = client_for(manager).post(
        reverse("partners:provider_update", args=[provider.pk]), data
    )

    assert response.status_code == 302, response.content.decode()[:2000]
    provider.refresh_from_db()
    assert provider.marketing_opt_out and not provider.letters_opt_out
    page = client_for(manager).get(provider.get_absolute_url()).content.decode()
    assert "No newsletters or invitations" in page


def test_the_newsletter_preview_counts_them_among_those_who_get_nothing(client_for, manager):
    _no_newsletters()
    ProviderFactory(email="b@example.org", letters_opt_out=True)
    ProviderFactory(email="c@example.org")

    response = client_for(manager).post(
        reverse("outreach:newsletter_preview"), {"subject": "News", "body": "Hello"}
    )

    assert "2 of them opted out of letters or newsletters" in response.content.decode()


def test_a_merge_keeps_it_from_either_record(manager):
    survivor, duplicate = ProviderFactory(), _no_newsletters()
    partner_merge(survivor=survivor, duplicate=duplicate, actor=manager)
    survivor.refresh_from_db()
    assert survivor.marketing_opt_out


def test_the_partner_list_finds_those_who_want_no_newsletters(client_for, manager):
    _no_newsletters(last_name="Quillfeather")
    ProviderFactory(last_name="Zellweger")
    page = (
        client_for(manager)
        .get(reverse("partners:provider_list"), {"letters": "no_newsletters"})
        .content.decode()
    )
    assert "Quillfeather" in page and "Zellweger" not in page
