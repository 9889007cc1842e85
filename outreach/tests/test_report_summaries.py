"""Partners on a weekly or monthly report cadence get one summary letter per period
instead of a cover letter per referral."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from outreach import summaries
from outreach.models import Letter, LetterTemplate
from outreach.services import letters, loop
from partners.factories import ProviderFactory
from partners.models import Provider
from referrals.factories import ReferralFactory
from referrals.models import Status
from referrals.services.workflow import referral_log, referral_transition

pytestmark = pytest.mark.django_db

K = LetterTemplate.Kind
C = Provider.ReportCadence


def _at(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time(10)))


def _report_sent(provider, day: date, *, first="Ruth", last="Olsen"):
    referral = referral_log(
        referral=ReferralFactory.build(
            provider=provider,
            patient_first_name=first,
            patient_last_name=last,
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


def test_periods_are_iso_weeks_and_calendar_months():
    assert summaries.period_key(C.WEEKLY, date(2026, 3, 4)) == "2026-W10"
    assert summaries.period_key(C.MONTHLY, date(2026, 3, 4)) == "2026-03"
    assert summaries.period_bounds("2026-W10") == (date(2026, 3, 2), date(2026, 3, 8))
    assert summaries.period_bounds("2026-02") == (date(2026, 2, 1), date(2026, 2, 28))
    assert summaries.period_key(C.WEEKLY, date(2027, 1, 1)) == "2026-W53"
    assert summaries.period_label("2026-W10") == "the week of March 2, 2026"


def test_a_partner_on_each_report_gets_a_cover_letter_per_referral():
    provider = ProviderFactory(email="each@example.org")
    letter = _report_sent(provider, date(2026, 3, 4))
    assert letter.status == Letter.Status.PENDING and letter.channel == Letter.Channel.EMAIL


def test_a_weekly_partner_gets_one_summary_for_the_week_listing_initials_only():
    provider = ProviderFactory(email="weekly@example.org", report_cadence=C.WEEKLY)
    held = [
        _report_sent(provider, date(2026, 3, 3), first="Ruth", last="Olsen"),
        _report_sent(provider, date(2026, 3, 6), first="Abel", last="Kane"),
    ]
    next_week = _report_sent(provider, date(2026, 3, 10), first="Zoe", last="Ng")
    assert {letter.status for letter in held} == {Letter.Status.IN_SUMMARY}
    assert {letter.period for letter in held} == {"2026-W10"}

    # The week is not over on Sunday: nothing yet.
    assert summaries.report_summaries_prepare(today=date(2026, 3, 8)) == []
    (summary,) = summaries.report_summaries_prepare(today=date(2026, 3, 9))
    again = summaries.report_summaries_prepare(today=date(2026, 3, 9))

    assert again == []
    assert summary.kind == K.REPORT_SUMMARY and summary.period == "2026-W10"
    assert (summary.channel, summary.status) == (Letter.Channel.EMAIL, Letter.Status.PENDING)
    assert summary.recipient == "weekly@example.org"
    assert "the week of March 2, 2026" in summary.subject
    assert "R.O." in summary.body and "A.K." in summary.body and "Z.N." not in summary.body
    assert "Olsen" not in summary.body and "Ruth" not in summary.body
    assert "2 patients" in summary.body
    assert set(summary.summarised.values_list("pk", flat=True)) == {h.pk for h in held}
    next_week.refresh_from_db()
    assert next_week.summary is None
    assert Letter.objects.filter(kind=K.REPORT_SUMMARY).count() == 1


def test_a_monthly_partner_by_fax_gets_one_summary_per_month_in_the_print_queue_route():
    provider = ProviderFactory(
        email="", preferred_channel=Provider.PreferredChannel.FAX, report_cadence=C.MONTHLY
    )
    provider.organization.fax = "555-010-3000"
    provider.organization.email = ""
    provider.organization.save()
    _report_sent(provider, date(2026, 3, 2))
    _report_sent(provider, date(2026, 3, 30))

    (summary,) = summaries.report_summaries_prepare(today=date(2026, 4, 1))

    assert summary.period == "2026-03" and summary.channel == Letter.Channel.FAX
    assert "March 2026" in summary.subject


def test_an_opted_out_partner_gets_neither_cover_letters_nor_summaries():
    provider = ProviderFactory(letters_opt_out=True, report_cadence=C.WEEKLY)
    letter = _report_sent(provider, date(2026, 3, 3))
    assert letter.status == Letter.Status.SKIPPED
    assert summaries.report_summaries_prepare(today=date(2026, 3, 20)) == []


def test_the_database_refuses_a_second_summary_for_a_partner_and_period():
    provider = ProviderFactory(email="weekly@example.org", report_cadence=C.WEEKLY)
    _report_sent(provider, date(2026, 3, 3))
    (summary,) = summaries.report_summaries_prepare(today=date(2026, 3, 9))
    summary.pk = None
    summary.message_id = letters.new_message_id()
    with pytest.raises(IntegrityError), transaction.atomic():
        summary.save()


def test_a_cover_letter_held_after_its_summary_went_out_goes_in_the_next_one():
    provider = ProviderFactory(email="weekly@example.org", report_cadence=C.WEEKLY)
    _report_sent(provider, date(2026, 3, 3))
    summaries.report_summaries_prepare(today=date(2026, 3, 9))
    # A lost message re-created late: its week's summary is gone already.
    late = _report_sent(provider, date(2026, 3, 4), first="Ivy", last="Moss")
    today_key = summaries.period_key(C.WEEKLY, timezone.localdate())
    assert late.period == today_key
    assert late.status == Letter.Status.IN_SUMMARY


def test_the_summary_template_exists_after_migrate_and_is_editable(client_for, manager):
    template = LetterTemplate.objects.get(kind=K.REPORT_SUMMARY)
    assert "{{ report_list }}" in template.body
    response = client_for(manager).get(f"/outreach/templates/{template.pk}/")
    assert response.status_code == 200
    assert b"report_list" in response.content


def test_the_partner_form_saves_the_cadence(client_for, manager):
    from django.forms.models import model_to_dict
    from django.urls import reverse

    provider = ProviderFactory(email="a@example.org")
    url = reverse("partners:provider_update", args=[provider.pk])
    assert b'name="report_cadence"' in client_for(manager).get(url).content
    data = {k: v for k, v in model_to_dict(provider).items() if v is not None}
    data["report_cadence"] = C.MONTHLY

    response = client_for(manager).post(url, data)

    assert response.status_code == 302
    provider.refresh_from_db()
    assert provider.report_cadence == C.MONTHLY


def test_a_held_cover_letter_links_to_its_summary_and_both_are_on_the_timeline(client_for, manager):
    provider = ProviderFactory(email="weekly@example.org", report_cadence=C.WEEKLY)
    held = _report_sent(provider, date(2026, 3, 3))
    client = client_for(manager)
    assert "Waiting for the summary of 2026-W10" in client.get(held.get_absolute_url()).text

    (summary,) = summaries.report_summaries_prepare(today=date(2026, 3, 9))

    page = client.get(held.get_absolute_url()).text
    assert summary.get_absolute_url() in page
    timeline = client.get(provider.get_absolute_url()).text
    assert "Consult report summary letter" in timeline
    assert "In the report summary" in timeline
    assert "consult reports: a weekly summary" in timeline


def test_a_summary_dates_each_report_the_day_it_was_sent_whatever_the_cover_letter_delay():
    """The cover letter template may wait a business day or two before its letters go:
    a report listed in a weekly summary is still dated the day it was sent, inside the
    week the summary names, not the day its own cover letter would have gone."""
    template = letters.letter_template_for(K.OUTCOME)
    template.delay_business_days = 2
    template.save()
    provider = ProviderFactory(email="weekly@example.org", report_cadence=C.WEEKLY)
    # Friday March 6, 2026: two business days later is Tuesday March 10, the next week.
    held = _report_sent(provider, date(2026, 3, 6))
    assert held.period == "2026-W10"

    (summary,) = summaries.report_summaries_prepare(today=date(2026, 3, 9))

    assert "the week of March 2, 2026" in summary.body
    assert "report sent March 6, 2026" in summary.body
    assert "March 10" not in summary.body


def test_a_report_moved_to_another_partner_as_the_summaries_are_written_goes_in_theirs():
    from referrals.models import Referral
    from referrals.services.edit import referral_edit

    wrong = ProviderFactory(email="wrong@example.org", report_cadence=C.WEEKLY)
    right = ProviderFactory(email="right@example.org", report_cadence=C.WEEKLY)
    _report_sent(wrong, date(2026, 3, 3), first="Ruth", last="Olsen")
    moving = _report_sent(wrong, date(2026, 3, 4), first="Abel", last="Kane")
    # The moment each summary is routed, as it is written (letter_to).
    real_route = letters.letter_route
    moved = []

    def route(provider, kind, **kwargs):
        # The run has read the held letters; the coordinator corrects a referral's partner.
        if not moved:
            referral = Referral.objects.get(pk=moving.referral_id)
            referral.provider = right
            moved.append(referral_edit(referral=referral, fields=["provider"], actor=None))
        return real_route(provider, kind, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(letters, "letter_route", route)
        made = summaries.report_summaries_prepare(today=date(2026, 3, 9))
    made += summaries.report_summaries_prepare(today=date(2026, 3, 9))  # the next run

    by_partner = {summary.provider: summary for summary in made}
    assert "R.O." in by_partner[wrong].body and "A.K." not in by_partner[wrong].body
    assert "A.K." in by_partner[right].body and "R.O." not in by_partner[right].body
