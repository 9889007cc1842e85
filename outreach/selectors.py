"""Reads for the liaison's day: plan cards and suggestions, each in a fixed number of
queries however many offices are on the plan."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from functools import cached_property
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db.models import OuterRef, Prefetch, Q, Subquery
from django.shortcuts import get_object_or_404
from django.utils import timezone

from core.templatetags.people import person
from core.types import AuthedRequest
from outreach.models import Activity, Event, PlannedVisit, PlannedVisitEvent, Task
from partners.models import Organization, Provider
from referrals.models import Referral

# An office nobody has touched for this long is suggested for a visit.
STALE_AFTER_DAYS = 30
SUGGESTIONS = 8


def get_planned_visit_for_user(
    request: AuthedRequest, pk: int, *, write: bool = False
) -> PlannedVisit:
    visits = PlannedVisit.objects.for_user(request.user, write=write).select_related("organization")
    return get_object_or_404(visits, pk=pk)


def get_event_for_user(
    request: AuthedRequest, pk: int, *, write: bool = False, details: bool = False
) -> Event:
    """An event the user may read, or with `write` change (invite, RSVPs, who came: any
    colleague may help run it). With `details`, its date, place, cost or its cancelling:
    those are its organizer's, or a manager's (PermissionDenied, saying whose it is)."""
    perm = "outreach.change_event" if write or details else "outreach.view_event"
    events = Event.objects.all() if request.user.has_perm(perm) else Event.objects.none()
    event = get_object_or_404(events.select_related("organizer", "cancelled_by"), pk=pk)
    if details and not may_change_event_details(request.user, event):
        raise PermissionDenied(
            f"{event.name} is {person(event.organizer)}'s event: ask them or a manager to "
            "change or cancel it."
        )
    return event


def may_change_event_details(user: Any, event: Event) -> bool:
    """Its organizer, or a manager (who sees everyone's work); an event with no organizer
    (made by a script) is anyone's who may change events."""
    return event.organizer_id in (None, user.pk) or user.has_perm("outreach.view_all_tasks")


def _about_offices(office_ids: Iterable[int]) -> Q:
    """Tasks about these offices: through their partner, or, for a follow-up from a visit
    where only the office's staff were met (no partner to name), through that visit."""
    office_ids = list(office_ids)
    return Q(provider__organization__in=office_ids) | Q(
        provider__isnull=True, activity__organization__in=office_ids
    )


def _office_of(task: Task) -> int | None:
    if task.provider is not None:
        return task.provider.organization_id
    return task.activity.organization_id if task.activity is not None else None


def _days_since(moment: datetime | None, day: date) -> int | None:
    if moment is None:
        return None
    return max((day - timezone.localtime(moment).date()).days, 0)


@dataclass
class PlanCard:
    visit: PlannedVisit
    last_activity: Activity | None
    open_tasks: list[Task] = field(default_factory=list)
    days_since_referral: int | None = None
    days_since_touch: int | None = None

    @property
    def organization(self) -> Organization:
        return self.visit.organization

    @cached_property
    def providers(self) -> list[Provider]:
        return list(self.visit.organization.providers.all())

    @cached_property
    def staff(self) -> list[Any]:
        return list(self.visit.organization.staff.all())

    @property
    def history(self) -> list[PlannedVisitEvent]:
        return list(self.visit.events.all())

    @cached_property
    def tiers(self) -> list[str]:
        return sorted({p.tier for p in self.providers if p.tier})


def day_plan_cards(user: Any, day: date) -> list[PlanCard]:
    """The day's visits in route order with everything a card shows (its history of
    skips and logs included): six queries."""
    day_start = timezone.make_aware(datetime.combine(day, time.min))
    activities_before = Activity.objects.filter(
        organization=OuterRef("organization"), occurred_at__lt=day_start
    ).order_by("-occurred_at", "-pk")
    last_referral = (
        Referral.objects.counted()
        .filter(
            provider__organization=OuterRef("organization"),
            direction=Referral.Direction.INBOUND,
        )
        .order_by("-received_at")
        .values("received_at")[:1]
    )
    visits = list(
        PlannedVisit.objects.filter(liaison=user, planned_on=day)
        .select_related("organization")
        .annotate(
            # Where we left off: the last activity that noted something (a quick drop-in
            # logged with nothing to say does not hide it); the last touch is any activity.
            last_activity_id=Subquery(
                activities_before.exclude(notes="", next_step="").values("pk")[:1]
            ),
            last_touch_at=Subquery(activities_before.values("occurred_at")[:1]),
            last_referral_at=Subquery(last_referral),
        )
        .prefetch_related(
            Prefetch(
                "organization__providers",
                queryset=Provider.objects.order_by("last_name", "first_name"),
            ),
            "organization__staff",
            Prefetch(
                "events",
                queryset=PlannedVisitEvent.objects.select_related("actor").order_by("at", "pk"),
            ),
        )
        .order_by("position", "pk")
    )
    last_activities = Activity.objects.in_bulk(
        [v.last_activity_id for v in visits if v.last_activity_id]
    )
    tasks_by_office: dict[int | None, list[Task]] = {}
    if visits:
        tasks = (
            Task.objects.for_user(user)
            .open()
            .filter(assignee=user)
            .filter(_about_offices([v.organization_id for v in visits]))
            .select_related("provider", "activity")
            .order_by("due_on", "pk")
        )
        for task in tasks:
            tasks_by_office.setdefault(_office_of(task), []).append(task)
    return [
        PlanCard(
            visit=visit,
            last_activity=last_activities.get(visit.last_activity_id),
            open_tasks=tasks_by_office.get(visit.organization_id, []),
            days_since_referral=_days_since(visit.last_referral_at, day),
            days_since_touch=_days_since(visit.last_touch_at, day),
        )
        for visit in visits
    ]


@dataclass(frozen=True)
class Suggestion:
    organization: Organization
    reason: str
    # The referral whose patient the reason names (an overdue task's title: initials).
    referral_id: int | None = None


def plan_suggestions(user: Any, day: date, *, exclude: set[int]) -> list[Suggestion]:
    """Offices worth a visit: overdue tasks there first (named by their kind: a thank-you
    call, a follow-up), then the liaison's offices that nobody has touched for
    STALE_AFTER_DAYS days. Two queries."""
    suggestions: dict[int, Suggestion] = {}
    overdue = (
        Task.objects.open()
        .filter(assignee=user, due_on__lte=day)
        .filter(
            Q(provider__organization__isnull=False)
            | Q(provider__isnull=True, activity__organization__isnull=False)
        )
        .exclude(_about_offices(exclude))
        .select_related("provider__organization", "activity__organization")
        .order_by("due_on")[:SUGGESTIONS]
    )
    for task in overdue:
        source = task.provider or task.activity
        office = source.organization if source is not None else None
        assert office is not None, "filtered on the office"
        if office.pk not in suggestions:
            suggestions[office.pk] = Suggestion(
                office,
                f"{task.get_kind_display()} due {task.due_on:%b %-d}: {task.title}",
                task.referral_id,
            )
    cutoff = timezone.now() - timedelta(days=STALE_AFTER_DAYS)
    last_touch = (
        Activity.objects.filter(organization=OuterRef("pk"))
        .order_by("-occurred_at")
        .values("occurred_at")[:1]
    )
    stale = (
        Organization.objects.filter(
            pk__in=Provider.objects.filter(owner=user).values("organization")
        )
        .exclude(pk__in=[*exclude, *suggestions])
        .annotate(last_touch_at=Subquery(last_touch))
        .filter(Q(last_touch_at__lt=cutoff) | Q(last_touch_at__isnull=True))
        .order_by("last_touch_at", "name")[: SUGGESTIONS - len(suggestions)]
    )
    for office in stale:
        days = _days_since(office.last_touch_at, day)
        reason = f"Not touched for {days} days" if days is not None else "Never visited"
        suggestions[office.pk] = Suggestion(office, reason)
    return list(suggestions.values())[:SUGGESTIONS]
