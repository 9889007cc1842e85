"""Delivering letters: claiming them, putting them on their channel, recording the outcome."""

from __future__ import annotations

import logging
import traceback
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, nullcontext, suppress
from datetime import datetime, timedelta
from smtplib import SMTPException
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.core.mail import EmailMultiAlternatives, get_connection
from django.core.mail.backends.base import BaseEmailBackend
from django.db import DatabaseError, transaction
from django.db import connection as db_connection
from django.db.models import Q, QuerySet
from django.template.loader import render_to_string
from django.utils import timezone

from core.templatetags.people import person
from outreach import direct
from outreach.fax import FaxError, fax_backend
from outreach.meetings import NO_REMINDERS, SUPERSEDED
from outreach.models import Event, Invitation, Letter, LetterEvent, LetterTemplate, Task
from outreach.pdf import letter_pdf, letterhead
from outreach.services.events import EVENT_CANCELLED, NOT_COMING
from outreach.services.letters import letter_route, new_message_id

logger = logging.getLogger(__name__)

# A letter claimed by a worker that has not finished within this time is presumed lost
# with its worker and handed out again by the sweep. Longer than any delivery can take
# (EMAIL_TIMEOUT, the task time limit), or a slow send would be re-driven while running.
STALE_CLAIM = timedelta(seconds=settings.LETTER_STALE_CLAIM_SECONDS)

MAX_DELIVERY_ATTEMPTS = 5
RETRY_BACKOFF_MAX = 900


def retry_delay(attempts: int) -> timedelta:
    """How long a letter that failed `attempts` times waits before the next try: doubling
    from LETTER_RETRY_BACKOFF_SECONDS up to RETRY_BACKOFF_MAX (Celery's retry countdown,
    without its jitter, so the task's retry finds the letter claimable)."""
    seconds = settings.LETTER_RETRY_BACKOFF_SECONDS * 2 ** (attempts - 1)
    return timedelta(seconds=min(RETRY_BACKOFF_MAX, seconds))


def _backoff_over(now: datetime) -> Q:
    """A letter put back after a failed attempt is not tried again before its backoff has
    passed, counted from the claim of that attempt (kept on the row): the minutely sweep
    must not cut the wait short, or a brief SMTP outage uses up every attempt."""
    waited = Q(attempts=0) | Q(claimed_at__isnull=True)
    for attempts in range(1, MAX_DELIVERY_ATTEMPTS):
        waited |= Q(attempts=attempts, claimed_at__lt=now - retry_delay(attempts))
    return waited


# Letters handed out per sweep (each kind: due, and stuck mid-delivery).
DELIVERY_SCAN = 500


def letters_to_deliver() -> list[int]:
    """Due letters (past any backoff), and letters whose worker vanished mid-delivery."""
    now = timezone.now()
    stale = now - STALE_CLAIM
    # Oldest due first (the pending letters' index): a backlog drains in order instead of
    # new letters jumping ahead of those waiting longest.
    due = (
        Letter.objects.due()
        .filter(_backoff_over(now))
        .order_by("due_on", "pk")
        .values_list("pk", flat=True)[:DELIVERY_SCAN]
    )
    stuck = (
        Letter.objects.filter(status=Letter.Status.SENDING, claimed_at__lt=stale)
        .order_by("claimed_at", "pk")
        .values_list("pk", flat=True)[:DELIVERY_SCAN]
    )
    return [*due, *stuck]


def _claimable() -> Q:
    now = timezone.now()
    due = Q(status=Letter.Status.PENDING, due_on__lte=timezone.localdate()) & _backoff_over(now)
    return due | Q(status=Letter.Status.SENDING, claimed_at__lt=now - STALE_CLAIM)


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


DELIVERY_ERRORS = (SMTPException, OSError, FaxError)
# Not the letter's fault: the database or the task's time gave out. The task fails and
# the claim, gone stale, is handed out again by the sweep.
NOT_THE_LETTERS_FAULT = (DatabaseError, SoftTimeLimitExceeded)


class TransientDeliveryError(Exception):
    """Delivery failed in a way that may succeed later (SMTP down, timeout)."""


def letter_email(
    letter: Letter, connection: BaseEmailBackend | None = None
) -> EmailMultiAlternatives:
    """The email for a letter: plain text and HTML on the letterhead, with the letter's own
    Message-ID so a re-driven delivery is recognisably the same message."""
    message = EmailMultiAlternatives(
        subject=letter.subject_line,
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


def _route_now(letter: Letter, direct_address: str) -> None:
    """Send the letter where the partner's preferences point as it leaves, not where they
    pointed when it was written: a fax number or email corrected in between, or a new
    preferred channel, reaches the letters still waiting (the outcome records the route
    used). A route that sends no letter now (a thank-you the partner has since asked to
    get as a call) leaves the letter on the route it was written for."""
    channel, status, recipient = letter_route(
        letter.provider, letter.kind, direct_address=direct_address
    )
    if status == Letter.Status.PENDING:
        letter.channel, letter.recipient = channel, recipient


def _send(
    letter: Letter, connection: BaseEmailBackend, relay: BaseEmailBackend | None = None
) -> str:
    """Put one claimed letter on its channel; returns its new status or raises one of
    DELIVERY_ERRORS. `relay` is the Direct relay's connection, None when there is none."""
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


def _record_skipped(letter: Letter) -> None:
    # Marked as a letter to an opted-out partner (or office) is when written (letter_route).
    letter.status, letter.channel, letter.recipient = Letter.Status.SKIPPED, "", ""
    _ours(letter).update(status=letter.status, channel="", recipient="")


def _record_withdrawn_copy(letter: Letter, original: int) -> None:
    from referrals.services.duplicates import DUPLICATE_WITHDRAWN

    letter.status = Letter.Status.CANCELLED
    letter.last_error = DUPLICATE_WITHDRAWN.format(original=original)
    _ours(letter).update(status=letter.status, last_error=letter.last_error)


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
    if failed:
        _reopen_task(letter)
    logger.warning(
        "letter %s delivery attempt %s failed: %s",
        letter.pk,
        letter.attempts,
        type(error).__name__,
    )
    return failed


def _reopen_task(letter: Letter) -> None:
    """A note that never arrived rekindled nothing: its task is open again, on the
    liaison's list, showing the failed note."""
    if letter.task_id:
        Task.objects.filter(pk=letter.task_id, status=Task.Status.DONE).update(
            status=Task.Status.OPEN, completed_at=None
        )


def _record_fault(letter: Letter, error: Exception) -> None:
    """The letter could not be sent for a fault of its own (an error in the app, not the
    network): every try would fail the same way, so it fails now, for a person to see,
    rather than keeping the letters of its batch claimed with it for ever. Logged with
    where it happened, but not the error's text, which may quote the letter."""
    letter.attempts += 1
    letter.status = Letter.Status.FAILED
    letter.last_error = (
        f"{type(error).__name__}: an error in the app (reported) on attempt {letter.attempts}"
    )
    _ours(letter).update(
        status=letter.status, attempts=letter.attempts, last_error=letter.last_error
    )
    _reopen_task(letter)
    logger.error(
        "letter %s could not be sent: %s, raised at\n%s",
        letter.pk,
        type(error).__name__,
        "".join(traceback.format_tb(error.__traceback__)),
    )


def letters_deliver(*, letter_ids: list[int]) -> list[Letter]:
    """Deliver a batch of letters on their channels: email over one SMTP session; fax
    through the fax backend (the default puts the PDF in the print queue); mail to the
    print queue. Each letter's outcome is committed as soon as it is known, so a worker
    killed mid-batch leaves at most the one letter in flight to be re-driven. A transient
    failure puts that letter back as pending and raises TransientDeliveryError after the
    batch (the task retries with backoff) until MAX_DELIVERY_ATTEMPTS, then marks it
    failed for a person to see; a letter that fails for a fault of its own fails at once
    (_record_fault) and the batch goes on."""
    letters = letters_claim(letter_ids=letter_ids)
    connection = get_connection()
    relay = direct.relay_connection() if direct.relay_configured() else None
    connections = [c for c in (connection, relay) if c is not None]
    # Direct addresses for the whole batch in one query (the registry, by NPI).
    addresses = direct.direct_addresses(each.provider.npi for each in letters) if relay else {}
    # Referrals marked as duplicates since their letters were written (a letter whose
    # worker died mid-send, handed out again): the office hears nothing about a copy.
    copies = _copies_of(letter.referral_id for letter in letters)
    retry = False
    try:
        for letter in letters:
            if letter.referral_id in copies:
                _record_withdrawn_copy(letter, copies[letter.referral_id])
                continue
            with _reminder_held(letter) if _is_reminder(letter) else nullcontext("") as why:
                if why:
                    _record_withdrawn_reminder(letter, why)
                    continue
                retry = _deliver_one(letter, connection, relay, addresses) or retry
    finally:
        for open_connection in connections:
            with suppress(*DELIVERY_ERRORS):
                open_connection.close()
    if retry:
        raise TransientDeliveryError(",".join(str(letter.pk) for letter in letters))
    return letters


def _deliver_one(
    letter: Letter,
    connection: BaseEmailBackend,
    relay: BaseEmailBackend | None,
    addresses: dict[str, str],
) -> bool:
    """Send one claimed letter and record the outcome; returns whether it is to be tried
    again (a transient failure short of the last attempt)."""
    connections = [c for c in (connection, relay) if c is not None]
    if letter.recipient_opted_out:
        # The partner or their office opted out (or the partner was merged into a record
        # that had) after the letter was written and before it was due: it is not sent.
        _record_skipped(letter)
        return False
    try:
        _route_now(letter, addresses.get(letter.provider.npi, ""))
        outcome = _send(letter, connection, relay)
    except DELIVERY_ERRORS as error:
        retry = not _record_failure(letter, error)
        # A broken session is not reused for the next letter.
        for open_connection in connections:
            with suppress(*DELIVERY_ERRORS):
                open_connection.close()
        return retry
    except NOT_THE_LETTERS_FAULT:
        raise
    except Exception as error:
        # One letter's fault must not hold the letters of its batch. It may have left the
        # session mid-message: the next letter opens a new one.
        _record_fault(letter, error)
        for open_connection in connections:
            with suppress(*DELIVERY_ERRORS):
                open_connection.close()
        return False
    _record_outcome(letter, outcome)
    return False


def _copies_of(referral_ids: Iterable[int | None]) -> dict[int, int]:
    """{referral id: the referral it repeats} for those of these marked as duplicates."""
    from referrals.models import Referral

    wanted = {pk for pk in referral_ids if pk is not None}
    if not wanted:
        return {}
    marked = Referral.objects.filter(pk__in=wanted, duplicate_of__isnull=False)
    return {pk: original for pk, original in marked.values_list("pk", "duplicate_of") if original}


def _is_reminder(letter: Letter) -> bool:
    return letter.kind == LetterTemplate.Kind.EVENT_REMINDER and letter.invitation_id is not None


@contextmanager
def _reminder_held(letter: Letter) -> Iterator[str]:
    """A transaction around one event reminder's send, holding its event's and invitation's
    rows (FOR SHARE) and the letter's own; yields why it is no longer to be sent ("" when
    it still is): the event was cancelled, moved since it was written, or set to send no
    reminders, or the invitee declined. Each of those withdraws the reminders waiting, but
    not one a worker had already claimed.

    Checked here, just before the send, not once for the batch: a change saved while the
    letters before it were being sent is seen. And held through the send and its outcome:
    a cancel (which locks the event FOR UPDATE), an edit or an RSVP (which update those
    rows) that comes meanwhile waits for the reminder to be recorded as sent, and a cancel
    then sends its notice after it; one that came first is waited for here and read.
    Either way no reminder leaves after the change is saved. Rows in the order the cancel
    takes them (event, then letters): no deadlock. Two short queries per reminder, which
    a change needs answered at its own moment, not the batch's."""
    with transaction.atomic():
        event_table, invitation_table = Event._meta.db_table, Invitation._meta.db_table
        columns = "e.cancelled_at, e.schedule_version, e.remind_days_before, i.rsvp"
        sql = (
            f"SELECT {columns} FROM {event_table} e "  # noqa: S608 (model tables)
            f"JOIN {invitation_table} i ON i.event_id = e.id WHERE i.id = %s"
        )
        if db_connection.vendor == "postgresql":
            # SHARE: reminders of one event sent by two workers do not wait for each other.
            sql += " FOR SHARE OF e, i"
        with db_connection.cursor() as cursor:
            cursor.execute(sql, [letter.invitation_id])
            row = cursor.fetchone()
        list(Letter.objects.select_for_update().filter(pk=letter.pk).values_list("pk"))
        yield _withdrawn_because(letter, row)


def _withdrawn_because(letter: Letter, row: tuple[Any, ...] | None) -> str:
    if row is None:
        # Not while the letter exists (it goes with its invitation); nobody to remind.
        return EVENT_CANCELLED
    cancelled_at, schedule_version, remind_days_before, rsvp = row
    if cancelled_at is not None:
        return EVENT_CANCELLED
    if letter.sequence < schedule_version:
        return SUPERSEDED
    if rsvp == Invitation.Rsvp.NO:
        return NOT_COMING
    if not remind_days_before:
        return NO_REMINDERS
    return ""


def _record_withdrawn_reminder(letter: Letter, why: str) -> None:
    letter.status, letter.last_error = Letter.Status.CANCELLED, why
    _ours(letter).update(status=letter.status, last_error=letter.last_error)


def letter_deliver(*, letter_id: int) -> Letter | None:
    """Deliver one letter (see letters_deliver). Returns it, or None if it was not due or
    another worker holds it."""
    delivered = letters_deliver(letter_ids=[letter_id])
    return delivered[0] if delivered else None


@transaction.atomic
def letter_withdraw_opted_out(*, letter: Letter) -> Letter:
    """A letter waiting in the print and fax queue for a partner who, or whose office, has
    opted out of letters since it was queued is not sent: it is marked skipped, as
    delivery marks one still pending. A letter whose partner still takes letters stays."""
    locked = (
        Letter.objects.select_for_update(of=("self",))
        .select_related("provider__organization")
        .get(pk=letter.pk)
    )
    if locked.status == Letter.Status.PRINT_QUEUE and locked.recipient_opted_out:
        locked.status, locked.channel, locked.recipient = Letter.Status.SKIPPED, "", ""
        locked.save(update_fields=["status", "channel", "recipient"])
    return locked


# What a person may do with a letter that failed for good (letter_failed_resolve), as its
# LetterEvent names it.
FAILED_RETRY, FAILED_MAIL, FAILED_LET_GO = "retry", "mail", "let_go"


@transaction.atomic
def letter_failed_resolve(*, letter: Letter, do: str, actor: User) -> Letter:
    """A person deals with a letter that failed for good: try it again on its channel (the
    next sweep sends it, to the partner's address as it is now, with its attempts counted
    afresh), print and mail it instead (into the print and fax queue), or let it go
    (cancelled, saying who). Each is kept as a LetterEvent with who, when and the failure
    it answered, shown on the letter's page. A letter no longer failed (a colleague dealt
    with it first) is left as it is: raises ValidationError saying what it is now."""
    locked = Letter.objects.select_for_update().get(pk=letter.pk)
    if locked.status != Letter.Status.FAILED:
        raise ValidationError(
            f"This letter was already dealt with: it is now “{locked.get_status_display()}”."
        )
    failure = locked.last_error
    fields = ["status", "last_error", "claimed_at"]
    locked.claimed_at = None
    if do == FAILED_RETRY:
        locked.status, locked.attempts, locked.due_on = (
            Letter.Status.PENDING,
            0,
            timezone.localdate(),
        )
        locked.last_error = ""
        fields += ["attempts", "due_on"]
    elif do == FAILED_MAIL:
        locked.status, locked.recipient = Letter.Status.PRINT_QUEUE, ""
        locked.channel = Letter.Channel.MAIL
        locked.last_error = f"{locked.last_error}; mailed instead ({person(actor)})"[:300]
        fields += ["channel", "recipient"]
    elif do == FAILED_LET_GO:
        locked.status = Letter.Status.CANCELLED
        locked.last_error = f"Let go by {person(actor)} after it failed: {locked.last_error}"[:300]
    else:
        raise ValueError(f"unknown action {do!r}")
    locked.save(update_fields=fields)
    LetterEvent.objects.create(letter=locked, action=do, actor=actor, failure=failure)
    return locked


@transaction.atomic
def letter_mark_printed(*, letter: Letter, actor: User) -> Letter:
    """A person printed and mailed, or faxed, a letter from the print queue."""
    # With its partner and office, which the queue's redrawn row names.
    locked = (
        Letter.objects.select_for_update(of=("self",))
        .select_related("provider__organization")
        .get(pk=letter.pk)
    )
    if locked.status == Letter.Status.PRINT_QUEUE:
        locked.status = Letter.Status.SENT
        locked.sent_at = timezone.now()
        locked.printed_by = actor
        locked.save(update_fields=["status", "sent_at", "printed_by"])
    return locked
