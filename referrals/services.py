"""The referral workflow: logging a referral and moving it through its pipeline."""

from __future__ import annotations

from datetime import datetime

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from core.enqueue import enqueue_on_commit
from referrals.models import Referral, ReferralEvent, Status


def _record_event(
    *,
    referral: Referral,
    from_status: str,
    to_status: str,
    actor: AbstractBaseUser | None,
    at: datetime,
    note: str = "",
) -> ReferralEvent:
    """The single writer of referral history."""
    return ReferralEvent.objects.create(
        referral=referral,
        from_status=from_status,
        to_status=to_status,
        actor=actor,
        at=at,
        note=note,
    )


@transaction.atomic
def referral_log(*, referral: Referral, actor: AbstractBaseUser | None) -> Referral:
    """Save a new referral (built by a form or an import) with its first history row."""
    referral.status = Status.RECEIVED
    referral.created_by = actor
    referral.full_clean()
    referral.save()
    _record_event(
        referral=referral,
        from_status="",
        to_status=Status.RECEIVED,
        actor=actor,
        at=referral.received_at,
    )
    _close_the_loop(referral=referral, status=Status.RECEIVED)
    return referral


def check_referral_transition(
    *,
    referral: Referral,
    to_status: str,
    decline_reason: str = "",
    appointment_at: datetime | None = None,
) -> None:
    """May this referral move to `to_status` with these details? Raises ValidationError."""
    referral.check_transition(to_status)
    if to_status == Status.DECLINED and not decline_reason.strip():
        raise ValidationError({"decline_reason": "Say why the referral is declined."})
    if to_status == Status.SCHEDULED and appointment_at is None:
        raise ValidationError({"appointment_at": "Give the appointment date and time."})


@transaction.atomic
def referral_transition(
    *,
    referral: Referral,
    to_status: str,
    actor: AbstractBaseUser | None,
    note: str = "",
    decline_reason: str = "",
    appointment_at: datetime | None = None,
    at: datetime | None = None,
) -> Referral:
    """Move a referral to its next status and record the event. The row is locked first so
    two coordinators clicking at once cannot both move it from the same status."""
    locked = Referral.objects.select_for_update().get(pk=referral.pk)
    check_referral_transition(
        referral=locked,
        to_status=to_status,
        decline_reason=decline_reason,
        appointment_at=appointment_at,
    )
    at = at or timezone.now()
    from_status = locked.status
    locked.status = to_status
    fields = ["status", "updated_at"]
    if to_status == Status.DECLINED:
        locked.decline_reason = decline_reason.strip()
        fields.append("decline_reason")
    if to_status == Status.SCHEDULED:
        locked.appointment_at = appointment_at
        fields.append("appointment_at")
    if to_status == Status.SEEN:
        locked.seen_at = at
        fields.append("seen_at")
    if to_status == Status.CLOSED:
        locked.closed_at = at
        fields.append("closed_at")
    locked.save(update_fields=fields)
    _record_event(
        referral=locked,
        from_status=from_status,
        to_status=to_status,
        actor=actor,
        at=at,
        note=note,
    )
    _close_the_loop(referral=locked, status=to_status)
    return locked


def _close_the_loop(*, referral: Referral, status: str) -> None:
    """Tell the referrer (acknowledgment, scheduled, thank-you, report cover letter). Only
    after commit: a rolled-back change must not message anybody. If this enqueue is lost,
    the beat sweep finds the referral by its event and does the same work."""
    from outreach.services import LOOP_MESSAGES
    from outreach.tasks import prepare_loop_message

    if referral.direction == Referral.Direction.INBOUND and status in LOOP_MESSAGES:
        enqueue_on_commit(prepare_loop_message, referral.pk, status)
