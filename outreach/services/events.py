"""Events: creating one, inviting people and recording who came."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F, Model
from django.utils import timezone

from core.enqueue import enqueue_on_commit
from outreach import ledger
from outreach.models import (
    Activity,
    ActivityShare,
    Event,
    Invitation,
    Letter,
    LetterTemplate,
    Task,
)
from outreach.services.compliance import _enforce_limit, _lock_providers
from partners.models import Provider, StaffMember

# The same event created by the same person this soon is a second press of Create (a
# double tap, the form sent again from the history): it is not made twice.
RECREATE_WINDOW = timedelta(minutes=10)


@dataclass(frozen=True)
class EventCreated:
    event: Event
    # False when the event had just been made by the same person: a second press.
    created: bool


@transaction.atomic
def event_create(*, event: Event, actor: User) -> EventCreated:
    """Save a new event organised by `actor`; the same event (name, kind, start and place)
    created by them a moment ago is that one, returned instead of made again."""
    # Two presses of Create at once wait here for each other: the second finds the first.
    list(User.objects.select_for_update().filter(pk=actor.pk).values_list("pk", flat=True))
    just_made = (
        Event.objects.filter(
            organizer=actor,
            created_at__gte=timezone.now() - RECREATE_WINDOW,
            name=event.name,
            kind=event.kind,
            starts_at=event.starts_at,
            place=event.place,
        )
        .order_by("-pk")
        .first()
    )
    if just_made is not None:
        return EventCreated(just_made, created=False)
    event.organizer = actor
    event.full_clean()
    event.save()
    return EventCreated(event, created=True)


@transaction.atomic
def event_invite(
    *, event: Event, providers: Iterable[Provider], staff: Iterable[StaffMember]
) -> int:
    """Invite people to an event; inviting someone twice keeps their first invitation. A
    cancelled event takes nobody more (ValidationError)."""
    # Two presses of Invite at once wait here for each other: the second finds the
    # first's invitations instead of failing on the one-per-person constraint.
    locked = Event.objects.select_for_update().get(pk=event.pk)
    event_check_open(locked, "invite anyone to it")
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


NOT_COMING = "Withdrawn: the invitee is not coming"
EVENT_CANCELLED = "Withdrawn: the event was cancelled"


def event_check_open(event: Event, doing: str) -> None:
    """Refuse `doing` (a phrase: "record who came") for a cancelled event."""
    if event.cancelled_at is not None:
        raise ValidationError(f"{event.name} was cancelled: you cannot {doing}.")


def event_check_cancel(event: Event, *, now: datetime) -> None:
    """May `event` be cancelled at `now`? Only once, and only before it starts."""
    event_check_open(event, "cancel it again")
    if event.starts_at <= now:
        raise ValidationError(
            f"{event.name} has already started or taken place "
            f"({timezone.localtime(event.starts_at):%b %-d at %-I:%M %p}): it cannot be "
            "cancelled."
        )


@dataclass(frozen=True)
class EventCancelled:
    event: Event
    # The organizer's task to tell the invited office staff; None when there is nobody to
    # tell (none invited, all declined, or their offices opted out).
    staff_task: Task | None


@transaction.atomic
def event_cancel(*, event: Event, actor: User, reason: str) -> EventCancelled:
    """Call off an event that is still to come, saying why. Its reminders not yet on their
    way (waiting to be sent, or in the print and fax queue) are withdrawn, and the reminder
    run makes no more (it re-reads the event under this lock before writing any). Invitees
    who had not declined are told (without the reason, which is the practice's own note):
    providers by a cancellation notice handed to delivery once this commits, office staff
    by the organizer, from a task listing each with their email or phone."""
    from outreach import meetings
    from outreach.tasks import deliver_letters

    reason = reason.strip()
    if not reason:
        raise ValidationError({"cancel_reason": "Say why the event is cancelled."})
    # A reminder run, an edit or a second press waits here, then finds it cancelled.
    locked = Event.objects.select_for_update().get(pk=event.pk)
    now = timezone.now()
    event_check_cancel(locked, now=now)
    locked.cancelled_at, locked.cancelled_by, locked.cancel_reason = now, actor, reason
    # Only what this writes is checked: an event made without an organizer (one who left,
    # a script) is still cancelled.
    locked.full_clean(exclude=[f.name for f in Event._meta.fields if f.name != "cancel_reason"])
    locked.save(update_fields=["cancelled_at", "cancelled_by", "cancel_reason", "updated_at"])
    Letter.objects.filter(
        invitation__event=locked,
        kind=LetterTemplate.Kind.EVENT_REMINDER,
        status__in=[Letter.Status.PENDING, Letter.Status.PRINT_QUEUE],
    ).update(status=Letter.Status.CANCELLED, last_error=EVENT_CANCELLED)
    notices = meetings.event_cancellation_notices_prepare(event=locked)
    staff_task = meetings.event_cancellation_calls_prepare(event=locked, actor=actor)
    if notices:
        enqueue_on_commit(deliver_letters, [letter.pk for letter in notices])
    return EventCancelled(locked, staff_task)


@transaction.atomic
def invitation_save(*, invitation: Invitation) -> Invitation:
    """Save an invitee's RSVP and attendance. One who is not coming is not reminded: a
    reminder still waiting to go out, or in the print and fax queue, is withdrawn. One
    who then says they are coming after all, before the event, gets it back: waiting to
    go out again (the reminder run makes one per invitation and date, so it would not
    make another). A cancelled event's invitations stay as they were (ValidationError)."""
    event_check_open(invitation.event, "change who is coming or who came")
    invitation.save()
    reminders = Letter.objects.filter(
        invitation=invitation, kind=LetterTemplate.Kind.EVENT_REMINDER
    )
    if invitation.rsvp == Invitation.Rsvp.NO:
        reminders.filter(status__in=[Letter.Status.PENDING, Letter.Status.PRINT_QUEUE]).update(
            status=Letter.Status.CANCELLED, last_error=NOT_COMING
        )
    else:
        reminders.filter(
            status=Letter.Status.CANCELLED,
            last_error=NOT_COMING,
            # Of the event's date as it stands, and only while it is still to come.
            sequence=F("invitation__event__schedule_version"),
            invitation__event__starts_at__gt=timezone.now(),
        ).update(status=Letter.Status.PENDING, last_error="")
    return invitation


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
    over; the reason is kept only on the offices with a share over the limit). Run again
    after a correction, it updates those activities, and an office nobody came from any
    more loses its activity. Attending key partners' open
    annual-meeting tasks are done when the event is their annual meeting.

    Written for all offices at once (a dozen queries however many came), not through
    `activity_log` office by office; the activities are built here from the event, so
    there is no user input to validate beyond the override reason the form checked."""
    from outreach import meetings

    locked = Event.objects.select_for_update().get(pk=event.pk)
    event_check_open(locked, "record who came")
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
        # The reason is for this recording's amounts: one given for an earlier recording
        # is not carried over to vouch for whatever the correction now puts over the limit
        # (the page offers it again for the manager to confirm).
        activity.limit_override_reason = override_reason
        activities[office_id] = activity

    allowances = _attendance_allowances(locked, by_office, activities, share, actor)
    # And it stays only where a share is over: an office within the limit has nothing to
    # explain, and the compliance report must not show it as an exception.
    over = {allowance.provider.organization_id for allowance in allowances if allowance.over}
    for office_id, activity in activities.items():
        if office_id not in over:
            activity.limit_override_reason = ""

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
