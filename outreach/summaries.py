"""Consult report summaries for partners who want one letter a week or a month.

The rule
--------
* A partner's `report_cadence` is "each" (a cover letter per referral, the default),
  "weekly" or "monthly".
* When a referral's report is sent to a partner on a summary cadence, its cover letter is
  made as usual but held (status "in the report summary") with the period it belongs to:
  the ISO week ("2026-W10", Monday to Sunday) or the calendar month ("2026-03") of the
  day the report went out, in the practice's time zone.
* Each morning beat runs `report_summaries_prepare`: for every period that has ended, each
  partner with held letters in it gets one summary letter listing those referrals
  (patient initials and dates only), routed by the partner's channel and opt-out. The
  database refuses a second summary for the same partner and period, so a beat that fires
  twice or a retried task never sends two.
* A held letter that arrives after its period's summary went out (the sweep re-creating a
  lost message, say) moves to the current period, so it is in the next summary rather
  than lost.
"""

from __future__ import annotations

import calendar
from collections import defaultdict
from datetime import date, timedelta

from django.db import transaction
from django.utils import timezone

from outreach import direct
from outreach.models import Letter, LetterTemplate
from outreach.models.merge_fields import render_merge_fields
from outreach.services.letters import (
    letter_template_for,
    letter_to,
    provider_merge_values,
)
from partners.models import Provider

K = LetterTemplate.Kind


def period_key(cadence: str, day: date) -> str:
    if cadence == Provider.ReportCadence.WEEKLY:
        iso = day.isocalendar()
        return f"{iso.year}-W{iso.week:02d}"
    return f"{day:%Y-%m}"


def period_bounds(key: str) -> tuple[date, date]:
    """First and last day of a period key."""
    if "-W" in key:
        iso_year, iso_week = key.split("-W")
        start = date.fromisocalendar(int(iso_year), int(iso_week), 1)
        return start, start + timedelta(days=6)
    year, month = (int(part) for part in key.split("-"))
    return date(year, month, 1), date(year, month, calendar.monthrange(year, month)[1])


def period_label(key: str) -> str:
    start = period_bounds(key)[0]
    if "-W" in key:
        return f"the week of {start:%B %-d, %Y}"
    return f"{start:%B %Y}"


def summary_period_for(*, provider: Provider, day: date) -> str:
    """The period a cover letter for a report sent on `day` is held for: the period of
    that day, or the current one when that period's summary has already gone out."""
    key = period_key(provider.report_cadence, day)
    if Letter.objects.filter(provider=provider, kind=K.REPORT_SUMMARY, period=key).exists():
        key = period_key(provider.report_cadence, timezone.localdate())
    return key


def _report_line(letter: Letter) -> str:
    referral = letter.referral
    assert referral is not None, "a report's letter is about its referral"
    parts = [referral.patient_initials]
    if referral.seen_at:
        parts.append(f"seen {timezone.localtime(referral.seen_at):%B %-d, %Y}")
    parts.append(f"report sent {letter.due_on:%B %-d, %Y}")
    return "- " + ", ".join(parts)


def report_summaries_prepare(*, today: date | None = None) -> list[Letter]:
    """Make the summary letters of every period that ended before `today` (see the module's
    rule). Returns the summaries this run made; pending ones are for the letter pipeline."""
    today = today or timezone.localdate()
    held = list(
        Letter.objects.filter(status=Letter.Status.IN_SUMMARY, summary__isnull=True)
        .exclude(period="")
        .select_related("referral", "provider__organization", "provider__owner")
        .order_by("due_on", "pk")
    )
    groups: dict[tuple[int, str], list[Letter]] = defaultdict(list)
    for letter in held:
        if period_bounds(letter.period)[1] < today:
            groups[(letter.provider_id, letter.period)].append(letter)
    if not groups:
        return []
    addresses = (
        direct.direct_addresses(letters[0].provider.npi for letters in groups.values())
        if direct.relay_configured()
        else {}
    )
    template = letter_template_for(K.REPORT_SUMMARY)
    summaries: list[Letter] = []
    for (_provider_id, period), letters in groups.items():
        provider = letters[0].provider
        values = {
            **provider_merge_values(provider),
            "period": period_label(period),
            "report_count": str(len(letters)),
            "report_list": "\n".join(_report_line(letter) for letter in letters),
        }
        summaries.append(
            letter_to(
                provider,
                K.REPORT_SUMMARY,
                subject=render_merge_fields(template.subject, values),
                body=render_merge_fields(template.body, values),
                due_on=today,
                direct_address=addresses.get(provider.npi, ""),
                period=period,
            )
        )
    with transaction.atomic():
        # Read again under the held letters' row locks, which a correction of their
        # referral takes too (loop_messages_readdress, loop_messages_withdraw): a summary
        # lists only what is still held for its partner and period. A partner's summary
        # that a correction overtook while it was written is left to the next run.
        still_held = set(
            Letter.objects.select_for_update()
            .filter(
                pk__in=[letter.pk for letters in groups.values() for letter in letters],
                status=Letter.Status.IN_SUMMARY,
                summary__isnull=True,
            )
            .values_list("pk", "provider_id", "period")
        )
        for key, letters in list(groups.items()):
            if any((letter.pk, *key) not in still_held for letter in letters):
                del groups[key]
        summaries = [
            summary for summary in summaries if (summary.provider_id, summary.period) in groups
        ]
        # A summary another run made for the same partner and period wins the constraint.
        Letter.objects.bulk_create(summaries, ignore_conflicts=True)
        made = {
            (letter.provider_id, letter.period): letter
            for letter in Letter.objects.filter(
                message_id__in=[summary.message_id for summary in summaries]
            )
        }
        attached, late = [], []
        for key, letters in groups.items():
            summary = made.get(key)
            for letter in letters:
                if summary is None:
                    late.append(letter.pk)
                else:
                    letter.summary = summary
                    attached.append(letter)
        Letter.objects.bulk_update(attached, ["summary"])
        if late:
            # Their period's summary went out without them: the next one lists them.
            for letter in Letter.objects.filter(pk__in=late, summary__isnull=True).select_related(
                "provider"
            ):
                letter.period = period_key(letter.provider.report_cadence, today)
                letter.save(update_fields=["period"])
    return sorted(made.values(), key=lambda letter: letter.pk)
