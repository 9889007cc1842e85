"""Closing the loop: the thank-you task and letter, and letter delivery.

Every function here is idempotent: the unique constraints on Task and Letter make a
second run a no-op, so the worker, a retry and the beat sweep can all call them safely.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from smtplib import SMTPException

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.mail import EmailMultiAlternatives
from django.db import IntegrityError, transaction
from django.db.models import Max, Q
from django.utils import timezone

from core.dates import add_business_days
from outreach import ledger
from outreach.models import (
    Activity,
    ActivityShare,
    CalendarFeed,
    Event,
    Invitation,
    Letter,
    LetterTemplate,
    PlannedVisit,
    Task,
    render_merge_fields,
)
from outreach.routing import Stop, nearest_neighbour_route
from partners.models import Organization, Provider, StaffMember
from referrals.models import Referral, ReferralEvent, Status

logger = logging.getLogger(__name__)

DEFAULT_THANK_YOU = {
    "subject": "Thank you for referring {{ patient_initials }}",
    "body": (
        "Dear {{ provider_name }},\n\n"
        "Thank you for referring your patient {{ patient_initials }} to {{ practice_name }}. "
        "We saw them on {{ seen_date }} and will send our consult report shortly.\n\n"
        "We appreciate your trust and are always glad to help your patients.\n\n"
        "With thanks,\n{{ sender_name }}\n{{ practice_name }}"
    ),
}

# A letter claimed by a worker that has not finished within this time is presumed lost
# with its worker and handed out again by the sweep.
STALE_CLAIM = timedelta(minutes=10)


def letter_template_for(kind: str) -> LetterTemplate:
    template, _ = LetterTemplate.objects.get_or_create(
        kind=kind, defaults=DEFAULT_THANK_YOU if kind == LetterTemplate.Kind.THANK_YOU else {}
    )
    return template


def _merge_values(referral: Referral) -> dict[str, str]:
    provider = referral.provider
    owner = provider.owner
    seen = timezone.localtime(referral.seen_at) if referral.seen_at else None
    return {
        "provider_name": provider.display_name,
        "provider_last_name": provider.last_name,
        "organization_name": provider.organization.name if provider.organization else "",
        "patient_initials": referral.patient_initials,
        "referral_date": f"{timezone.localtime(referral.received_at):%B %-d, %Y}",
        "seen_date": f"{seen:%B %-d, %Y}" if seen else "",
        "practice_name": settings.PRACTICE_NAME,
        "sender_name": (owner.get_full_name() or owner.get_username()) if owner else "",
        "today": f"{timezone.localdate():%B %-d, %Y}",
    }


def thank_you_prepare(*, referral_id: int) -> tuple[Task | None, Letter | None]:
    """Create the thank-you task for the relationship owner and the thank-you letter for
    the referrer, once per referral. Returns what now exists (None if the referral is not
    an inbound one that has been seen)."""
    referral = (
        Referral.objects.select_related("provider", "provider__owner", "provider__organization")
        .filter(pk=referral_id, direction=Referral.Direction.INBOUND, seen_at__isnull=False)
        .first()
    )
    if referral is None:
        return None, None
    template = letter_template_for(LetterTemplate.Kind.THANK_YOU)
    seen_on = timezone.localtime(referral.seen_at).date()
    due_on = add_business_days(seen_on, template.delay_business_days)
    values = _merge_values(referral)
    provider = referral.provider
    try:
        with transaction.atomic():
            letter, _ = Letter.objects.get_or_create(
                referral=referral,
                kind=LetterTemplate.Kind.THANK_YOU,
                defaults={
                    "provider": provider,
                    "subject": render_merge_fields(template.subject, values),
                    "body": render_merge_fields(template.body, values),
                    "due_on": due_on,
                },
            )
            task, _ = Task.objects.get_or_create(
                referral=referral,
                kind=Task.Kind.THANK_YOU,
                defaults={
                    "title": f"Thank {provider.display_name} for referring "
                    f"{referral.patient_initials}",
                    "due_on": due_on,
                    "assignee": provider.owner,
                    "provider": provider,
                },
            )
    except IntegrityError:
        # Another worker created them between our read and write: they exist now.
        letter = Letter.objects.get(referral=referral, kind=LetterTemplate.Kind.THANK_YOU)
        task = Task.objects.get(referral=referral, kind=Task.Kind.THANK_YOU)
    return task, letter


def referrals_missing_thank_you() -> list[int]:
    """Inbound referrals that reached "seen" but have no thank-you letter: work whose
    enqueue was lost. Bounded to recent events so the sweep stays cheap."""
    since = timezone.now() - timedelta(days=30)
    return list(
        ReferralEvent.objects.filter(
            to_status=Status.SEEN,
            at__gte=since,
            referral__direction=Referral.Direction.INBOUND,
        )
        .exclude(referral__letters__kind=LetterTemplate.Kind.THANK_YOU)
        .values_list("referral_id", flat=True)
        .distinct()[:500]
    )


def letters_to_deliver() -> list[int]:
    """Due letters, and letters whose worker vanished mid-delivery."""
    stale = timezone.now() - STALE_CLAIM
    due = Letter.objects.due().values_list("pk", flat=True)[:500]
    stuck = Letter.objects.filter(status=Letter.Status.SENDING, claimed_at__lt=stale).values_list(
        "pk", flat=True
    )[:500]
    return [*due, *stuck]


def letter_claim(*, letter_id: int) -> Letter | None:
    """Take a letter for delivery. The conditional update lets exactly one worker win;
    a claim left behind by a dead worker can be taken again once it is stale."""
    now = timezone.now()
    claimable = Q(status=Letter.Status.PENDING, due_on__lte=timezone.localdate()) | Q(
        status=Letter.Status.SENDING, claimed_at__lt=now - STALE_CLAIM
    )
    claimed = Letter.objects.filter(claimable, pk=letter_id).update(
        status=Letter.Status.SENDING, claimed_at=now
    )
    if claimed != 1:
        return None
    return Letter.objects.select_related("provider", "provider__organization").get(pk=letter_id)


MAX_DELIVERY_ATTEMPTS = 5


class TransientDeliveryError(Exception):
    """Delivery failed in a way that may succeed later (SMTP down, timeout)."""


def letter_deliver(*, letter_id: int) -> Letter | None:
    """Deliver one claimed letter: by email when the partner has an address, otherwise to
    the print/fax queue. A transient failure puts the letter back as pending (the task
    retries with backoff) until MAX_DELIVERY_ATTEMPTS, then marks it failed for a person
    to see."""
    letter = letter_claim(letter_id=letter_id)
    if letter is None:
        return None
    recipient = letter.provider.contact_email
    attempts = letter.attempts + 1
    if not recipient:
        Letter.objects.filter(pk=letter.pk).update(
            status=Letter.Status.PRINT_QUEUE,
            channel=Letter.Channel.PRINT,
            attempts=attempts,
            sent_at=timezone.now(),
        )
        return Letter.objects.get(pk=letter.pk)
    message = EmailMultiAlternatives(
        subject=letter.subject,
        body=letter.body,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[recipient],
        headers={"X-Referral-CRM-Letter": str(letter.pk)},
    )
    try:
        message.send()
    except (SMTPException, OSError) as error:
        failed = attempts >= MAX_DELIVERY_ATTEMPTS
        Letter.objects.filter(pk=letter.pk).update(
            status=Letter.Status.FAILED if failed else Letter.Status.PENDING,
            attempts=attempts,
            # The error class only: SMTP replies can echo addresses or content.
            last_error=f"{type(error).__name__} on attempt {attempts}",
        )
        logger.warning(
            "letter %s delivery attempt %s failed: %s", letter.pk, attempts, type(error).__name__
        )
        if not failed:
            raise TransientDeliveryError(str(letter.pk)) from error
        return Letter.objects.get(pk=letter.pk)
    Letter.objects.filter(pk=letter.pk).update(
        status=Letter.Status.SENT,
        channel=Letter.Channel.EMAIL,
        recipient=recipient,
        attempts=attempts,
        sent_at=timezone.now(),
        last_error="",
    )
    return Letter.objects.get(pk=letter.pk)


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
    actor: AbstractBaseUser,
) -> list[ledger.Allowance]:
    """May this cost be logged? Returns every attending physician's allowance; raises
    when one would go over the limit and no manager gave a reason for the override."""
    if not activity.cost:
        return []
    year = timezone.localtime(activity.occurred_at).year
    share = ledger.share_per_head(cost=activity.cost, headcount=len(providers) + staff_count)
    found = ledger.allowances(providers, year=year, share=share, exclude_activity_id=activity.pk)
    over = [a for a in found if a.over]
    if over:
        if not activity.limit_override_reason.strip():
            raise ComplianceLimitExceeded(over)
        if not actor.has_perm("outreach.override_compliance_limit"):
            raise PermissionDenied("Only a manager may log a cost over the yearly limit.")
    return found


@transaction.atomic
def activity_log(
    *,
    activity: Activity,
    providers: Iterable[Provider],
    staff: Iterable[StaffMember],
    actor: AbstractBaseUser,
) -> Activity:
    """Save a touch with its attendees; a next step with a due date becomes a follow-up
    task for the person who logged it, so the next visit starts from it. A cost is
    shared per head and each physician's share goes in the gifts and meals ledger (see
    outreach.ledger for the rule); a share over the yearly limit is refused unless a
    manager gave a reason."""
    providers = list(providers)
    staff = list(staff)
    if activity.cost:
        # Lock the physicians so two liaisons logging lunches for the same doctor at the
        # same moment cannot both slip under the limit.
        list(
            Provider.objects.select_for_update()
            .filter(pk__in=[p.pk for p in providers])
            .order_by("pk")
            .values_list("pk", flat=True)
        )
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
def planned_visit_add(
    *, liaison: AbstractBaseUser, organization: Organization, day: date
) -> PlannedVisit:
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
def planned_visits_route(
    *, liaison: AbstractBaseUser, day: date, start_zip: str
) -> list[Stop[PlannedVisit]]:
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
    actor: AbstractBaseUser,
) -> Activity:
    """Log the visit and mark it done. A second post of the same visit (a retry after the
    response was lost on a flaky connection) returns the first activity instead of
    logging the visit twice."""
    locked = PlannedVisit.objects.select_for_update().get(pk=visit.pk)
    if locked.activity_id is not None:
        return Activity.objects.get(pk=locked.activity_id)
    activity.organization = locked.organization
    activity_log(activity=activity, providers=providers, staff=staff, actor=actor)
    locked.activity = activity
    locked.status = PlannedVisit.Status.DONE
    locked.save(update_fields=["activity", "status"])
    return activity


@transaction.atomic
def planned_visit_skip(*, visit: PlannedVisit) -> PlannedVisit:
    PlannedVisit.objects.filter(pk=visit.pk, status=PlannedVisit.Status.PLANNED).update(
        status=PlannedVisit.Status.SKIPPED
    )
    return PlannedVisit.objects.get(pk=visit.pk)


# --- Calendar feed --------------------------------------------------------------------------


@transaction.atomic
def calendar_feed_regenerate(*, user: AbstractBaseUser) -> str:
    """Make a new private feed token for `user` (the old URL stops working) and return
    it: the only moment the raw token exists."""
    token = secrets.token_urlsafe(32)
    CalendarFeed.objects.update_or_create(
        user=user,
        defaults={"token_hash": CalendarFeed.hash_token(token), "created_at": timezone.now()},
    )
    return token


@transaction.atomic
def calendar_feed_revoke(*, user: AbstractBaseUser) -> None:
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
    activity: Activity | None
    attendees: int


@transaction.atomic
def event_record_attendance(*, event: Event, actor: AbstractBaseUser) -> AttendanceResult:
    """Record who came as one activity of kind "event" with every attendee. Run again
    after a correction, it updates that same activity instead of adding another."""
    locked = Event.objects.select_for_update().get(pk=event.pk)
    came = list(locked.invitations.filter(attended=True).select_related("provider", "staff"))
    providers = [i.provider for i in came if i.provider_id]
    staff = [i.staff for i in came if i.staff_id]
    if locked.activity_id is not None:
        activity = Activity.objects.get(pk=locked.activity_id)
        activity.providers.set(providers)
        activity.staff.set(staff)
        return AttendanceResult(activity, len(came))
    if not came:
        return AttendanceResult(None, 0)
    activity = Activity(
        kind=Activity.Kind.EVENT,
        occurred_at=locked.starts_at,
        notes=f"{locked.get_kind_display()}: {locked.name}",
    )
    activity_log(activity=activity, providers=providers, staff=staff, actor=actor)
    locked.activity = activity
    locked.save(update_fields=["activity"])
    return AttendanceResult(activity, len(came))
