"""Outbound referrals' consult reports: recording one received, reminding when overdue."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from referrals.models import Referral
from referrals.models.pipeline import REFERRAL_IN_STATUS


def check_referral_consult_report(*, referral: Referral) -> None:
    """May this referral's consult report be recorded as received? Raises ValidationError."""
    if referral.direction != Referral.Direction.OUTBOUND:
        raise ValidationError("Only a referral we sent out has a consult report to receive.")
    if not referral.consult_report_due:
        # The specialist writes the report after seeing the patient: earlier, a click is a
        # mistake, and it would also silence the reminder to chase the real one.
        raise ValidationError(
            "A consult report comes back only after the specialist has seen the patient, "
            f"and this is {REFERRAL_IN_STATUS[referral.status]}."
        )


@transaction.atomic
def referral_record_consult_report(
    *, referral: Referral, actor: User | None, at: datetime | None = None
) -> bool:
    """The specialist's consult report came back for an outbound referral. Recorded once
    (a second click changes nothing); the reminder task for it, if any, is done."""
    from outreach.models import Task

    check_referral_consult_report(referral=referral)
    from referrals.services.history import _record_edit

    at = at or timezone.now()
    recorded = Referral.objects.filter(pk=referral.pk, report_received_at__isnull=True).update(
        report_received_at=at, updated_at=at
    )
    if recorded:
        Task.objects.filter(
            referral=referral, kind=Task.Kind.CONSULT_REPORT, status=Task.Status.OPEN
        ).update(status=Task.Status.DONE, completed_at=at)
        _record_edit(
            referral_id=referral.pk,
            changes=[{"field": "Consult report", "old": "Not back yet", "new": "Received"}],
            actor=actor,
            at=at,
        )
    return recorded == 1


@transaction.atomic
def consult_report_reminders_create(*, now: datetime | None = None) -> int:
    """One reminder task per outbound referral whose consult report is overdue, for a
    patient seen within CONSULT_REPORT_REMINDER_WINDOW_DAYS: referrals entered as history
    (seen months or years ago) are not chased, or entering a year of them would make a
    reminder for each the first night. Safe to run any number of times: the unique
    (referral, kind) constraint makes repeats no-ops."""
    from django.conf import settings

    from outreach.models import Task

    now = now or timezone.now()
    waiting = (
        Referral.objects.awaiting_consult_report(
            seen_before=now - timedelta(days=settings.CONSULT_REPORT_REMINDER_DAYS),
            seen_since=now - timedelta(days=settings.CONSULT_REPORT_REMINDER_WINDOW_DAYS),
        )
        .exclude(tasks__kind=Task.Kind.CONSULT_REPORT)
        .values_list(
            "pk",
            "assigned_to_id",
            "assigned_to__is_active",
            "created_by_id",
            "created_by__is_active",
        )
    )
    today = timezone.localdate(now)
    reminders = [
        Task(
            kind=Task.Kind.CONSULT_REPORT,
            title=f"Chase the consult report for referral #{pk}",
            due_on=today,
            referral_id=pk,
            # Someone still here: a deactivated coordinator's reminder would be read by
            # nobody, where an unassigned one is in every coordinator's list.
            assignee_id=(assignee if assignee_active else creator if creator_active else None),
        )
        for pk, assignee, assignee_active, creator, creator_active in waiting
    ]
    created = Task.objects.bulk_create(reminders, ignore_conflicts=True)
    return len(created)


def consult_report_reminders_withdraw(*, referral_id: int) -> int:
    """A referral logged as sent out was corrected to one received: no specialist owes a
    consult report for it, so its open reminder to chase one is withdrawn. Returns how
    many."""
    from outreach.models import Task

    return (
        Task.objects.open()
        .filter(referral_id=referral_id, kind=Task.Kind.CONSULT_REPORT)
        .update(status=Task.Status.CANCELLED)
    )


def consult_report_reminders_follow(*, referral_ids: list[int], assignee_id: int | None) -> int:
    """These referrals were handed to someone (claimed, assigned, in bulk or by an edit):
    their open reminders to chase a consult report go to them, who now works the referral,
    instead of staying on the list of the one who did. Given back to nobody (None), the
    reminders are nobody's too, on every coordinator's list (Task.for_user) until someone
    takes the referral. Returns how many moved."""
    from outreach.models import Task

    return (
        Task.objects.open()
        .filter(referral_id__in=referral_ids, kind=Task.Kind.CONSULT_REPORT)
        .exclude(assignee_id=assignee_id)
        .update(assignee_id=assignee_id)
    )
