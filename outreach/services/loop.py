"""Closing the loop: the message to the referrer at each step of an inbound referral.

Every function here is idempotent: the unique constraints on Task and Letter make a
second run a no-op, so the worker, a retry and the beat sweep can all call them safely.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Count, Exists, IntegerField, OuterRef, Q, Subquery
from django.utils import timezone

from core.dates import add_business_days
from outreach.models import Letter, LetterTemplate, Task
from outreach.models.merge_fields import render_merge_fields
from outreach.services.letters import (
    letter_route,
    letter_template_for,
    new_message_id,
    provider_merge_values,
)
from partners.models import Provider
from referrals.models import Referral, ReferralEvent, Status

K = LetterTemplate.Kind

# The referral events that send the referrer a message, and which message. The referral
# workflow enqueues `prepare_loop_message` for these; the sweep recovers lost enqueues.
LOOP_MESSAGES: dict[str, str] = {
    Status.RECEIVED: K.ACKNOWLEDGMENT,
    Status.SCHEDULED: K.SCHEDULED,
    Status.SEEN: K.THANK_YOU,
    Status.REPORT_SENT: K.OUTCOME,
    # The office hears why, so it can send the patient elsewhere without delay.
    Status.DECLINED: K.DECLINED,
    # The referring physician stays responsible for a patient who did not come.
    Status.NO_SHOW: K.NO_SHOW,
    # Whoever cancelled, the office learns the patient will not be seen here.
    Status.CANCELLED: K.CANCELLED,
    # Held for something only the referring office can send: they are told what, when the
    # coordinator wrote it (a hold without a reason sends nothing).
    Status.ON_HOLD: K.ON_HOLD,
}

# Statuses a referral can reach more than once, each time with its own notice (numbered
# by Letter.sequence), and what an unsent earlier one is marked when a later one comes.
REPEATING_MESSAGES: dict[str, str] = {
    Status.SCHEDULED: "Superseded by a reschedule",
    Status.NO_SHOW: "Superseded by a later missed appointment",
    Status.ON_HOLD: "Superseded by a later hold",
}

# How far back the sweep looks for events whose message is missing: long enough to cover
# any broker outage, short enough that a newly added kind never mails ancient referrals.
SWEEP_LOOKBACK = timedelta(days=7)


def _long_date(value: datetime | None) -> str:
    return f"{timezone.localtime(value):%B %-d, %Y}" if value else ""


def _merge_values(referral: Referral) -> dict[str, str]:
    appointment = referral.appointment_at
    return {
        **provider_merge_values(referral.provider),
        "patient_initials": referral.patient_initials,
        "referral_date": _long_date(referral.received_at),
        "seen_date": _long_date(referral.seen_at),
        "decline_reason": referral.decline_reason,
        "hold_reason": referral.hold_reason,
        "cancel_reason": referral.cancel_reason,
        "appointment_date": (
            f"{timezone.localtime(appointment):%B %-d, %Y at %-I:%M %p}" if appointment else ""
        ),
    }


def loop_message_prepare(*, referral_id: int, status: str) -> tuple[Task | None, Letter | None]:
    """Prepare the message that closes the loop with the referrer for an inbound referral
    that reached `status` (acknowledgment, scheduled notice, thank-you, report cover
    letter), routed by the partner's preferences, once per referral and kind. A thank-you
    also gives the relationship owner a task. Returns what now exists (None, None when the
    referral is not inbound or never reached `status`)."""
    kind = LOOP_MESSAGES.get(status)
    if kind is None:
        return None, None
    referral = (
        Referral.objects.select_related("provider", "provider__owner", "provider__organization")
        .filter(pk=referral_id, direction=Referral.Direction.INBOUND)
        .first()
    )
    reached_at = (
        ReferralEvent.objects.filter(referral_id=referral_id, to_status=status)
        .order_by("at")
        .values_list("at", flat=True)
        .first()
    )
    if referral is None or reached_at is None:
        return None, None
    if referral.duplicate_of_id is not None:
        # A copy of a referral the office already hears about (referral_mark_duplicate).
        return None, None
    if not _still_true(referral, status):
        # Nothing to ask of the office (held without a reason, or no longer held), or an
        # appointment that no longer stands (cancelled, missed or seen since).
        return None, None
    sequence = 1
    if status in REPEATING_MESSAGES:
        # Each (re)scheduling, each missed appointment, is its own notice, keyed by its
        # ordinal: the latest one carries the appointment the referral now has.
        sequence, reached_at = _latest_occurrence(referral_id, status)
    if status == Status.SEEN and referral.seen_at:
        reached_at = referral.seen_at
    template = letter_template_for(kind)
    reached_on = timezone.localtime(reached_at).date()
    # No delay means at once, weekend or not: an acknowledgment should not wait for Monday.
    due_on = (
        add_business_days(reached_on, template.delay_business_days)
        if template.delay_business_days
        else reached_on
    )
    provider = referral.provider
    addressed = _addressed(referral, template, sequence=sequence, day=reached_on, due_on=due_on)
    if addressed["status"] == Letter.Status.IN_SUMMARY:
        # Not sent by itself, so no delay: its summary lists the report as sent that day.
        due_on = reached_on
    channel = addressed["channel"]
    try:
        with transaction.atomic():
            if not _still_true(referral, status, lock=True):
                # The hold ended, the appointment fell through, the referral was marked
                # as a duplicate, or corrected, while this notice was being written. Under
                # the row lock this check and the move (which withdraws the notices still
                # waiting: hold_notices_withdraw, scheduled_notices_withdraw, the mark's
                # own; an edit re-addresses them) happen one after the other, never
                # interleaved.
                return None, None
            if (
                status in REPEATING_MESSAGES
                and _latest_occurrence(referral_id, status)[0] > sequence
            ):
                # Reached again while this notice was being written (rebooked, say): it
                # would tell the office what no longer holds, and the notice of the move,
                # which withdraws those waiting, may have gone before it. That one stands.
                return None, None
            letter, created = Letter.objects.get_or_create(
                referral=referral,
                kind=kind,
                sequence=sequence,
                defaults={**addressed, "due_on": due_on, "message_id": new_message_id()},
            )
            if created and sequence > 1:
                # A notice of an earlier appointment not yet on its way (waiting to be
                # sent, or to be printed or faxed from the queue) would now give the
                # referrer the wrong date: it gives way to this one.
                Letter.objects.filter(
                    referral=referral,
                    kind=kind,
                    sequence__lt=sequence,
                    status__in=[Letter.Status.PENDING, Letter.Status.PRINT_QUEUE],
                ).update(status=Letter.Status.CANCELLED, last_error=REPEATING_MESSAGES[status])
            task = None
            if kind == K.THANK_YOU:
                task, _ = Task.objects.get_or_create(
                    referral=referral,
                    kind=Task.Kind.THANK_YOU,
                    defaults={
                        "title": _thank_you_title(referral, channel),
                        # A visit recorded days late (seen_at is the appointment's time)
                        # would make a task overdue from birth: due today at the earliest.
                        "due_on": max(due_on, timezone.localdate()),
                        "assignee": provider.owner,
                        "provider": provider,
                    },
                )
    except IntegrityError:
        # Another worker created them between our read and write: they exist now.
        letter = Letter.objects.get(referral=referral, kind=kind, sequence=sequence)
        task = Task.objects.filter(referral=referral, kind=Task.Kind.THANK_YOU).first()
    return task, letter


def _addressed(
    referral: Referral, template: LetterTemplate, *, sequence: int, day: date, due_on: date
) -> dict[str, Any]:
    """The letter of `template`'s kind about `referral` as its referring partner gets it:
    the partner, the text written for them, and the route their preferences choose (a
    report cover letter for a weekly or monthly summary is held for the period of
    `day`). It is dated the day it goes out (`due_on`, or today when that has passed),
    as its PDF is, not the day it is written."""
    kind = template.kind
    values = _merge_values(referral)
    values["today"] = f"{max(due_on, timezone.localdate()):%B %-d, %Y}"
    provider = referral.provider
    channel, letter_status, recipient = letter_route(provider, kind)
    period = ""
    if (
        kind == K.OUTCOME
        and letter_status == Letter.Status.PENDING
        and provider.report_cadence != Provider.ReportCadence.EACH
    ):
        # Held for the partner's weekly or monthly summary instead of sent by itself.
        from outreach.summaries import summary_period_for

        channel, letter_status, recipient = "", Letter.Status.IN_SUMMARY, ""
        period = summary_period_for(provider=provider, day=day)
    subject = render_merge_fields(template.subject, values)
    if sequence > 1:
        subject = f"Update: {subject}"
    return {
        "provider": provider,
        "subject": subject[:200],
        "body": render_merge_fields(template.body, values),
        "channel": channel,
        "status": letter_status,
        "recipient": recipient,
        "period": period,
    }


def _thank_you_title(referral: Referral, channel: str) -> str:
    verb = "Call" if channel == Letter.Channel.CALL else "Thank"
    # The initials stay whole: a longest name and credential are cut instead.
    tail = f" for referring {referral.patient_initials}"
    return f"{verb} {referral.provider.display_name}"[: 200 - len(tail)] + tail


# Letters about a referral that have not left: re-addressed when the referral moves to
# another partner. A letter being sent, sent or cancelled stays as it is.
UNSENT = [
    Letter.Status.PENDING,
    Letter.Status.PRINT_QUEUE,
    Letter.Status.FAILED,
    Letter.Status.SKIPPED,
    Letter.Status.IN_SUMMARY,
]


@transaction.atomic
def loop_messages_readdress(*, referral_id: int) -> int:
    """An inbound referral was moved to another referring partner (logged under the
    wrong one): its letters that have not left are rewritten for the partner it is now
    from and routed by their preferences, so the first one's office never gets them; an
    open thank-you task follows too. Letters already sent stay as history. Called by the
    referral edit in its transaction. Returns how many letters were re-addressed."""
    referral = Referral.objects.select_related(
        "provider", "provider__owner", "provider__organization"
    ).get(pk=referral_id)
    letters = list(
        Letter.objects.select_for_update()
        .filter(referral=referral, status__in=UNSENT, summary__isnull=True)
        .exclude(provider=referral.provider)
    )
    for letter in letters:
        template = letter_template_for(letter.kind)
        addressed = _addressed(
            referral, template, sequence=letter.sequence, day=letter.due_on, due_on=letter.due_on
        )
        for name, value in addressed.items():
            setattr(letter, name, value)
        letter.attempts, letter.last_error = 0, ""
        letter.save(update_fields=[*addressed, "attempts", "last_error"])
    channel, _, _ = letter_route(referral.provider, K.THANK_YOU)
    Task.objects.open().filter(referral=referral, kind=Task.Kind.THANK_YOU).exclude(
        provider=referral.provider
    ).update(
        provider=referral.provider,
        assignee=referral.provider.owner,
        title=_thank_you_title(referral, channel),
    )
    return len(letters)


def _still_true(referral: Referral, status: str, *, lock: bool = False) -> bool:
    """Whether the notice of reaching `status` still tells the office the truth: a hold
    asks for something while it lasts, an appointment is announced while it stands (a
    notice written late, after the referral was cancelled, missed or seen, would be one
    that move withdraws). Notices of what happened stay true. No notice is true of a copy
    marked as a duplicate (the office hears about the original). With `lock`, the referral
    is read again under its row lock (inside a transaction): the mark takes that lock too
    (referral_mark_duplicate), so a notice is either written before it, and withdrawn by
    it, or not at all. So does an edit: a notice read before a correction of the partner,
    the patient's name or the direction (which re-address, rename or withdraw only the
    letters that exist) is not true either; the sweep writes it from the referral as it
    now is."""
    if lock:
        locked = (
            Referral.objects.select_for_update()
            .only(
                "status",
                "hold_reason",
                "duplicate_of",
                "provider",
                "direction",
                "patient_first_name",
                "patient_last_name",
            )
            .get(pk=referral.pk)
        )
        read = (referral.provider_id, referral.direction, referral.patient_initials)
        if (locked.provider_id, locked.direction, locked.patient_initials) != read:
            return False
        referral = locked
    if referral.duplicate_of_id is not None:
        return False
    if status not in (Status.ON_HOLD, Status.SCHEDULED):
        return True
    if status == Status.ON_HOLD:
        return referral.status == Status.ON_HOLD and bool(referral.hold_reason)
    return referral.status == Status.SCHEDULED


# What a withdrawn notice's row says, on the partner timeline and in the letter lists.
HOLD_ENDED = "Withdrawn: the referral is no longer on hold"


def hold_notices_withdraw(*, referral_id: int) -> int:
    """A referral came off hold: its "more information needed" notices that have not left
    yet (waiting to be sent, or in the print/fax queue) would ask the office for what is
    no longer needed, so they are withdrawn. Called by the referral workflow in the
    transaction that ends the hold. Returns how many."""
    return Letter.objects.filter(
        referral_id=referral_id,
        kind=K.ON_HOLD,
        status__in=[Letter.Status.PENDING, Letter.Status.PRINT_QUEUE],
    ).update(status=Letter.Status.CANCELLED, last_error=HOLD_ENDED)


def loop_messages_rename(*, referral_id: int, was: str, now: str) -> int:
    """The patient's name was corrected on an inbound referral, and with it their initials
    (`was` → `now`): the letters that have not left, and the open thank-you task, name the
    patient by the corrected initials, as the office knows them. Only the initials change:
    the rest of each letter says what it said when written (a missed appointment's date,
    say). Called by the referral edit in its transaction. Returns how many letters."""
    initials = re.compile(rf"(?<![A-Za-z.]){re.escape(was)}")
    letters = list(
        Letter.objects.select_for_update().filter(
            referral_id=referral_id, status__in=UNSENT, summary__isnull=True
        )
    )
    for letter in letters:
        letter.subject = initials.sub(now, letter.subject)[:200]
        letter.body = initials.sub(now, letter.body)
        letter.save(update_fields=["subject", "body"])
    for task in Task.objects.open().filter(referral_id=referral_id, kind=Task.Kind.THANK_YOU):
        task.title = initials.sub(now, task.title)[:200]
        task.save(update_fields=["title"])
    return len(letters)


# What a letter withdrawn by that correction says.
NOT_REFERRED_BY_THEM = "Withdrawn: the referral was corrected to one we sent them"


def loop_messages_withdraw(*, referral_id: int) -> int:
    """A referral logged as received was corrected to one we sent out: the partner never
    referred the patient, so its letters that have not left (an acknowledgment, a
    thank-you "for referring" them, a report cover letter held for a summary) and its open
    thank-you task are withdrawn. Letters already sent stay as history. Called by the
    referral edit in its transaction. Returns how many letters were withdrawn."""
    waiting = [status for status in UNSENT if status != Letter.Status.SKIPPED]
    Task.objects.open().filter(referral_id=referral_id, kind=Task.Kind.THANK_YOU).update(
        status=Task.Status.CANCELLED
    )
    return Letter.objects.filter(
        referral_id=referral_id, status__in=waiting, summary__isnull=True
    ).update(status=Letter.Status.CANCELLED, last_error=NOT_REFERRED_BY_THEM)


# What a withdrawn scheduled notice's row says.
APPOINTMENT_GONE = "Withdrawn: the appointment no longer stands (the referral is now {})"


def scheduled_notices_withdraw(*, referral_id: int, status_label: str) -> int:
    """A scheduled referral moved on without being rebooked (cancelled, a missed
    appointment, seen): its "your patient is scheduled" notices that have not left (a
    practice may let a day pass before sending them) would tell the office of an
    appointment that no longer stands, after the notice of what happened instead. Called
    by the referral workflow in the transaction of the move. Returns how many."""
    return Letter.objects.filter(
        referral_id=referral_id,
        kind=K.SCHEDULED,
        status__in=[Letter.Status.PENDING, Letter.Status.PRINT_QUEUE],
    ).update(status=Letter.Status.CANCELLED, last_error=APPOINTMENT_GONE.format(status_label))


def _latest_occurrence(referral_id: int, status: str) -> tuple[int, datetime]:
    """(how many times the referral reached `status`, when it last did)."""
    times = list(
        ReferralEvent.objects.filter(referral_id=referral_id, to_status=status)
        .order_by("at", "pk")
        .values_list("at", flat=True)
    )
    return len(times), times[-1]


def thank_you_prepare(*, referral_id: int) -> tuple[Task | None, Letter | None]:
    return loop_message_prepare(referral_id=referral_id, status=Status.SEEN)


def referral_events_missing_messages() -> list[tuple[int, str]]:
    """(referral id, status) of recent inbound referral events whose loop message does not
    exist: work whose enqueue was lost. One bounded query per kind, so the sweep stays
    cheap however many referrals there are."""
    since = timezone.now() - SWEEP_LOOKBACK
    # A referral logged lately may have been received long before (a fax typed in late):
    # its received event is dated then, yet its message is recent work. So the events of
    # referrals logged since `since` count too. Ids grow as referrals are logged, so the
    # last one logged before is found reading back over the recent few alone.
    logged_before = (
        Referral.objects.filter(created_at__lt=since)
        .order_by("-pk")
        .values_list("pk", flat=True)
        .first()
    )
    recent = Q(at__gte=since) | Q(referral_id__gt=logged_before or 0)
    missing: list[tuple[int, str]] = []
    for status, kind in LOOP_MESSAGES.items():
        events = ReferralEvent.objects.filter(
            recent,
            to_status=status,
            referral__direction=Referral.Direction.INBOUND,
            referral__duplicate_of__isnull=True,
        )
        if status == Status.ON_HOLD:
            # Only a hold that asks the office for something, while it lasts.
            events = events.filter(referral__status=Status.ON_HOLD).exclude(
                referral__hold_reason=""
            )
        if status == Status.SCHEDULED:
            # Only an appointment that still stands (see _still_true).
            events = events.filter(referral__status=Status.SCHEDULED)
        if status in REPEATING_MESSAGES:
            # A rescheduled referral needs the notice of its latest scheduling (likewise a
            # second missed appointment): the letter whose sequence is the number of times
            # it reached that status.
            times_reached = Subquery(
                ReferralEvent.objects.filter(referral=OuterRef("referral"), to_status=status)
                .order_by()
                .values("referral")
                .annotate(n=Count("pk"))
                .values("n")[:1],
                output_field=IntegerField(),
            )
            events = events.annotate(times=times_reached).exclude(
                Exists(
                    Letter.objects.filter(
                        referral=OuterRef("referral"), kind=kind, sequence=OuterRef("times")
                    )
                )
            )
        else:
            events = events.exclude(referral__letters__kind=kind)
        referral_ids = events.values_list("referral_id", flat=True).distinct()[:500]
        missing.extend((referral_id, status) for referral_id in referral_ids)
    return missing
