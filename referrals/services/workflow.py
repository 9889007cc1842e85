"""The referral workflow: logging a referral and moving it through its pipeline."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from core.enqueue import enqueue_on_commit
from core.text import strip_invisible
from referrals.models import Inquiry, Referral, Status
from referrals.services.history import _record_event

# Where a referral's move puts its inquiry in the funnel; other moves leave it alone.
FUNNEL_BY_STATUS: dict[str, str] = {
    Status.SCHEDULED: Inquiry.Status.SCHEDULED,
    Status.SEEN: Inquiry.Status.SEEN_NEW_PATIENT,
    Status.DECLINED: Inquiry.Status.LOST,
    Status.CANCELLED: Inquiry.Status.LOST,
    # Closed without the patient seen (after a no-show): lost. An inquiry already seen as
    # a new patient stays so (_inquiry_follow never moves one backwards).
    Status.CLOSED: Inquiry.Status.LOST,
}


def _inquiry_follow(*, referral: Referral, from_status: str, to_status: str, at: datetime) -> None:
    """Keep a referral's inquiry at the referral's stage. Never backwards: a patient seen
    stays a new patient seen, whatever happens to the referral after."""
    stage = FUNNEL_BY_STATUS.get(to_status)
    if stage is None:
        return
    inquiries = Inquiry.objects.filter(referral=referral).exclude(
        status=Inquiry.Status.SEEN_NEW_PATIENT
    )
    if stage == Inquiry.Status.SCHEDULED:
        inquiries.update(status=stage, scheduled_at=at)
    elif stage == Inquiry.Status.SEEN_NEW_PATIENT:
        inquiries.update(status=stage, seen_at=at)
    else:
        # Lost once: closing a declined or cancelled referral keeps the day it was lost.
        inquiries.exclude(status=Inquiry.Status.LOST).update(
            status=stage,
            lost_at=at,
            missed_visit=to_status == Status.CLOSED and from_status == Status.NO_SHOW,
        )


def _decided(
    referral: Referral, to_status: str, booked_before: datetime | None
) -> list[dict[str, str]]:
    """What a move decided, for its history row: the reason the office was given, the
    appointment booked (and the one it replaced)."""
    reasons: dict[str, str] = {
        Status.DECLINED: referral.decline_reason,
        Status.CANCELLED: referral.cancel_reason,
        Status.ON_HOLD: referral.hold_reason,
    }
    if reasons.get(to_status):
        return [{"field": "Reason", "new": reasons[to_status]}]
    if to_status == Status.SCHEDULED and referral.appointment_at:
        detail = {"field": "Appointment", "new": _moment(referral.appointment_at)}
        if booked_before and booked_before != referral.appointment_at:
            detail["old"] = _moment(booked_before)
        return [detail]
    return []


def _moment(value: datetime) -> str:
    local = timezone.localtime(value)
    return f"{local:%b} {local.day}, {local.year} {local:%-I:%M %p}"


@transaction.atomic
def referral_log(*, referral: Referral, actor: User | None) -> Referral:
    """Save a new referral (built by a form or an import) with its first history row."""
    referral.status = Status.RECEIVED
    referral.created_by = actor
    if referral.direction == Referral.Direction.OUTBOUND:
        referral.in_network = referral.provider.in_network
    else:
        referral.in_network = None
        referral.out_of_network_reason = ""
    referral.full_clean()
    referral.save()
    if referral.direction == Referral.Direction.INBOUND:
        # A referred patient enters the same new-patient funnel as every other source.
        Inquiry.objects.create(
            source=Inquiry.Source.PARTNER_REFERRAL,
            referral=referral,
            received_at=referral.received_at,
            created_by=actor,
        )
    _record_event(
        referral_id=referral.pk,
        from_status="",
        to_status=Status.RECEIVED,
        actor=actor,
        at=referral.received_at,
    )
    _close_the_loop(referral=referral, status=Status.RECEIVED)
    return referral


def _seen_at(referral: Referral, at: datetime, *, told: bool) -> datetime:
    """When the patient was seen: the moment given, else the appointment when it is marked
    on a later day (the thank-you letter says "we saw them on" that day, not the day a
    coordinator caught up), else now."""
    appointment = referral.appointment_at
    if told or appointment is None:
        return at
    if timezone.localdate(appointment) < timezone.localdate(at):
        return appointment
    return at


def referral_transition_not_yet(
    *, referral: Referral, to_status: str, at: datetime | None = None
) -> str:
    """Why this referral may not move to `to_status` yet (at `at`, now by default) because
    of its appointment time, or "" if the time allows it. The page uses it to hold back a
    step's button and say why."""
    if referral.appointment_at is None:
        return ""
    at = at or timezone.now()
    if to_status == Status.SEEN:
        # The referring office is sent "seen on <day>" at once: a click on the wrong row
        # days before the appointment must not tell them so. Patients come early, so the
        # whole day counts.
        appointment_day = timezone.localdate(referral.appointment_at)
        if appointment_day > timezone.localdate(at):
            return (
                f"The appointment is on {appointment_day:%b %-d, %Y}: the patient can be "
                "marked seen from that day on. If they came in earlier, schedule the day "
                "they came first."
            )
    if to_status == Status.NO_SHOW and referral.appointment_at > at:
        # A missed appointment is only known once its time has passed, and the referring
        # office is sent a letter about it.
        appointment = timezone.localtime(referral.appointment_at)
        return (
            f"The appointment is on {appointment:%b %-d, %Y at %-I:%M %p}: a no-show can be "
            "marked once that time has passed."
        )
    return ""


def check_referral_transition(
    *,
    referral: Referral,
    to_status: str,
    decline_reason: str = "",
    appointment_at: datetime | None = None,
    cancel_reason: str = "",
    at: datetime | None = None,
) -> None:
    """May this referral move to `to_status` (at `at`, now by default) with these details?
    Raises ValidationError."""
    referral.check_transition(to_status)
    not_yet = referral_transition_not_yet(referral=referral, to_status=to_status, at=at)
    if not_yet:
        raise ValidationError(not_yet)
    # Checked as it will be stored: a reason of invisible characters only is no reason
    # (the office's letter would say "The reason: " and nothing).
    if to_status == Status.DECLINED and not strip_invisible(decline_reason).strip():
        raise ValidationError({"decline_reason": "Say why the referral is declined."})
    if to_status == Status.CANCELLED and not strip_invisible(cancel_reason).strip():
        raise ValidationError({"cancel_reason": "Say why the referral is cancelled."})
    if to_status == Status.SCHEDULED and appointment_at is None:
        raise ValidationError({"appointment_at": "Give the appointment date and time."})
    if to_status == Status.SCHEDULED and appointment_at is not None:
        # The referring office is told this date at once: catch a mistyped year first.
        if appointment_at < referral.received_at:
            received = timezone.localtime(referral.received_at)
            raise ValidationError(
                {
                    "appointment_at": "The appointment is before the referral was received "
                    f"({received:%b %-d, %Y at %-I:%M %p}): check the date and time."
                }
            )
        if appointment_at > timezone.now() + timedelta(days=366):
            raise ValidationError(
                {"appointment_at": "The appointment is more than a year away: check the year."}
            )
    if (
        to_status == Status.SCHEDULED
        and referral.status == Status.SCHEDULED
        and appointment_at == referral.appointment_at
    ):
        # Rebooking the same time would change nothing but still send the referring office
        # an "update" notice.
        raise ValidationError(
            {"appointment_at": "It is already scheduled for that time; give the new one."}
        )


@transaction.atomic
def referral_transition(
    *,
    referral: Referral,
    to_status: str,
    actor: User | None,
    note: str = "",
    decline_reason: str = "",
    appointment_at: datetime | None = None,
    at: datetime | None = None,
    hold_reason: str = "",
    cancel_reason: str = "",
    version: datetime | None = None,
) -> Referral:
    """Move a referral to its next status and record the event. The row is locked first so
    two coordinators clicking at once cannot both move it from the same status. With
    `version` (the updated_at the user's page showed) nothing moves if the referral changed
    since: ValidationError(code="stale"), so a step taken on an old page (cancelling what
    a colleague has just booked) does not silently undo their change."""
    locked = Referral.objects.select_for_update().get(pk=referral.pk)
    if version is not None and locked.updated_at != version:
        raise ValidationError(
            f"Someone changed this referral after you opened it (it is now "
            f"{locked.status_label}; see its history), so this step was not taken. Check "
            "it below and take the step again if it still applies.",
            code="stale",
        )
    check_referral_transition(
        referral=locked,
        to_status=to_status,
        decline_reason=decline_reason,
        appointment_at=appointment_at,
        cancel_reason=cancel_reason,
        at=at,
    )
    told = at is not None
    at = at or timezone.now()
    from_status = locked.status
    booked_before = locked.appointment_at
    locked.status = to_status
    fields = ["status", "updated_at"]
    if to_status == Status.DECLINED:
        locked.decline_reason = strip_invisible(decline_reason).strip()
        fields.append("decline_reason")
    if to_status == Status.CANCELLED:
        locked.cancel_reason = strip_invisible(cancel_reason).strip()
        fields.append("cancel_reason")
    if to_status == Status.ON_HOLD:
        # Each hold says what it waits for (or nothing): an earlier hold's reason is not
        # carried over.
        locked.hold_reason = strip_invisible(hold_reason).strip()
        fields.append("hold_reason")
    if to_status == Status.SCHEDULED:
        locked.appointment_at = appointment_at
        fields.append("appointment_at")
    if to_status == Status.SEEN:
        locked.seen_at = _seen_at(locked, at, told=told)
        fields.append("seen_at")
    if to_status == Status.CLOSED:
        locked.closed_at = at
        fields.append("closed_at")
    if locked.contacted_at is None and from_status == Status.RECEIVED:
        # The first answer to a new referral is its first contact: see Referral.contacted_at.
        locked.contacted_at = at
        fields.append("contacted_at")
    locked.save(update_fields=fields)
    if to_status == Status.REPORT_SENT and locked.direction == Referral.Direction.OUTBOUND:
        # For a referral we sent out, this step is the specialist's report coming back.
        from referrals.services.consult_reports import referral_record_consult_report

        referral_record_consult_report(referral=locked, actor=actor, at=at)
        locked.refresh_from_db(fields=["report_received_at", "updated_at"])
    _record_event(
        referral_id=locked.pk,
        from_status=from_status,
        to_status=to_status,
        actor=actor,
        at=at,
        note=note,
        details=_decided(locked, to_status, booked_before),
    )
    if locked.direction == Referral.Direction.INBOUND:
        _inquiry_follow(referral=locked, from_status=from_status, to_status=to_status, at=at)
    if from_status == Status.ON_HOLD:
        from outreach.services.loop import hold_notices_withdraw

        hold_notices_withdraw(referral_id=locked.pk)
    if from_status == Status.SCHEDULED and to_status != Status.SCHEDULED:
        from outreach.services.loop import scheduled_notices_withdraw

        scheduled_notices_withdraw(referral_id=locked.pk, status_label=locked.status_label.lower())
    _close_the_loop(referral=locked, status=to_status)
    return locked


def _close_the_loop(*, referral: Referral, status: str) -> None:
    """Tell the referrer (acknowledgment, scheduled, thank-you, report cover letter). Only
    after commit: a rolled-back change must not message anybody. If this enqueue is lost,
    the beat sweep finds the referral by its event and does the same work."""
    from outreach.services.loop import LOOP_MESSAGES
    from outreach.tasks import prepare_loop_message

    if referral.direction == Referral.Direction.INBOUND and status in LOOP_MESSAGES:
        enqueue_on_commit(prepare_loop_message, referral.pk, status)
