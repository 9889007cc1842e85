"""Annual meetings with key partners, and the reminders around events.

The rule implemented here
-------------------------
* A key partner is a provider of tier A or B (nightly tiering or a manager's pin).
* A partner's annual meeting is the last event of kind "annual meeting" that they are
  recorded as having attended (their invitation is ticked "came") and that has started.
* It is **due** when that was more than 12 calendar months ago (before the same date
  last year), or never happened. Being invited to an upcoming annual meeting does not
  make it not due (they may not come), but it is shown, and no reminder task is made
  while such an invitation is open.
* Reminder tasks: one open "annual meeting" task per due partner, for their owner
  (partners without an owner have nobody to remind), at most one a year. The database
  refuses a second open one; recording attendance at an annual meeting completes it.
* Event reminders: every invitee who is a provider and has not declined gets one
  reminder letter `Event.remind_days_before` days before the event (from that day
  until the event starts, so a missed run catches up), by the partner's channel and
  opt-out, through the ordinary letter pipeline. The database refuses a second reminder
  for the same invitation. Staff invitees get no letter: letters go to providers. A
  cancelled event reminds nobody, and a cancelled annual meeting counts neither as held
  nor as to come. Its invitees are told: providers by a letter, staff by the organizer,
  from a task (event_cancellation_calls_prepare).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any, TypedDict

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, F, Max, Min, OuterRef, Q, QuerySet, Subquery
from django.utils import timezone

from outreach import direct
from outreach.models import Event, Invitation, Letter, LetterTemplate, PlannedVisit, Task
from outreach.models.merge_fields import render_merge_fields
from outreach.services.letters import (
    letter_template_for,
    letter_to,
    provider_merge_values,
)
from partners.models import Provider

KEY_TIERS = (Provider.Tier.A, Provider.Tier.B)
# The longest reminder lead time an event may set (the model's validator).
MAX_REMIND_DAYS = 90
# How far ahead the daily digest lists events.
DIGEST_EVENT_DAYS = 7


def year_before(day: date) -> date:
    """The same date a year earlier (February 29 becomes February 28)."""
    try:
        return day.replace(year=day.year - 1)
    except ValueError:
        return day.replace(year=day.year - 1, day=28)


def _first_not_due(today: date) -> date:
    """The first meeting day not yet due on `today` (annual_meeting_status's rule): the
    same date a year before, except on February 29, when February 28's anniversary has
    passed and March 1's has not."""
    day = year_before(today)
    return day + timedelta(days=1) if (today.month, today.day) == (2, 29) else day


def _start_of(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))


class AnnualMeetingDates(TypedDict):
    last_annual_meeting_at: datetime | None
    next_annual_meeting_at: datetime | None


if TYPE_CHECKING:
    from django_stubs_ext import WithAnnotations

    # A provider read through with_annual_meetings.
    ProviderWithMeetings = WithAnnotations[Provider, AnnualMeetingDates]


def with_annual_meetings(
    providers: QuerySet[Provider], *, now: datetime
) -> QuerySet[ProviderWithMeetings]:
    """Annotate `last_annual_meeting_at` (the last annual meeting the partner came to)
    and `next_annual_meeting_at` (the next one they are invited to and have not
    declined): two correlated subqueries, so a paginated list computes them per page."""
    invitations = (
        Invitation.objects.filter(
            provider=OuterRef("pk"),
            event__kind=Event.Kind.ANNUAL_MEETING,
            # A cancelled meeting neither took place nor is to come.
            event__cancelled_at__isnull=True,
        )
        .order_by()
        .values("provider")
    )
    return providers.annotate(
        last_annual_meeting_at=Subquery(
            invitations.filter(attended=True, event__starts_at__lte=now)
            .annotate(at=Max("event__starts_at"))
            .values("at")[:1]
        ),
        next_annual_meeting_at=Subquery(
            invitations.filter(event__starts_at__gt=now)
            .exclude(rsvp=Invitation.Rsvp.NO)
            .annotate(at=Min("event__starts_at"))
            .values("at")[:1]
        ),
    )


def annual_meetings_due(
    providers: QuerySet[Provider], *, today: date | None = None
) -> QuerySet[ProviderWithMeetings]:
    """Key partners whose annual meeting is due, tier A first, then the longest
    overdue (never met first)."""
    today = today or timezone.localdate()
    cutoff = _start_of(_first_not_due(today))
    return (
        with_annual_meetings(providers.filter(tier__in=KEY_TIERS), now=timezone.now())
        .filter(Q(last_annual_meeting_at__isnull=True) | Q(last_annual_meeting_at__lt=cutoff))
        .order_by(
            "tier",
            F("last_annual_meeting_at").asc(nulls_first=True),
            "last_name",
            "first_name",
            "pk",
        )
    )


@dataclass(frozen=True)
class AnnualMeetingStatus:
    """Where one partner stands, for the partner 360 page."""

    key_partner: bool
    last_at: datetime | None
    next_at: datetime | None
    due: bool
    # The day it falls (or fell) due; None for a partner who never met us.
    due_on: date | None


def annual_meeting_status(provider: Provider, *, today: date | None = None) -> AnnualMeetingStatus:
    today = today or timezone.localdate()
    now = timezone.now()
    # One partner's two dates in one plain aggregate (what with_annual_meetings computes
    # per row of a list, here without the subqueries' cost to build).
    annotated = Invitation.objects.filter(
        provider=provider, event__kind=Event.Kind.ANNUAL_MEETING, event__cancelled_at__isnull=True
    ).aggregate(
        last_at=Max("event__starts_at", filter=Q(attended=True, event__starts_at__lte=now)),
        next_at=Min(
            "event__starts_at", filter=Q(event__starts_at__gt=now) & ~Q(rsvp=Invitation.Rsvp.NO)
        ),
    )
    last_at = annotated["last_at"]
    due_on = None
    if last_at is not None:
        last_day = timezone.localtime(last_at).date()
        # Due the day after the anniversary: "more than 12 months ago".
        due_on = _anniversary(last_day) + timedelta(days=1)
    key = provider.tier in KEY_TIERS
    return AnnualMeetingStatus(
        key_partner=key,
        last_at=last_at,
        next_at=annotated["next_at"],
        due=key and (due_on is None or due_on <= today),
        due_on=due_on,
    )


def _anniversary(day: date) -> date:
    try:
        return day.replace(year=day.year + 1)
    except ValueError:
        return day.replace(year=day.year + 1, day=28)


def _reminder_detail(provider: ProviderWithMeetings) -> str:
    lines = [f"Tier {provider.tier} partner: meet at least once a year."]
    if provider.last_annual_meeting_at:
        lines.append(
            "Last annual meeting: "
            f"{timezone.localtime(provider.last_annual_meeting_at):%B %-d, %Y}."
        )
    else:
        lines.append("No annual meeting on record.")
    return "\n".join(lines)


@transaction.atomic
def annual_meeting_reminders_create(*, today: date | None = None) -> list[Task]:
    """Give each owned key partner whose annual meeting is due, and who is not invited to
    an upcoming one, an open "annual meeting" task for their owner. Idempotent: the
    partial unique constraint keeps one open task per partner, whoever runs this."""
    today = today or timezone.localdate()
    # Each condition on the same task, in one Exists: exclude(tasks__kind=..., tasks__...)
    # would test them on any two tasks (an old reminder beside this year's thank-you).
    reminders = Task.objects.filter(provider=OuterRef("pk"), kind=Task.Kind.ANNUAL_MEETING)
    due = list(
        annual_meetings_due(Provider.objects.filter(owner__isnull=False), today=today)
        .filter(next_annual_meeting_at__isnull=True)
        .exclude(Exists(reminders.filter(status=Task.Status.OPEN)))
        # At most one reminder a year: a task closed without a meeting does not come back
        # the next night (the list and the partner page still say the meeting is due).
        .exclude(Exists(reminders.filter(created_at__gte=_start_of(year_before(today)))))
    )
    Task.objects.bulk_create(
        [
            Task(
                kind=Task.Kind.ANNUAL_MEETING,
                title=f"Annual meeting with {provider.display_name} is due"[:200],
                detail=_reminder_detail(provider),
                due_on=today,
                assignee_id=provider.owner_id,
                provider=provider,
            )
            for provider in due
        ],
        ignore_conflicts=True,
    )
    # Re-read: rows inserted with ignore_conflicts come back without primary keys.
    return list(
        Task.objects.open()
        .filter(kind=Task.Kind.ANNUAL_MEETING, provider__in=[p.pk for p in due])
        .order_by("pk")
    )


def annual_meeting_tasks_close(*, provider_ids: Iterable[int], held_on: date) -> int:
    """The partners met at an annual meeting: their open reminder tasks are done."""
    return (
        Task.objects.open()
        .filter(kind=Task.Kind.ANNUAL_MEETING, provider_id__in=list(provider_ids))
        .update(
            status=Task.Status.DONE,
            completed_at=timezone.make_aware(datetime.combine(held_on, time(12))),
        )
    )


# --- Event reminder letters -----------------------------------------------------------------


def event_merge_values(event: Event) -> dict[str, str]:
    return {
        "event_name": event.name,
        "event_date": f"{timezone.localtime(event.starts_at):%B %-d, %Y at %-I:%M %p}",
        "event_place": event.place or settings.PRACTICE_NAME,
    }


NO_REMINDERS = "Withdrawn: the event sends no reminders"
SUPERSEDED = "Superseded: the event moved"
# What a reminder tells the invitee: when either changes, they are told again.
REMINDED_FIELDS = frozenset({"starts_at", "place"})


@transaction.atomic
def event_save(*, event: Event, changed: Iterable[str]) -> Event:
    """Save an edited event. When its start or its place changed, it gets the next
    schedule version, so invitees are reminded of the new date or place (outreach.meetings'
    reminder rule, with "New date:", "New place:" or "New date and place:" for those
    already told the old one, as the reminder they were sent kept it),
    and a reminder of the old one not yet on its way (waiting to be sent, or to be printed
    or faxed from the queue) is cancelled rather than sent with a wrong date or place. Set
    to send no reminders, its reminders not yet on their way are cancelled too."""
    moved = bool(REMINDED_FIELDS.intersection(changed))
    if moved:
        event.schedule_version += 1
    event.save()
    waiting = Letter.objects.filter(
        invitation__event=event,
        kind=LetterTemplate.Kind.EVENT_REMINDER,
        status__in=[Letter.Status.PENDING, Letter.Status.PRINT_QUEUE],
    )
    if moved:
        waiting.filter(sequence__lt=event.schedule_version).update(
            status=Letter.Status.CANCELLED, last_error=SUPERSEDED
        )
    if "remind_days_before" in changed and not event.remind_days_before:
        waiting.update(status=Letter.Status.CANCELLED, last_error=NO_REMINDERS)
    elif "remind_days_before" in changed:
        # Reminders after all: those withdrawn go out again while the event is still to
        # come (the run makes one per invitation and date, so it would not make another),
        # but not to one not coming.
        Letter.objects.filter(
            invitation__event=event,
            kind=LetterTemplate.Kind.EVENT_REMINDER,
            status=Letter.Status.CANCELLED,
            last_error=NO_REMINDERS,
            sequence=event.schedule_version,
            invitation__event__starts_at__gt=timezone.now(),
            invitation__event__cancelled_at__isnull=True,
        ).exclude(invitation__rsvp=Invitation.Rsvp.NO).update(
            status=Letter.Status.PENDING, last_error=""
        )
    return event


def invitations_to_remind(*, today: date, now: datetime) -> list[Invitation]:
    """Provider invitations to events that have not started, whose reminder day has
    come, that were not declined and have no reminder letter yet. One query, bounded by
    the longest lead time an event may set."""
    candidates = (
        Invitation.objects.filter(
            provider__isnull=False,
            event__starts_at__gt=now,
            event__starts_at__lt=_start_of(today + timedelta(days=MAX_REMIND_DAYS + 1)),
            event__remind_days_before__gt=0,
            event__cancelled_at__isnull=True,
        )
        .exclude(rsvp=Invitation.Rsvp.NO)
        # Reminded already for the event's current date (an earlier date's reminder does
        # not count: the partner was told a date that no longer holds).
        .exclude(
            Exists(
                Letter.objects.filter(
                    invitation=OuterRef("pk"),
                    kind=LetterTemplate.Kind.EVENT_REMINDER,
                    sequence=OuterRef("event__schedule_version"),
                )
            )
        )
        .select_related("event", "provider__owner", "provider__organization")
        .order_by("event__starts_at", "pk")
    )
    return [
        invitation
        for invitation in candidates
        if timezone.localtime(invitation.event.starts_at).date()
        - timedelta(days=invitation.event.remind_days_before)
        <= today
    ]


def event_reminders_prepare(*, today: date | None = None) -> list[Letter]:
    """Prepare the reminder letters due today (see the module's rule), routed by each
    partner's preferences: pending letters are then delivered by the letter pipeline
    like any other; an opted-out partner's is kept as skipped. Idempotent per
    invitation (a partial unique constraint). Returns the letters made by this run."""
    today = today or timezone.localdate()
    invitations = invitations_to_remind(today=today, now=timezone.now())
    if not invitations:
        return []
    kind = LetterTemplate.Kind.EVENT_REMINDER
    template = letter_template_for(kind)
    # Providers' invitations only (invitations_to_remind asks for provider__isnull=False).
    invitees = [(i, i.provider) for i in invitations if i.provider is not None]
    addresses = (
        direct.direct_addresses(provider.npi for _, provider in invitees)
        if direct.relay_configured()
        else {}
    )
    # Invitees already reminded of an earlier date or place: theirs says what changed. The
    # last reminder they were sent is what they were told.
    told_before = {
        told.invitation_id: told
        for told in Letter.objects.filter(
            invitation__in=invitations,
            kind=kind,
            sequence__lt=F("invitation__event__schedule_version"),
            status__in=[Letter.Status.SENT, Letter.Status.PRINT_QUEUE, Letter.Status.SENDING],
        )
        .order_by("sequence")
        .only("invitation_id", "body", "told_starts_at", "told_place")
    }
    letters = []
    for invitation, provider in invitees:
        values = {
            **provider_merge_values(provider),
            **event_merge_values(invitation.event),
        }
        subject = render_merge_fields(template.subject, values)
        told = told_before.get(invitation.pk)
        changed = _what_changed(told, invitation.event, values) if told else ""
        if changed:
            subject = f"{changed}: {subject}"
        letters.append(
            letter_to(
                provider,
                kind,
                subject=subject,
                body=render_merge_fields(template.body, values),
                due_on=today,
                direct_address=addresses.get(provider.npi, ""),
                invitation=invitation,
                sequence=invitation.event.schedule_version,
                told_starts_at=invitation.event.starts_at,
                told_place=invitation.event.place,
            )
        )
    with transaction.atomic():
        # Read again under the row locks that saving an RSVP or a new date takes: a decline
        # or a move that came while the letters were written withdrew only the reminders
        # that existed then, so the letters it overtook are left out here (the next run
        # reminds of the new date). The events first, in order, as a cancel and an edit
        # lock them: a cancel committed meanwhile is seen here, and one still running
        # waits for these letters and withdraws them.
        list(
            Event.objects.select_for_update()
            .filter(pk__in={invitation.event_id for invitation in invitations})
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        still = set(
            Invitation.objects.select_for_update()
            .filter(
                pk__in=[invitation.pk for invitation in invitations],
                event__cancelled_at__isnull=True,
            )
            .exclude(rsvp=Invitation.Rsvp.NO)
            .values_list("pk", "event__schedule_version")
        )
        letters = [letter for letter in letters if (letter.invitation_id, letter.sequence) in still]
        # A concurrent run's letter wins the constraint; ours is dropped.
        Letter.objects.bulk_create(letters, ignore_conflicts=True)
    message_ids = [letter.message_id for letter in letters]
    return list(Letter.objects.filter(message_id__in=message_ids).order_by("pk"))


def event_cancellation_notices_prepare(*, event: Event) -> list[Letter]:
    """A notice that `event` is cancelled for each invitee who is a provider and had not
    declined, routed like its reminders (channel, opt-outs: an opted-out partner's is kept
    as skipped). One per invitation (the same constraint as the reminders'). Called by the
    cancel, under the event's lock. Returns the notices waiting to be sent."""
    kind = LetterTemplate.Kind.EVENT_CANCELLED
    invitations = list(
        event.invitations.filter(provider__isnull=False)
        .exclude(rsvp=Invitation.Rsvp.NO)
        .select_related("provider__owner", "provider__organization")
        .order_by("pk")
    )
    invitees = [(i, i.provider) for i in invitations if i.provider is not None]
    if not invitees:
        return []
    template = letter_template_for(kind)
    addresses = (
        direct.direct_addresses(provider.npi for _, provider in invitees)
        if direct.relay_configured()
        else {}
    )
    today = timezone.localdate()
    letters = []
    for invitation, provider in invitees:
        values = {**provider_merge_values(provider), **event_merge_values(event)}
        letters.append(
            letter_to(
                provider,
                kind,
                subject=render_merge_fields(template.subject, values),
                body=render_merge_fields(template.body, values),
                due_on=today,
                direct_address=addresses.get(provider.npi, ""),
                invitation=invitation,
            )
        )
    Letter.objects.bulk_create(letters, ignore_conflicts=True)
    return list(
        Letter.objects.filter(
            message_id__in=[letter.message_id for letter in letters], status=Letter.Status.PENDING
        ).order_by("pk")
    )


def event_cancellation_calls_prepare(*, event: Event, actor: Any) -> Task | None:
    """Staff invitees who had not declined are told the event is cancelled by the person
    who invited them, as they were invited: letters go to providers only (a letter is
    addressed to a partner), so staff were asked in person and got no reminder. One task
    for the event's organizer (or, when it has none or they left, whoever cancelled it) lists
    each by their channel: their email, else their phone, else their office's. Staff of an
    office that opted out of letters, or of newsletters and invitations, are left off the
    list and named as not to be contacted. None when no staff member was invited."""
    invitations = list(
        event.invitations.filter(staff__isnull=False)
        .exclude(rsvp=Invitation.Rsvp.NO)
        .select_related("staff__organization")
        .order_by("staff__organization__name", "staff__last_name", "staff__first_name", "pk")
    )
    staff = [invitation.staff for invitation in invitations if invitation.staff is not None]
    if not staff:
        return None
    to_tell, opted_out = [], []
    for member in staff:
        office = member.organization
        named = f"{member.display_name} ({member.get_role_display()}, {office.name})"
        if office.letters_opt_out or office.marketing_opt_out:
            opted_out.append(named)
        elif member.email:
            to_tell.append(f"- {named}: email {member.email}")
        elif member.phone:
            to_tell.append(f"- {named}: call {member.phone}")
        else:
            to_tell.append(f"- {named}: call the office at {office.phone or 'no number on file'}")
    if not to_tell:
        return None
    when = f"{timezone.localtime(event.starts_at):%B %-d, %Y at %-I:%M %p}"
    lines = [f"{event.name} ({when}) is cancelled. Tell the office staff you invited:", *to_tell]
    if opted_out:
        lines.append(
            "Not to be contacted (their office opted out of letters or invitations): "
            + "; ".join(opted_out)
        )
    return Task.objects.create(
        kind=Task.Kind.FOLLOW_UP,
        title=f"Tell the invited office staff {event.name} is cancelled"[:200],
        detail="\n".join(lines),
        due_on=timezone.localdate(),
        # One who has left would never see it: then whoever cancelled.
        assignee=event.organizer if event.organizer and event.organizer.is_active else actor,
    )


def _what_changed(told: Letter, event: Event, values: dict[str, str]) -> str:
    """What a reminder sent again says changed ("New date", "New place", "New date and
    place"), against the last reminder the invitee was sent: the date and place it kept.
    "" when the event is back where they were told. A reminder written before those were
    kept is read from its text instead: a version follows a new date or a new place, so a
    date it names that is still the date means the place changed."""
    if told.told_starts_at is None:
        return "New place" if values["event_date"] in told.body else "New date"
    new_date = told.told_starts_at != event.starts_at
    new_place = told.told_place != event.place
    if new_date and new_place:
        return "New date and place"
    return "New date" if new_date else "New place" if new_place else ""


# --- The daily digest -----------------------------------------------------------------------


def digest_agenda(users: list[Any], *, today: date) -> dict[int, dict[str, list[Any]]]:
    """For each user: today's planned visits, and the events of the next
    DIGEST_EVENT_DAYS days that they organise or that their partners are invited to.
    Three queries, whatever the number of users."""
    agenda: dict[int, dict[str, list[Any]]] = defaultdict(lambda: {"visits": [], "events": []})
    user_ids = [user.pk for user in users]
    for visit in (
        PlannedVisit.objects.filter(liaison__in=user_ids, planned_on=today)
        .exclude(status=PlannedVisit.Status.SKIPPED)
        .select_related("organization")
        .order_by("position", "pk")
    ):
        agenda[visit.liaison_id]["visits"].append(visit)
    window = Q(
        event__starts_at__gte=_start_of(today),
        event__starts_at__lt=_start_of(today + timedelta(days=DIGEST_EVENT_DAYS + 1)),
    )
    pairs = set(
        Invitation.objects.filter(
            window, provider__owner__in=user_ids, event__cancelled_at__isnull=True
        )
        .exclude(rsvp=Invitation.Rsvp.NO)
        .values_list("provider__owner_id", "event_id")
    )
    pairs |= set(
        Event.objects.filter(
            starts_at__gte=_start_of(today),
            starts_at__lt=_start_of(today + timedelta(days=DIGEST_EVENT_DAYS + 1)),
            organizer__in=user_ids,
            cancelled_at__isnull=True,
        ).values_list("organizer_id", "pk")
    )
    events = Event.objects.filter(pk__in={event_id for _, event_id in pairs}).order_by(
        "starts_at", "pk"
    )
    for event in events:
        for user_id in user_ids:
            if (user_id, event.pk) in pairs:
                agenda[user_id]["events"].append(event)
    return agenda
