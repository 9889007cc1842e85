"""The referral workflow: logging a referral and moving it through its pipeline."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.utils import dateformat, timezone
from django.utils.text import capfirst

from audit.services import PATIENT_FIELDS
from core.enqueue import enqueue_on_commit
from core.meta import own_field
from referrals.models import Inquiry, Referral, ReferralEvent, Status

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


def _record_event(
    *,
    referral_id: int,
    actor: User | None,
    at: datetime,
    from_status: str = "",
    to_status: str = "",
    note: str = "",
) -> ReferralEvent:
    """The single writer of referral history: a status move."""
    return ReferralEvent.objects.create(
        referral_id=referral_id,
        kind=ReferralEvent.Kind.STATUS,
        from_status=from_status,
        to_status=to_status,
        actor=actor,
        at=at,
        note=note,
    )


def _record_assignments(
    *,
    moves: list[tuple[int, int | None]],
    to_assignee: User | None,
    actor: User | None,
    at: datetime,
    note: str = "",
) -> None:
    """History of who holds a referral: one event per (referral id, previous assignee id)
    in `moves`, written in one query."""
    ReferralEvent.objects.bulk_create(
        ReferralEvent(
            referral_id=referral_id,
            kind=ReferralEvent.Kind.ASSIGNMENT,
            from_assignee_id=from_id,
            to_assignee=to_assignee,
            actor=actor,
            at=at,
            note=note,
        )
        for referral_id, from_id in moves
    )


def _record_edit(
    *,
    referral_id: int,
    changes: list[dict[str, str | None]],
    actor: User | None,
    at: datetime,
) -> ReferralEvent:
    return ReferralEvent.objects.create(
        referral_id=referral_id,
        kind=ReferralEvent.Kind.EDIT,
        changes=changes,
        actor=actor,
        at=at,
    )


# Where a referral's move puts its inquiry in the funnel; other moves leave it alone.
FUNNEL_BY_STATUS: dict[str, str] = {
    Status.SCHEDULED: Inquiry.Status.SCHEDULED,
    Status.SEEN: Inquiry.Status.SEEN_NEW_PATIENT,
    Status.DECLINED: Inquiry.Status.LOST,
    Status.CANCELLED: Inquiry.Status.LOST,
}


def _inquiry_follow(*, referral: Referral, to_status: str, at: datetime) -> None:
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
        inquiries.update(status=stage, lost_at=at)


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


def check_referral_transition(
    *,
    referral: Referral,
    to_status: str,
    decline_reason: str = "",
    appointment_at: datetime | None = None,
    cancel_reason: str = "",
) -> None:
    """May this referral move to `to_status` with these details? Raises ValidationError."""
    referral.check_transition(to_status)
    if to_status == Status.DECLINED and not decline_reason.strip():
        raise ValidationError({"decline_reason": "Say why the referral is declined."})
    if to_status == Status.CANCELLED and not cancel_reason.strip():
        raise ValidationError({"cancel_reason": "Say why the referral is cancelled."})
    if to_status == Status.SCHEDULED and appointment_at is None:
        raise ValidationError({"appointment_at": "Give the appointment date and time."})
    if to_status == Status.SCHEDULED and appointment_at is not None:
        # The referring office is told this date at once: catch a mistyped year first.
        received_on = timezone.localdate(referral.received_at)
        if timezone.localdate(appointment_at) < received_on:
            raise ValidationError(
                {
                    "appointment_at": "The appointment is before the referral was received "
                    f"({received_on:%b %-d, %Y}): check the date."
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
) -> Referral:
    """Move a referral to its next status and record the event. The row is locked first so
    two coordinators clicking at once cannot both move it from the same status."""
    locked = Referral.objects.select_for_update().get(pk=referral.pk)
    check_referral_transition(
        referral=locked,
        to_status=to_status,
        decline_reason=decline_reason,
        appointment_at=appointment_at,
        cancel_reason=cancel_reason,
    )
    at = at or timezone.now()
    from_status = locked.status
    locked.status = to_status
    fields = ["status", "updated_at"]
    if to_status == Status.DECLINED:
        locked.decline_reason = decline_reason.strip()
        fields.append("decline_reason")
    if to_status == Status.CANCELLED:
        locked.cancel_reason = cancel_reason.strip()
        fields.append("cancel_reason")
    if to_status == Status.ON_HOLD:
        # Each hold says what it waits for (or nothing): an earlier hold's reason is not
        # carried over.
        locked.hold_reason = hold_reason.strip()
        fields.append("hold_reason")
    if to_status == Status.SCHEDULED:
        locked.appointment_at = appointment_at
        fields.append("appointment_at")
    if to_status == Status.SEEN:
        locked.seen_at = at
        fields.append("seen_at")
    if to_status == Status.CLOSED:
        locked.closed_at = at
        fields.append("closed_at")
    if locked.contacted_at is None and from_status == Status.RECEIVED:
        # The first answer to a new referral is its first contact: see Referral.contacted_at.
        locked.contacted_at = at
        fields.append("contacted_at")
    locked.save(update_fields=fields)
    _record_event(
        referral_id=locked.pk,
        from_status=from_status,
        to_status=to_status,
        actor=actor,
        at=at,
        note=note,
    )
    if locked.direction == Referral.Direction.INBOUND:
        _inquiry_follow(referral=locked, to_status=to_status, at=at)
    if from_status == Status.ON_HOLD:
        from outreach.services.loop import hold_notices_withdraw

        hold_notices_withdraw(referral_id=locked.pk)
    _close_the_loop(referral=locked, status=to_status)
    return locked


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
    return True


def _shown(referral: Referral, name: str) -> str | None:
    """A field's value as the history shows it (labels, not codes; local times)."""
    value = getattr(referral, name)
    if value is None or value == "":
        return None
    if name == "provider":
        return str(referral.provider.display_name)
    if isinstance(value, datetime):
        return dateformat.format(timezone.localtime(value), "M j, Y g:i a")
    display = getattr(referral, f"get_{name}_display", None)
    return str(display()) if display else str(value)


def _inquiry_stage(referral: Referral) -> tuple[str, dict[str, datetime | None]]:
    """Where an inbound referral stands in the new-patient funnel, from its own dates."""
    if referral.seen_at is not None:
        return Inquiry.Status.SEEN_NEW_PATIENT, {"seen_at": referral.seen_at}
    if referral.status in (Status.DECLINED, Status.CANCELLED):
        return Inquiry.Status.LOST, {"lost_at": referral.updated_at}
    if referral.appointment_at is not None:
        return Inquiry.Status.SCHEDULED, {"scheduled_at": referral.appointment_at}
    return Inquiry.Status.INQUIRY, {}


STALE_EDIT = (
    "Someone changed this referral after you opened it (see its history), so nothing was "
    "saved. Your values are below: check them and save again to keep them."
)


@transaction.atomic
def referral_edit(
    *,
    referral: Referral,
    fields: Sequence[str],
    actor: User | None,
    version: datetime | None = None,
) -> list[str]:
    """Save in-place edits of a referral's details (an unsaved instance carrying the new
    values of `fields`) and write them to its history: a change of coordinator as an
    assignment event, anything else as one edit event listing old and new values (patient
    fields by name only). The conversion data follow: an inbound referral's inquiry moves
    with its received date, and a change of direction adds or removes the inquiry.
    Returns the names of the fields that changed. With `version` (the updated_at the user
    saw) nothing is saved if the referral changed since: ValidationError(code="stale").
    Only the changed fields are written, so a status move made meanwhile stands."""
    before = Referral.objects.select_for_update().select_related("provider").get(pk=referral.pk)
    if version is not None and before.updated_at != version:
        raise ValidationError(STALE_EDIT, code="stale")
    changed = [
        name
        for name in fields
        if getattr(before, own_field(Referral, name).attname)
        != getattr(referral, own_field(Referral, name).attname)
    ]
    if not changed:
        return []
    at = timezone.now()
    if {"direction", "provider"} & set(changed):
        # The in-network snapshot is taken when a patient is sent; a new recipient is a new
        # sending.
        if referral.direction == Referral.Direction.OUTBOUND:
            referral.in_network = referral.provider.in_network
        else:
            referral.in_network = None
            referral.out_of_network_reason = ""
    referral.full_clean()
    written = {*changed, "updated_at"}
    if {"direction", "provider"} & set(changed):
        written |= {"in_network", "out_of_network_reason"}
    referral.save(update_fields=sorted(written))
    if "assigned_to" in changed:
        _record_assignments(
            moves=[(referral.pk, before.assigned_to_id)],
            to_assignee=referral.assigned_to,
            actor=actor,
            at=at,
        )
    edits: list[dict[str, str | None]] = []
    for name in changed:
        if name == "assigned_to":
            continue
        label = capfirst(str(own_field(Referral, name).verbose_name))
        if name in PATIENT_FIELDS:
            edits.append({"field": label})
        else:
            edits.append(
                {"field": label, "old": _shown(before, name), "new": _shown(referral, name)}
            )
    edits.extend(_inquiry_follow_edit(referral=referral, before=before, changed=changed))
    if edits:
        _record_edit(referral_id=referral.pk, changes=edits, actor=actor, at=at)
    return changed


def _inquiry_follow_edit(
    *, referral: Referral, before: Referral, changed: list[str]
) -> list[dict[str, str | None]]:
    """Keep the conversion report true after an edit; returns what changed in it."""
    inbound = referral.direction == Referral.Direction.INBOUND
    if "direction" in changed and not inbound:
        if Inquiry.objects.filter(referral=referral).delete()[0]:
            return [
                {
                    "field": "Conversion",
                    "old": "Counted as a partner-referral inquiry",
                    "new": "Not counted (outbound)",
                }
            ]
        return []
    if "direction" in changed and inbound:
        status, dates = _inquiry_stage(referral)
        Inquiry.objects.get_or_create(
            referral=referral,
            defaults={
                "source": Inquiry.Source.PARTNER_REFERRAL,
                "received_at": referral.received_at,
                "status": status,
                **dates,
            },
        )
        return [
            {
                "field": "Conversion",
                "old": "Not counted (outbound)",
                "new": f"Counted as a partner-referral inquiry ({Inquiry.Status(status).label.lower()})",
            }
        ]
    if "received_at" in changed and inbound:
        moved = Inquiry.objects.filter(referral=referral).update(received_at=referral.received_at)
        if moved:
            return [
                {
                    "field": "Inquiry received (conversion)",
                    "old": _shown(before, "received_at"),
                    "new": _shown(referral, "received_at"),
                }
            ]
    return []


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
    if to_status == Status.DECLINED and not reason.strip():
        raise ValidationError({"reason": "Say why the selected referrals are declined."})
    if to_status == Status.CANCELLED and not reason.strip():
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
            result.skipped[pk] = (
                f"a {referral.get_status_display().lower()} referral cannot move to "
                f"{Status(to_status).label.lower()}"
            )
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


@transaction.atomic
def referral_record_consult_report(
    *, referral: Referral, actor: User | None, at: datetime | None = None
) -> bool:
    """The specialist's consult report came back for an outbound referral. Recorded once
    (a second click changes nothing); the reminder task for it, if any, is done."""
    from outreach.models import Task

    if referral.direction != Referral.Direction.OUTBOUND:
        raise ValidationError("Only a referral we sent out has a consult report to receive.")
    at = at or timezone.now()
    recorded = Referral.objects.filter(pk=referral.pk, report_received_at__isnull=True).update(
        report_received_at=at, updated_at=at
    )
    if recorded:
        Task.objects.filter(
            referral=referral, kind=Task.Kind.CONSULT_REPORT, status=Task.Status.OPEN
        ).update(status=Task.Status.DONE, completed_at=at)
    return recorded == 1


@transaction.atomic
def consult_report_reminders_create(*, now: datetime | None = None) -> int:
    """One reminder task per outbound referral whose consult report is overdue. Safe to run
    any number of times: the unique (referral, kind) constraint makes repeats no-ops."""
    from django.conf import settings

    from outreach.models import Task

    now = now or timezone.now()
    waiting = (
        Referral.objects.awaiting_consult_report(
            sent_before=now - timedelta(days=settings.CONSULT_REPORT_REMINDER_DAYS)
        )
        .exclude(tasks__kind=Task.Kind.CONSULT_REPORT)
        .values_list("pk", "assigned_to_id", "created_by_id")
    )
    today = timezone.localdate(now)
    reminders = [
        Task(
            kind=Task.Kind.CONSULT_REPORT,
            title=f"Chase the consult report for referral #{pk}",
            due_on=today,
            referral_id=pk,
            assignee_id=assignee or creator,
        )
        for pk, assignee, creator in waiting
    ]
    created = Task.objects.bulk_create(reminders, ignore_conflicts=True)
    return len(created)


def _close_the_loop(*, referral: Referral, status: str) -> None:
    """Tell the referrer (acknowledgment, scheduled, thank-you, report cover letter). Only
    after commit: a rolled-back change must not message anybody. If this enqueue is lost,
    the beat sweep finds the referral by its event and does the same work."""
    from outreach.services.loop import LOOP_MESSAGES
    from outreach.tasks import prepare_loop_message

    if referral.direction == Referral.Direction.INBOUND and status in LOOP_MESSAGES:
        enqueue_on_commit(prepare_loop_message, referral.pk, status)
