"""Bulk actions on the work queue: assigning and moving many referrals at once."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.utils import timezone

from core.text import strip_invisible
from referrals.models import Referral, Status
from referrals.services.consult_reports import consult_report_reminders_follow
from referrals.services.history import _record_assignments
from referrals.services.workflow import referral_transition

# Moves a bulk action may make: the ones whose detail can be the same for every selected row
# (a decline reason is asked once for the batch; an appointment time is different for every
# patient, so scheduling stays one by one).
BULK_STATUSES = (
    Status.ACCEPTED,
    Status.DECLINED,
    Status.ON_HOLD,
    Status.CANCELLED,
    Status.CLOSED,
)


@dataclass
class BulkResult:
    applied: list[int] = field(default_factory=list)
    # Referral id → why it was left alone.
    skipped: dict[int, str] = field(default_factory=dict)


# Why a selected row was left alone (the queue groups its message by these).
SKIP_NOT_YOURS = "not found or not yours to change"
SKIP_CHANGED = "changed by someone else since you loaded the page"


@transaction.atomic
def referral_bulk_apply(
    *,
    queryset: models.QuerySet[Referral],
    versions: dict[int, datetime],
    actor: User,
    assign_to: User | None = None,
    unassign: bool = False,
    to_status: str = "",
    reason: str = "",
    note: str = "",
) -> BulkResult:
    """Assign and/or move the selected referrals in one transaction.

    `versions` maps each selected id to the updated_at the user saw when the page loaded:
    a row changed since then is skipped and reported, never overwritten (optimistic
    concurrency). `queryset` is what the user may change; ids outside it are skipped. Rows
    are locked in id order so two bulk actions over overlapping rows cannot deadlock.
    Every move goes through referral_transition, so each row gets its event and its
    message to the referrer; every change of coordinator gets its event too. `reason` is
    why they are declined or cancelled (required for both) or what a hold waits for
    (optional)."""
    result = BulkResult()
    if to_status and to_status not in BULK_STATUSES:
        raise ValidationError({"to_status": "That move needs details: make it on each referral."})
    reason = strip_invisible(reason).strip()
    if to_status == Status.DECLINED and not reason:
        raise ValidationError({"reason": "Say why the selected referrals are declined."})
    if to_status == Status.CANCELLED and not reason:
        raise ValidationError({"reason": "Say why the selected referrals are cancelled."})
    locked = {
        r.pk: r
        for r in queryset.select_for_update(of=("self",))
        .filter(pk__in=list(versions))
        .order_by("pk")
        .only("pk", "status", "updated_at", "assigned_to", "direction", "contacted_at")
    }
    fresh: list[Referral] = []
    for pk, seen_version in sorted(versions.items()):
        referral = locked.get(pk)
        if referral is None:
            result.skipped[pk] = SKIP_NOT_YOURS
        elif referral.updated_at != seen_version:
            result.skipped[pk] = SKIP_CHANGED
        elif to_status and to_status not in referral.allowed_transitions():
            result.skipped[pk] = referral.transition_refusal(to_status)
        else:
            fresh.append(referral)
    if not fresh:
        return result
    ids = [r.pk for r in fresh]
    if assign_to is not None or unassign:
        now = timezone.now()
        new_id = None if unassign or assign_to is None else assign_to.pk
        moves = [(r.pk, r.assigned_to_id) for r in fresh if r.assigned_to_id != new_id]
        Referral.objects.filter(pk__in=[pk for pk, _ in moves]).update(
            assigned_to_id=new_id, updated_at=now
        )
        _record_assignments(
            moves=moves,
            to_assignee=None if unassign else assign_to,
            actor=actor,
            at=now,
            note="Bulk action",
        )
        consult_report_reminders_follow(referral_ids=[pk for pk, _ in moves], assignee_id=new_id)
    if to_status:
        # One service call per row on purpose: each row gets its event and its side
        # effects (the letter to the referrer), exactly as when moved one by one.
        for referral in fresh:
            referral_transition(
                referral=referral,
                to_status=to_status,
                actor=actor,
                note=note,
                decline_reason=reason if to_status == Status.DECLINED else "",
                hold_reason=reason if to_status == Status.ON_HOLD else "",
                cancel_reason=reason if to_status == Status.CANCELLED else "",
            )
    result.applied = ids
    return result
