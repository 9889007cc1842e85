"""Closing the loop: the messages to referrers, their routing and delivery, and tasks.

Every function here is idempotent: the unique constraints on Task and Letter make a
second run a no-op, so the worker, a retry and the beat sweep can all call them safely.
"""

from __future__ import annotations

import logging
import secrets
import uuid
from collections.abc import Callable, Iterable
from contextlib import suppress
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from smtplib import SMTPException
from typing import TYPE_CHECKING, TypedDict

from django.conf import settings
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.mail import EmailMultiAlternatives, get_connection
from django.core.mail.backends.base import BaseEmailBackend
from django.db import IntegrityError, transaction
from django.db.models import (
    Count,
    Exists,
    F,
    IntegerField,
    Max,
    Model,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
)
from django.db.models.functions import Coalesce
from django.template.loader import render_to_string
from django.utils import timezone

from core.dates import add_business_days
from outreach import direct, ledger
from outreach.fax import FaxError, fax_backend
from outreach.models import (
    Activity,
    ActivityShare,
    CalendarFeed,
    DigestDelivery,
    Event,
    Invitation,
    Letter,
    LetterTemplate,
    PlannedVisit,
    PlannedVisitEvent,
    Task,
)
from outreach.models.merge_fields import render_merge_fields
from outreach.pdf import letter_pdf, letterhead
from outreach.routing import Stop, nearest_neighbour_route
from partners.models import Organization, Provider, StaffMember
from referrals.models import Referral, ReferralEvent, Status

logger = logging.getLogger(__name__)

K = LetterTemplate.Kind

# The text each kind of letter starts with, until someone edits it on the templates page.
DEFAULT_TEMPLATES: dict[str, dict[str, object]] = {
    K.ACKNOWLEDGMENT: {
        "subject": "We received your referral for {{ patient_initials }}",
        "body": (
            "Dear {{ provider_name }},\n\n"
            "Thank you for your referral of {{ patient_initials }}, which {{ practice_name }} "
            "received on {{ referral_date }}. We will contact the patient to schedule and "
            "keep you informed.\n\n"
            "Sincerely,\n{{ sender_name }}\n{{ practice_name }}"
        ),
        "delay_business_days": 0,
    },
    K.SCHEDULED: {
        "subject": "Your patient {{ patient_initials }} is scheduled",
        "body": (
            "Dear {{ provider_name }},\n\n"
            "Your patient {{ patient_initials }} is scheduled with {{ practice_name }} on "
            "{{ appointment_date }}. We will let you know how the visit went.\n\n"
            "Sincerely,\n{{ sender_name }}\n{{ practice_name }}"
        ),
        "delay_business_days": 0,
    },
    K.THANK_YOU: {
        "subject": "Thank you for referring {{ patient_initials }}",
        "body": (
            "Dear {{ provider_name }},\n\n"
            "Thank you for referring your patient {{ patient_initials }} to {{ practice_name }}. "
            "We saw them on {{ seen_date }} and will send our consult report shortly.\n\n"
            "We appreciate your trust and are always glad to help your patients.\n\n"
            "With thanks,\n{{ sender_name }}\n{{ practice_name }}"
        ),
        "delay_business_days": 2,
    },
    K.OUTCOME: {
        "subject": "Consult report for {{ patient_initials }}",
        "body": (
            "Dear {{ provider_name }},\n\n"
            "Please find our consult report for your patient {{ patient_initials }}, seen on "
            "{{ seen_date }}, sent separately through your preferred secure channel. Call us "
            "with any question about the plan of care.\n\n"
            "Sincerely,\n{{ sender_name }}\n{{ practice_name }}"
        ),
        "delay_business_days": 0,
    },
    K.DECLINED: {
        "subject": "About your referral of {{ patient_initials }}",
        "body": (
            "Dear {{ provider_name }},\n\n"
            "Thank you for your referral of {{ patient_initials }}, received on "
            "{{ referral_date }}. We are sorry that {{ practice_name }} cannot accept it: "
            "{{ decline_reason }}\n\n"
            "Please call us if we can help you find the right place for your patient; we "
            "would be glad to see your patients again.\n\n"
            "Sincerely,\n{{ sender_name }}\n{{ practice_name }}"
        ),
        "delay_business_days": 0,
    },
    K.NO_SHOW: {
        "subject": "Your patient {{ patient_initials }} missed the appointment",
        "body": (
            "Dear {{ provider_name }},\n\n"
            "Your patient {{ patient_initials }} did not come to the appointment with "
            "{{ practice_name }} on {{ appointment_date }}. We are reaching out to the "
            "patient to reschedule and will let you know; you may wish to follow up as "
            "well.\n\n"
            "Sincerely,\n{{ sender_name }}\n{{ practice_name }}"
        ),
        "delay_business_days": 0,
    },
    K.CANCELLED: {
        "subject": "Your referral of {{ patient_initials }} was cancelled",
        "body": (
            "Dear {{ provider_name }},\n\n"
            "Your referral of {{ patient_initials }}, received on {{ referral_date }}, has "
            "been cancelled and closed without a visit to {{ practice_name }}. The reason: "
            "{{ cancel_reason }}\n\n"
            "If your patient still needs to be seen, please call us or send a new referral "
            "and we will schedule promptly.\n\n"
            "Sincerely,\n{{ sender_name }}\n{{ practice_name }}"
        ),
        "delay_business_days": 0,
    },
    K.ON_HOLD: {
        "subject": "We need more information about {{ patient_initials }}",
        "body": (
            "Dear {{ provider_name }},\n\n"
            "Your referral of {{ patient_initials }}, received on {{ referral_date }}, is on "
            "hold at {{ practice_name }} until we have this: {{ hold_reason }}\n\n"
            "Please send it through your usual secure channel or call us, and we will go on "
            "with scheduling your patient right away.\n\n"
            "Sincerely,\n{{ sender_name }}\n{{ practice_name }}"
        ),
        "delay_business_days": 0,
    },
    K.REKINDLE: {
        "subject": "Checking in from {{ practice_name }}",
        "body": (
            "Dear {{ provider_name }},\n\n"
            "It has been a while since we last worked together. We would be glad to see your "
            "patients again and to hear how we can make referring to us easier.\n\n"
            "Warm regards,\n{{ sender_name }}\n{{ practice_name }}"
        ),
        "delay_business_days": 0,
    },
    K.NEWSLETTER: {
        "subject": "News from {{ practice_name }}",
        "body": (
            "Dear {{ provider_name }},\n\n"
            "Here is what is new at {{ practice_name }} this season.\n\n"
            "{{ sender_name }}\n{{ practice_name }}"
        ),
        "delay_business_days": 0,
    },  # Also created by migration 0008 (which keeps its own frozen copy of this text).
    K.EVENT_REMINDER: {
        "subject": "Reminder: {{ event_name }} on {{ event_date }}",
        "body": (
            "Dear {{ provider_name }},\n\n"
            "A reminder that {{ practice_name }} looks forward to seeing you at {{ event_name }} "
            "on {{ event_date }}, at {{ event_place }}.\n\n"
            "If your plans have changed, a quick reply or call lets us know.\n\n"
            "With best regards,\n{{ sender_name }}\n{{ practice_name }}"
        ),
        "delay_business_days": 0,
    },
    K.REPORT_SUMMARY: {
        "subject": "Consult reports for {{ period }}",
        "body": (
            "Dear {{ provider_name }},\n\n"
            "Here are the {{ report_count }} patients you referred to {{ practice_name }} "
            "whose consult reports we sent in {{ period }}:\n\n"
            "{{ report_list }}\n\n"
            "Each report went to you through your preferred secure channel. Call us with "
            "any question about a plan of care.\n\n"
            "Sincerely,\n{{ sender_name }}\n{{ practice_name }}"
        ),
        "delay_business_days": 0,
    },  # Also created by migration 0010 (which keeps its own frozen copy of this text).
}

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

# A letter claimed by a worker that has not finished within this time is presumed lost
# with its worker and handed out again by the sweep. Longer than any delivery can take
# (EMAIL_TIMEOUT, the task time limit), or a slow send would be re-driven while running.
STALE_CLAIM = timedelta(seconds=settings.LETTER_STALE_CLAIM_SECONDS)


def letter_template_for(kind: str) -> LetterTemplate:
    template, _ = LetterTemplate.objects.get_or_create(
        kind=kind, defaults=DEFAULT_TEMPLATES.get(kind, {"subject": "", "body": ""})
    )
    return template


def _long_date(value: datetime | None) -> str:
    return f"{timezone.localtime(value):%B %-d, %Y}" if value else ""


def provider_merge_values(provider: Provider) -> dict[str, str]:
    owner = provider.owner
    return {
        "provider_name": provider.display_name,
        "provider_last_name": provider.last_name,
        "organization_name": provider.organization.name if provider.organization else "",
        "practice_name": settings.PRACTICE_NAME,
        "sender_name": (owner.get_full_name() or owner.get_username()) if owner else "",
        "today": f"{timezone.localdate():%B %-d, %Y}",
    }


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


# Shown in the template editor's live preview: an invented referral, never a real patient.
SAMPLE_MERGE_VALUES: dict[str, str] = {
    "provider_name": "Dana Whitfield, MD",
    "provider_last_name": "Whitfield",
    "organization_name": "Lakeside Family Medicine",
    "patient_initials": "J.D.",
    "referral_date": "March 3, 2026",
    "seen_date": "March 12, 2026",
    "appointment_date": "March 12, 2026 at 9:30 AM",
    "decline_reason": "we are not in network with the patient's insurance plan.",
    "hold_reason": "the office notes of the last visit and the recent X-rays.",
    "cancel_reason": "we could not reach the patient after three calls and a letter.",
    "practice_name": settings.PRACTICE_NAME,
    "sender_name": "Jamie Carter",
    "today": "March 14, 2026",
    "event_name": "Annual referral-partner dinner",
    "event_date": "December 10, 2026 at 6:30 PM",
    "event_place": "Riverside Country Club",
    "period": "the week of March 9, 2026",
    "report_count": "2",
    "report_list": "- J.D., seen March 12, 2026, report sent March 13, 2026\n"
    "- A.K., seen March 10, 2026, report sent March 11, 2026",
}


def new_message_id() -> str:
    return f"<{uuid.uuid4().hex}@{settings.MESSAGE_ID_DOMAIN}>"


def letter_route(
    provider: Provider, kind: str, *, direct_address: str | None = None
) -> tuple[str, str, str]:
    """(channel, status, recipient) for a message of `kind` to `provider`, from the
    partner's preferences, falling back to paper when the preferred address is missing.
    "Portal" is Direct secure messaging to the partner's Direct address in the NPPES
    registry, when the practice has a Direct relay; else email, then fax, then mail.
    Callers routing many partners pass `direct_address` (from direct.direct_addresses,
    "" for none) so the registry is read once, not per partner."""
    if provider.letters_opt_out:
        return "", Letter.Status.SKIPPED, ""
    if kind == K.THANK_YOU and provider.thank_you_by == Provider.ThankYouBy.CALL:
        return Letter.Channel.CALL, Letter.Status.SKIPPED, ""
    preferred = provider.preferred_channel
    if preferred == Provider.PreferredChannel.PORTAL:
        if direct.relay_configured():
            if direct_address is None:
                direct_address = direct.direct_address(provider.npi)
            if direct_address:
                return Letter.Channel.DIRECT, Letter.Status.PENDING, direct_address
        preferred = Provider.PreferredChannel.EMAIL
    if preferred == Provider.PreferredChannel.EMAIL:
        if provider.contact_email:
            return Letter.Channel.EMAIL, Letter.Status.PENDING, provider.contact_email
        preferred = Provider.PreferredChannel.FAX
    if preferred == Provider.PreferredChannel.FAX and provider.fax:
        return Letter.Channel.FAX, Letter.Status.PENDING, provider.fax
    return Letter.Channel.MAIL, Letter.Status.PENDING, ""


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
    if status == Status.ON_HOLD and not _still_asking(referral):
        # Nothing to ask of the office: held without a reason, or no longer held.
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
    values = _merge_values(referral)
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
        period = summary_period_for(provider=provider, day=reached_on)
    subject = render_merge_fields(template.subject, values)
    if sequence > 1:
        subject = f"Update: {subject}"
    try:
        with transaction.atomic():
            if status == Status.ON_HOLD and not _still_asking(referral, lock=True):
                # The hold ended while this notice was being written. Under the row lock
                # this check and the end of a hold (which withdraws its notices,
                # hold_notices_withdraw) happen one after the other, never interleaved.
                return None, None
            letter, created = Letter.objects.get_or_create(
                referral=referral,
                kind=kind,
                sequence=sequence,
                defaults={
                    "provider": provider,
                    "subject": subject[:200],
                    "body": render_merge_fields(template.body, values),
                    "due_on": due_on,
                    "channel": channel,
                    "status": letter_status,
                    "recipient": recipient,
                    "period": period,
                    "message_id": new_message_id(),
                },
            )
            if created and sequence > 1:
                # A notice of an earlier appointment not yet on its way would now give
                # the referrer the wrong date: it gives way to this one.
                Letter.objects.filter(
                    referral=referral,
                    kind=kind,
                    sequence__lt=sequence,
                    status=Letter.Status.PENDING,
                ).update(status=Letter.Status.CANCELLED, last_error=REPEATING_MESSAGES[status])
            task = None
            if kind == K.THANK_YOU:
                verb = "Call" if channel == Letter.Channel.CALL else "Thank"
                task, _ = Task.objects.get_or_create(
                    referral=referral,
                    kind=Task.Kind.THANK_YOU,
                    defaults={
                        "title": f"{verb} {provider.display_name} for referring "
                        f"{referral.patient_initials}",
                        "due_on": due_on,
                        "assignee": provider.owner,
                        "provider": provider,
                    },
                )
    except IntegrityError:
        # Another worker created them between our read and write: they exist now.
        letter = Letter.objects.get(referral=referral, kind=kind, sequence=sequence)
        task = Task.objects.filter(referral=referral, kind=Task.Kind.THANK_YOU).first()
    return task, letter


def _still_asking(referral: Referral, *, lock: bool = False) -> bool:
    """Whether the referral is on hold waiting for something the office can send; with
    `lock`, read again under the referral's row lock (inside a transaction)."""
    if lock:
        referral = (
            Referral.objects.select_for_update().only("status", "hold_reason").get(pk=referral.pk)
        )
    return referral.status == Status.ON_HOLD and bool(referral.hold_reason)


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
    missing: list[tuple[int, str]] = []
    for status, kind in LOOP_MESSAGES.items():
        events = ReferralEvent.objects.filter(
            to_status=status, at__gte=since, referral__direction=Referral.Direction.INBOUND
        )
        if status == Status.ON_HOLD:
            # Only a hold that asks the office for something, while it lasts.
            events = events.filter(referral__status=Status.ON_HOLD).exclude(
                referral__hold_reason=""
            )
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


def letters_to_deliver() -> list[int]:
    """Due letters, and letters whose worker vanished mid-delivery."""
    stale = timezone.now() - STALE_CLAIM
    due = Letter.objects.due().values_list("pk", flat=True)[:500]
    stuck = Letter.objects.filter(status=Letter.Status.SENDING, claimed_at__lt=stale).values_list(
        "pk", flat=True
    )[:500]
    return [*due, *stuck]


def _claimable() -> Q:
    now = timezone.now()
    return Q(status=Letter.Status.PENDING, due_on__lte=timezone.localdate()) | Q(
        status=Letter.Status.SENDING, claimed_at__lt=now - STALE_CLAIM
    )


def letters_claim(*, letter_ids: list[int]) -> list[Letter]:
    """Take letters for delivery. The conditional update lets exactly one worker win each
    letter; a claim left behind by a dead worker can be taken again once it is stale. The
    claim time is the claim's token: only rows stamped with it are ours."""
    token = timezone.now()
    claimed = Letter.objects.filter(_claimable(), pk__in=letter_ids).update(
        status=Letter.Status.SENDING, claimed_at=token
    )
    if not claimed:
        return []
    return list(
        Letter.objects.select_related("provider", "provider__organization", "provider__owner")
        .filter(pk__in=letter_ids, status=Letter.Status.SENDING, claimed_at=token)
        .order_by("pk")
    )


def letter_claim(*, letter_id: int) -> Letter | None:
    claimed = letters_claim(letter_ids=[letter_id])
    return claimed[0] if claimed else None


MAX_DELIVERY_ATTEMPTS = 5

DELIVERY_ERRORS = (SMTPException, OSError, FaxError)


class TransientDeliveryError(Exception):
    """Delivery failed in a way that may succeed later (SMTP down, timeout)."""


def letter_email(
    letter: Letter, connection: BaseEmailBackend | None = None
) -> EmailMultiAlternatives:
    """The email for a letter: plain text and HTML on the letterhead, with the letter's own
    Message-ID so a re-driven delivery is recognisably the same message."""
    message = EmailMultiAlternatives(
        subject=letter.subject,
        body=letter.body,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[letter.recipient],
        headers={"Message-ID": letter.message_id, "X-Referral-CRM-Letter": str(letter.pk)},
        connection=connection,
    )
    html = render_to_string(
        "outreach/email/letter.html", {"letter": letter, "letterhead": letterhead()}
    )
    message.attach_alternative(html, "text/html")
    return message


def _ensure_message_id(letter: Letter) -> None:
    if not letter.message_id:
        letter.message_id = new_message_id()
        Letter.objects.filter(pk=letter.pk).update(message_id=letter.message_id)


def _send(
    letter: Letter, connection: BaseEmailBackend, relay: BaseEmailBackend | None = None
) -> str:
    """Put one claimed letter on its channel; returns its new status or raises one of
    DELIVERY_ERRORS. `relay` is the Direct relay's connection, None when there is none."""
    if not letter.channel or (letter.channel == Letter.Channel.DIRECT and relay is None):
        # Letters prepared before channels were routed, or for Direct while the relay is
        # no longer configured: decide now (the outcome records what was used).
        letter.channel, _, letter.recipient = letter_route(letter.provider, letter.kind)
    if letter.channel == Letter.Channel.DIRECT and relay is not None:
        _ensure_message_id(letter)
        relay.open()  # once per batch, like the email session
        direct.direct_message(letter, letter_pdf(letter), relay).send()
        return Letter.Status.SENT
    if letter.channel == Letter.Channel.EMAIL:
        _ensure_message_id(letter)
        connection.open()  # once per batch: later letters reuse the SMTP session
        letter_email(letter, connection).send()
        return Letter.Status.SENT
    if letter.channel == Letter.Channel.FAX:
        return fax_backend().send(letter=letter, pdf=letter_pdf(letter))
    return Letter.Status.PRINT_QUEUE


def _ours(letter: Letter) -> QuerySet[Letter]:
    # Only the claim we hold may record the outcome: if it went stale and another worker
    # re-claimed the letter, its claimed_at differs and the update matches nothing.
    return Letter.objects.filter(
        pk=letter.pk, status=Letter.Status.SENDING, claimed_at=letter.claimed_at
    )


def _record_outcome(letter: Letter, outcome: str) -> None:
    letter.status, letter.attempts = outcome, letter.attempts + 1
    letter.sent_at, letter.last_error = timezone.now(), ""
    _ours(letter).update(
        status=letter.status,
        channel=letter.channel,
        recipient=letter.recipient,
        attempts=letter.attempts,
        sent_at=letter.sent_at,
        last_error="",
    )


def _record_failure(letter: Letter, error: Exception) -> bool:
    """Put the letter back for a retry, or mark it failed after MAX_DELIVERY_ATTEMPTS.
    Returns whether it failed for good."""
    letter.attempts += 1
    failed = letter.attempts >= MAX_DELIVERY_ATTEMPTS
    letter.status = Letter.Status.FAILED if failed else Letter.Status.PENDING
    # The error class only: SMTP replies can echo addresses or content.
    letter.last_error = f"{type(error).__name__} on attempt {letter.attempts}"
    _ours(letter).update(
        status=letter.status, attempts=letter.attempts, last_error=letter.last_error
    )
    if failed and letter.task_id:
        # A note that never arrived rekindled nothing: its task is open again, on the
        # liaison's list, showing the failed note.
        Task.objects.filter(pk=letter.task_id, status=Task.Status.DONE).update(
            status=Task.Status.OPEN, completed_at=None
        )
    logger.warning(
        "letter %s delivery attempt %s failed: %s",
        letter.pk,
        letter.attempts,
        type(error).__name__,
    )
    return failed


def letters_deliver(*, letter_ids: list[int]) -> list[Letter]:
    """Deliver a batch of letters on their channels: email over one SMTP session; fax
    through the fax backend (the default puts the PDF in the print queue); mail to the
    print queue. Each letter's outcome is committed as soon as it is known, so a worker
    killed mid-batch leaves at most the one letter in flight to be re-driven. A transient
    failure puts that letter back as pending and raises TransientDeliveryError after the
    batch (the task retries with backoff) until MAX_DELIVERY_ATTEMPTS, then marks it
    failed for a person to see."""
    letters = letters_claim(letter_ids=letter_ids)
    connection = get_connection()
    relay = direct.relay_connection() if direct.relay_configured() else None
    connections = [c for c in (connection, relay) if c is not None]
    retry = False
    try:
        for letter in letters:
            try:
                outcome = _send(letter, connection, relay)
            except DELIVERY_ERRORS as error:
                retry = not _record_failure(letter, error) or retry
                # A broken session is not reused for the next letter.
                for open_connection in connections:
                    with suppress(*DELIVERY_ERRORS):
                        open_connection.close()
                continue
            _record_outcome(letter, outcome)
    finally:
        for open_connection in connections:
            with suppress(*DELIVERY_ERRORS):
                open_connection.close()
    if retry:
        raise TransientDeliveryError(",".join(str(letter.pk) for letter in letters))
    return letters


def letter_deliver(*, letter_id: int) -> Letter | None:
    """Deliver one letter (see letters_deliver). Returns it, or None if it was not due or
    another worker holds it."""
    delivered = letters_deliver(letter_ids=[letter_id])
    return delivered[0] if delivered else None


def letter_keys_release_for_merge(*, survivor_id: int, duplicate_id: int) -> None:
    """Two records of one partner are being merged: where both got the same newsletter
    issue or a summary for the same period, the duplicate's letter stays (it was sent) but
    gives up the key, so moving it to the survivor breaks no one-per-partner constraint."""
    both_got = Letter.objects.filter(provider_id=survivor_id, newsletter__isnull=False)
    Letter.objects.filter(
        provider_id=duplicate_id, newsletter__in=both_got.values("newsletter")
    ).update(newsletter=None)
    summarised = Letter.objects.filter(provider_id=survivor_id, kind=K.REPORT_SUMMARY)
    Letter.objects.filter(
        provider_id=duplicate_id, kind=K.REPORT_SUMMARY, period__in=summarised.values("period")
    ).update(period="")


@transaction.atomic
def letter_mark_printed(*, letter: Letter, actor: User) -> Letter:
    """A person printed and mailed, or faxed, a letter from the print queue."""
    locked = Letter.objects.select_for_update().get(pk=letter.pk)
    if locked.status == Letter.Status.PRINT_QUEUE:
        locked.status = Letter.Status.SENT
        locked.sent_at = timezone.now()
        locked.printed_by = actor
        locked.save(update_fields=["status", "sent_at", "printed_by"])
    return locked


class ComplianceLimitExceeded(ValidationError):
    """Logging this cost would take a physician over the year's limit."""

    def __init__(self, over: list[ledger.Allowance]) -> None:
        self.over = over
        names = ", ".join(
            f"{a.provider.display_name} (${a.spent} so far + ${a.share} = ${a.after} of ${a.limit})"
            for a in over
        )
        super().__init__(
            f"This would take {names} over the {over[0].year} gifts and meals limit. "
            "Lower the cost or the attendees, or ask a manager to log it with a reason.",
            code="over_limit",
        )


def check_activity_cost(
    *,
    activity: Activity,
    providers: list[Provider],
    staff_count: int,
    actor: User,
) -> list[ledger.Allowance]:
    """May this cost be logged? Returns every attending physician's allowance; raises
    when one would go over the limit and no manager gave a reason for the override."""
    if not activity.cost:
        return []
    year = timezone.localtime(activity.occurred_at).year
    share = ledger.share_per_head(cost=activity.cost, headcount=len(providers) + staff_count)
    found = ledger.allowances(providers, year=year, share=share, exclude_activity_ids=[activity.pk])
    _enforce_limit(found, reason_for=lambda _: activity.limit_override_reason, actor=actor)
    return found


def _enforce_limit(
    found: list[ledger.Allowance],
    *,
    reason_for: Callable[[ledger.Allowance], str],
    actor: User,
) -> None:
    """A share over the yearly limit needs a reason on its activity, given by a manager."""
    over = [a for a in found if a.over]
    unexplained = [a for a in over if not reason_for(a).strip()]
    if unexplained:
        raise ComplianceLimitExceeded(unexplained)
    if over and not actor.has_perm("outreach.override_compliance_limit"):
        raise PermissionDenied("Only a manager may log a cost over the yearly limit.")


def _lock_providers(providers: Iterable[Provider]) -> None:
    """Lock the physicians so two liaisons logging costs for the same doctor at the same
    moment cannot both slip under the limit."""
    list(
        Provider.objects.select_for_update()
        .filter(pk__in=[p.pk for p in providers])
        .order_by("pk")
        .values_list("pk", flat=True)
    )


@transaction.atomic
def activity_log(
    *,
    activity: Activity,
    providers: Iterable[Provider],
    staff: Iterable[StaffMember],
    actor: User,
) -> Activity:
    """Save a touch with its attendees; a next step with a due date becomes a follow-up
    task for the person who logged it, so the next visit starts from it. A cost is
    shared per head and each physician's share goes in the gifts and meals ledger (see
    outreach.ledger for the rule); a share over the yearly limit is refused unless a
    manager gave a reason."""
    providers = list(providers)
    staff = list(staff)
    if activity.cost:
        _lock_providers(providers)
    activity.logged_by = actor
    activity.full_clean()
    allowances = check_activity_cost(
        activity=activity, providers=providers, staff_count=len(staff), actor=actor
    )
    activity.save()
    activity.providers.set(providers)
    activity.staff.set(staff)
    ActivityShare.objects.filter(activity=activity).delete()
    ActivityShare.objects.bulk_create(
        ActivityShare(activity=activity, provider=a.provider, year=a.year, amount=a.share)
        for a in allowances
    )
    if activity.next_step and activity.next_step_due:
        Task.objects.create(
            kind=Task.Kind.FOLLOW_UP,
            title=activity.next_step,
            due_on=activity.next_step_due,
            assignee=actor,
            provider=providers[0] if providers else None,
            activity=activity,
        )
    return activity


@transaction.atomic
def task_complete(*, task: Task) -> Task:
    locked = Task.objects.select_for_update().get(pk=task.pk)
    if locked.status == Task.Status.OPEN:
        locked.status = Task.Status.DONE
        locked.completed_at = timezone.now()
        locked.save(update_fields=["status", "completed_at"])
    return locked


# --- The liaison's day ----------------------------------------------------------------------


@transaction.atomic
def planned_visit_add(*, liaison: User, organization: Organization, day: date) -> PlannedVisit:
    """Put an office on a day's plan, at the end; adding it twice is a no-op."""
    existing = PlannedVisit.objects.filter(
        liaison=liaison, organization=organization, planned_on=day
    ).first()
    if existing is not None:
        return existing
    last = PlannedVisit.objects.filter(liaison=liaison, planned_on=day).aggregate(
        last=Max("position")
    )["last"]
    visit = PlannedVisit(
        liaison=liaison,
        organization=organization,
        planned_on=day,
        position=0 if last is None else last + 1,
    )
    visit.full_clean()
    visit.save()
    return visit


@transaction.atomic
def planned_visits_route(*, liaison: User, day: date, start_zip: str) -> list[Stop[PlannedVisit]]:
    """Reorder the day's open visits by nearest neighbour from `start_zip`; visits already
    done or skipped stay first, in the order they happened."""
    visits = list(
        PlannedVisit.objects.select_for_update()
        .filter(liaison=liaison, planned_on=day)
        .select_related("organization")
        .order_by("position", "pk")
    )
    settled = [v for v in visits if v.status != PlannedVisit.Status.PLANNED]
    route = nearest_neighbour_route(
        [v for v in visits if v.status == PlannedVisit.Status.PLANNED],
        lambda visit: visit.organization.zip_code,
        start_zip=start_zip,
    )
    for position, visit in enumerate([*settled, *(stop.item for stop in route)]):
        visit.position = position
    PlannedVisit.objects.bulk_update(visits, ["position"])
    return route


@transaction.atomic
def planned_visit_log(
    *,
    visit: PlannedVisit,
    activity: Activity,
    providers: Iterable[Provider],
    staff: Iterable[StaffMember],
    actor: User,
) -> Activity:
    """Log the visit and mark it done. A second post of the same visit (a retry after the
    response was lost on a flaky connection) returns the first activity instead of
    logging the visit twice."""
    locked = PlannedVisit.objects.select_for_update().get(pk=visit.pk)
    if locked.activity_id is not None:
        return Activity.objects.get(pk=locked.activity_id)
    activity.organization = locked.organization
    activity_log(activity=activity, providers=providers, staff=staff, actor=actor)
    PlannedVisitEvent.objects.create(
        visit=locked, from_status=locked.status, to_status=PlannedVisit.Status.DONE, actor=actor
    )
    locked.activity = activity
    locked.status = PlannedVisit.Status.DONE
    locked.save(update_fields=["activity", "status"])
    return activity


@transaction.atomic
def planned_visit_skip(*, visit: PlannedVisit, actor: User, reason: str) -> PlannedVisit:
    """Take a planned visit off the day, saying why; the skip is a history row (who, when,
    why) on the day plan and the partner's timeline. Only a planned visit can be
    skipped: a second tap, or a skip of a visit already logged, changes nothing."""
    reason = reason.strip()
    if not reason:
        raise ValidationError({"reason": "Say why the visit is skipped."})
    locked = PlannedVisit.objects.select_for_update().get(pk=visit.pk)
    if locked.status != PlannedVisit.Status.PLANNED:
        return locked
    event = PlannedVisitEvent(
        visit=locked,
        from_status=locked.status,
        to_status=PlannedVisit.Status.SKIPPED,
        actor=actor,
        reason=reason,
    )
    event.full_clean()
    event.save()
    locked.status = PlannedVisit.Status.SKIPPED
    locked.save(update_fields=["status"])
    return locked


# --- Calendar feed --------------------------------------------------------------------------


@transaction.atomic
def calendar_feed_regenerate(*, user: User) -> str:
    """Make a new private feed token for `user` (the old URL stops working) and return
    it: the only moment the raw token exists."""
    token = secrets.token_urlsafe(32)
    CalendarFeed.objects.update_or_create(
        user=user,
        defaults={"token_hash": CalendarFeed.hash_token(token), "created_at": timezone.now()},
    )
    return token


@transaction.atomic
def calendar_feed_revoke(*, user: User) -> None:
    CalendarFeed.objects.filter(user=user).delete()


# --- Events ---------------------------------------------------------------------------------


@transaction.atomic
def event_invite(
    *, event: Event, providers: Iterable[Provider], staff: Iterable[StaffMember]
) -> int:
    """Invite people to an event; inviting someone twice keeps their first invitation."""
    invited_providers = set(
        event.invitations.filter(provider__isnull=False).values_list("provider_id", flat=True)
    )
    invited_staff = set(
        event.invitations.filter(staff__isnull=False).values_list("staff_id", flat=True)
    )
    new = [
        Invitation(event=event, provider=p) for p in providers if p.pk not in invited_providers
    ] + [Invitation(event=event, staff=s) for s in staff if s.pk not in invited_staff]
    Invitation.objects.bulk_create(new)
    return len(new)


@dataclass(frozen=True)
class AttendanceResult:
    activities: list[Activity]
    attendees: int


@transaction.atomic
def event_record_attendance(
    *, event: Event, actor: User, override_reason: str = ""
) -> AttendanceResult:
    """Record who came as activities of kind "event": one per attending office with that
    office's attendees, so each office's timeline, last touch and "where we left off"
    count the event. The event's cost is shared per head across everyone who came and
    each physician's share goes in the gifts and meals ledger, with the same yearly-limit
    rule as any lunch (see `activity_log`; a manager's `override_reason` lets a share go
    over). Run again after a correction, it updates those activities, and an office
    nobody came from any more loses its activity. Attending key partners' open
    annual-meeting tasks are done when the event is their annual meeting.

    Written for all offices at once (a dozen queries however many came), not through
    `activity_log` office by office; the activities are built here from the event, so
    there is no user input to validate beyond the override reason the form checked."""
    from outreach import meetings

    locked = Event.objects.select_for_update().get(pk=event.pk)
    if locked.starts_at > timezone.now():
        # Who came is known afterwards; recorded now it would log activities, ledger costs
        # and annual meetings dated in the future.
        raise ValidationError(
            f"{locked.name} has not happened yet (it starts "
            f"{timezone.localtime(locked.starts_at):%b %-d at %-I:%M %p}): record who came "
            "after it."
        )
    came = list(
        locked.invitations.filter(attended=True).select_related("provider", "staff").order_by("pk")
    )
    by_office: dict[int | None, tuple[list[Provider], list[StaffMember]]] = {}
    for invitation in came:
        # Either a provider or a staff member (a check constraint says so).
        if invitation.provider is not None:
            office_id = invitation.provider.organization_id
            by_office.setdefault(office_id, ([], []))[0].append(invitation.provider)
        elif invitation.staff is not None:
            office_id = invitation.staff.organization_id
            by_office.setdefault(office_id, ([], []))[1].append(invitation.staff)
    existing = {activity.organization_id: activity for activity in locked.activities.all()}
    # Deleting an office's activity also drops its ledger shares (cascade).
    Activity.objects.filter(
        pk__in=[a.pk for office_id, a in existing.items() if office_id not in by_office]
    ).delete()

    activities: dict[int | None, Activity] = {}
    share = ledger.share_per_head(cost=locked.cost, headcount=len(came))
    for office_id, (providers, staff) in by_office.items():
        activity = existing.get(office_id) or Activity(
            kind=Activity.Kind.EVENT, event=locked, organization_id=office_id
        )
        activity.occurred_at = locked.starts_at
        activity.notes = f"{locked.get_kind_display()}: {locked.name}"
        activity.logged_by = actor
        # The office's part of the per-head split, so each attendee carries exactly the
        # event-wide share (as activity_log's own per-head rule would give).
        activity.cost = share * (len(providers) + len(staff)) if locked.cost else None
        activity.limit_override_reason = override_reason or activity.limit_override_reason
        activities[office_id] = activity

    allowances = _attendance_allowances(locked, by_office, activities, share, actor)

    kept = [activity for activity in activities.values() if activity.pk is not None]
    Activity.objects.bulk_create([a for a in activities.values() if a.pk is None])
    Activity.objects.bulk_update(
        kept, ["occurred_at", "notes", "logged_by", "cost", "limit_override_reason"]
    )
    ids = [activity.pk for activity in activities.values()]
    for relation, position in ((Activity.providers, 0), (Activity.staff, 1)):
        # Either link table, as a model: the two are typed apart.
        through: type[Model] = relation.through
        target = relation.field.m2m_reverse_field_name()
        through._default_manager.filter(activity_id__in=ids).delete()
        through._default_manager.bulk_create(
            through(activity_id=activities[office_id].pk, **{f"{target}_id": person.pk})
            for office_id, people in by_office.items()
            for person in people[position]
        )
    ActivityShare.objects.filter(activity_id__in=ids).delete()
    ActivityShare.objects.bulk_create(
        ActivityShare(
            activity=activities[allowance.provider.organization_id],
            provider=allowance.provider,
            year=allowance.year,
            amount=allowance.share,
        )
        for allowance in allowances
    )
    if locked.kind == Event.Kind.ANNUAL_MEETING:
        meetings.annual_meeting_tasks_close(
            provider_ids=[i.provider_id for i in came if i.provider_id],
            held_on=timezone.localtime(locked.starts_at).date(),
        )
    return AttendanceResult(list(activities.values()), len(came))


def _attendance_allowances(
    event: Event,
    by_office: dict[int | None, tuple[list[Provider], list[StaffMember]]],
    activities: dict[int | None, Activity],
    share: Decimal,
    actor: User,
) -> list[ledger.Allowance]:
    """Every attending physician's allowance for the event's share, checked against the
    yearly limit as `check_activity_cost` does for one activity: a share over the limit
    needs a manager's reason on that office's activity."""
    if not event.cost:
        return []
    providers = [provider for people, _ in by_office.values() for provider in people]
    _lock_providers(providers)
    found = ledger.allowances(
        providers,
        year=timezone.localtime(event.starts_at).year,
        share=share,
        exclude_activity_ids=[activity.pk for activity in activities.values()],
    )
    _enforce_limit(
        found,
        reason_for=lambda a: activities[a.provider.organization_id].limit_override_reason,
        actor=actor,
    )
    return found


# The rekindle queue: partners whose referrals dropped or stopped and whom nobody has
# touched lately. Each rule is a reason a person can read, not an opaque score.
REKINDLE_WINDOW = timedelta(days=90)
REKINDLE_SILENT = timedelta(days=60)
REKINDLE_UNTOUCHED = timedelta(days=30)


class RekindleFacts(TypedDict):
    recent: int
    prior: int
    last_referral_at: datetime | None
    last_touch_at: datetime | None
    last_next_step: str | None


if TYPE_CHECKING:
    from django_stubs_ext import WithAnnotations

    # A provider read through rekindle_candidates.
    RekindleCandidate = WithAnnotations[Provider, RekindleFacts]


def rekindle_candidates(*, now: datetime) -> list[RekindleCandidate]:
    """Owned partners whose inbound referrals halved (last 90 days against the 90 before)
    or stopped (none for 60 days), not touched for 30 days, with no open rekindle task.
    One query: the counts, dates and last next step are correlated subqueries."""
    inbound = (
        Referral.objects.filter(provider=OuterRef("pk"), direction=Referral.Direction.INBOUND)
        .order_by()
        .values("provider")
    )

    def referrals_between(start: datetime, end: datetime) -> Coalesce:
        return Coalesce(
            Subquery(
                inbound.filter(received_at__gte=start, received_at__lt=end)
                .annotate(n=Count("pk"))
                .values("n")[:1],
                output_field=IntegerField(),
            ),
            0,
        )

    touches = Activity.objects.filter(providers=OuterRef("pk")).order_by("-occurred_at")
    return list(
        Provider.objects.filter(owner__isnull=False)
        .exclude(tasks__kind=Task.Kind.REKINDLE, tasks__status=Task.Status.OPEN)
        .annotate(
            recent=referrals_between(now - REKINDLE_WINDOW, now),
            prior=referrals_between(now - 2 * REKINDLE_WINDOW, now - REKINDLE_WINDOW),
            last_referral_at=Subquery(inbound.order_by("-received_at").values("received_at")[:1]),
            last_touch_at=Subquery(touches.values("occurred_at")[:1]),
            last_next_step=Subquery(touches.exclude(next_step="").values("next_step")[:1]),
        )
        .filter(
            Q(prior__gte=2, recent__lte=F("prior") / 2)
            | Q(last_referral_at__lt=now - REKINDLE_SILENT)
        )
        .filter(Q(last_touch_at__isnull=True) | Q(last_touch_at__lt=now - REKINDLE_UNTOUCHED))
        .select_related("owner")
        .order_by("pk")
    )


def rekindle_reasons(provider: RekindleCandidate, *, now: datetime) -> list[str]:
    reasons = []
    if provider.prior >= 2 and provider.recent <= provider.prior / 2:
        reasons.append(
            f"Referrals dropped from {provider.prior} to {provider.recent} "
            "(the last 90 days against the 90 before)."
        )
    if provider.last_referral_at:
        reasons.append(f"No referral for {(now - provider.last_referral_at).days} days.")
    if provider.last_touch_at:
        reasons.append(f"Last touch {(now - provider.last_touch_at).days} days ago.")
    else:
        reasons.append("Never visited or called.")
    if provider.last_next_step:
        reasons.append(f"Last next step: {provider.last_next_step}")
    return reasons


@transaction.atomic
def rekindle_queue_build(*, now: datetime | None = None) -> list[Task]:
    """Give each partner that needs attention a rekindle task for their owner, with the
    reasons. Idempotent: a partner with an open rekindle task gets no second one."""
    now = now or timezone.now()
    candidates = rekindle_candidates(now=now)
    tasks = [
        Task(
            kind=Task.Kind.REKINDLE,
            title=f"Rekindle {provider.display_name}",
            detail="\n".join(rekindle_reasons(provider, now=now)),
            due_on=timezone.localdate(now),
            assignee=provider.owner,
            provider=provider,
        )
        for provider in candidates
    ]
    # The partial unique constraint drops a task another run created meanwhile.
    Task.objects.bulk_create(tasks, ignore_conflicts=True)
    # Re-read: rows inserted with ignore_conflicts come back without primary keys.
    return list(
        Task.objects.filter(
            kind=Task.Kind.REKINDLE,
            status=Task.Status.OPEN,
            provider__in=[provider.pk for provider in candidates],
        ).order_by("pk")
    )


def liaison_digests_send(*, today: date | None = None) -> int:
    """Email each liaison their day: today's planned visits, tasks due today, overdue
    ones, partners needing attention (open rekindle tasks) and the events of the coming
    week they organise or their partners are invited to. Once per liaison and day
    (DigestDelivery); liaisons with nothing on get no email. Returns how many were sent."""
    from django.contrib.auth import get_user_model

    from core.roles import Role
    from outreach import meetings

    today = today or timezone.localdate()
    liaisons = list(
        get_user_model()
        .objects.filter(is_active=True, groups__name=Role.LIAISON)
        .exclude(email="")
        .exclude(pk__in=DigestDelivery.objects.filter(day=today).values("user"))
        .distinct()
    )
    tasks_by_user: dict[int | None, list[Task]] = {}
    for task in (
        Task.objects.open()
        .filter(assignee__in=liaisons, due_on__lte=today)
        .select_related("provider")
        .order_by("due_on", "pk")
    ):
        tasks_by_user.setdefault(task.assignee_id, []).append(task)
    agenda = meetings.digest_agenda(liaisons, today=today)
    connection = get_connection()
    sent = 0
    try:
        for user in liaisons:
            tasks = tasks_by_user.get(user.pk, [])
            day = agenda.get(user.pk, {"visits": [], "events": []})
            if not (tasks or day["visits"] or day["events"]):
                continue
            try:
                with transaction.atomic():
                    DigestDelivery.objects.create(user=user, day=today)
                    _digest_email(user, tasks, today, connection, **day).send()
            except IntegrityError:
                continue  # another run sent it
            sent += 1
    finally:
        with suppress(*DELIVERY_ERRORS):
            connection.close()
    return sent


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'s' if count != 1 else ''}"


def _digest_email(
    user: User,
    tasks: list[Task],
    today: date,
    connection: BaseEmailBackend,
    *,
    visits: list[PlannedVisit],
    events: list[Event],
) -> EmailMultiAlternatives:
    context = {
        "user": user,
        "today": today,
        "visits": visits,
        "events": events,
        "due_today": [t for t in tasks if t.due_on == today and t.kind != Task.Kind.REKINDLE],
        "overdue": [t for t in tasks if t.due_on < today and t.kind != Task.Kind.REKINDLE],
        "attention": [t for t in tasks if t.kind == Task.Kind.REKINDLE],
        "practice_name": settings.PRACTICE_NAME,
        "site_url": settings.SITE_URL,
    }
    counts = [
        _plural(len(items), word)
        for items, word in ((visits, "visit"), (tasks, "task"), (events, "event"))
        if items
    ]
    message = EmailMultiAlternatives(
        subject=f"Your day, {today:%A %B %-d}: {', '.join(counts)}",
        body=render_to_string("outreach/email/digest.txt", context),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[user.email],
        connection=connection,
    )
    message.attach_alternative(render_to_string("outreach/email/digest.html", context), "text/html")
    return message
