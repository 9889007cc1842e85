"""Who holds a referral: claiming an unassigned one and handing one to someone."""

from __future__ import annotations

from datetime import datetime

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from referrals.models import Referral
from referrals.services.consult_reports import consult_report_reminders_follow
from referrals.services.history import _record_assignments


@transaction.atomic
def referral_claim(*, referral_id: int, user: User) -> bool:
    """Take an unassigned referral. A conditional update, so of two coordinators clicking
    at once exactly one wins; returns whether this user did."""
    now = timezone.now()
    claimed = Referral.objects.filter(pk=referral_id, assigned_to__isnull=True).update(
        assigned_to=user, updated_at=now
    )
    if claimed != 1:
        return False
    _record_assignments(
        moves=[(referral_id, None)], to_assignee=user, actor=user, at=now, note="Claimed"
    )
    consult_report_reminders_follow(referral_ids=[referral_id], assignee_id=user.pk)
    return True


@transaction.atomic
def referral_assign(
    *,
    referral: Referral,
    assignee: User | None,
    actor: User | None = None,
    version: datetime | None = None,
) -> bool:
    """Hand a referral to someone (or to nobody). With `version` (the updated_at the user
    saw) the change applies only if nobody changed the referral since; returns whether it
    applied. The row is locked so the previous holder written to the history is the one
    really replaced."""
    current = (
        Referral.objects.select_for_update()
        .filter(pk=referral.pk)
        .only("pk", "assigned_to", "updated_at")
        .first()
    )
    if current is None or (version is not None and current.updated_at != version):
        return False
    new_id = assignee.pk if assignee is not None else None
    if current.assigned_to_id == new_id:
        return True
    now = timezone.now()
    Referral.objects.filter(pk=referral.pk).update(assigned_to=assignee, updated_at=now)
    _record_assignments(
        moves=[(referral.pk, current.assigned_to_id)], to_assignee=assignee, actor=actor, at=now
    )
    consult_report_reminders_follow(referral_ids=[referral.pk], assignee_id=new_id)
    return True
