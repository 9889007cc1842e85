"""The liaison's day: planned visits, their route, log and skip, and the calendar feed."""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from datetime import date

from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone

from outreach.models import Activity, CalendarFeed, PlannedVisit, PlannedVisitEvent
from outreach.routing import Stop, nearest_neighbour_route
from outreach.services.activities import activity_log
from partners.models import Organization, Provider, StaffMember


@transaction.atomic
def planned_visit_add(*, liaison: User, organization: Organization, day: date) -> PlannedVisit:
    """Put an office on a day's plan, at the end; adding it twice is a no-op. An office
    skipped earlier that day is put back on the plan where it was (the skip stays in its
    history); one already visited stays visited."""
    existing = (
        PlannedVisit.objects.select_for_update()
        .filter(liaison=liaison, organization=organization, planned_on=day)
        .first()
    )
    if existing is not None:
        if existing.status == PlannedVisit.Status.SKIPPED:
            PlannedVisitEvent.objects.create(
                visit=existing,
                from_status=existing.status,
                to_status=PlannedVisit.Status.PLANNED,
                actor=liaison,
                reason="Added to the plan again.",
            )
            existing.status = PlannedVisit.Status.PLANNED
            existing.save(update_fields=["status"])
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
    # A double tap's other request may have added it since the check above: the unique
    # constraint decides, and this one returns the visit the other added.
    visit.full_clean(validate_constraints=False)
    try:
        with transaction.atomic():
            visit.save()
    except IntegrityError:
        return PlannedVisit.objects.get(liaison=liaison, organization=organization, planned_on=day)
    return visit


@transaction.atomic
def planned_visits_route(*, liaison: User, day: date, start_zip: str) -> list[Stop[PlannedVisit]]:
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
    actor: User,
) -> Activity:
    """Log the visit and mark it done. A second post of the same visit (a retry after the
    response was lost on a flaky connection) returns the first activity instead of
    logging the visit twice."""
    locked = PlannedVisit.objects.select_for_update().get(pk=visit.pk)
    if locked.activity_id is not None:
        return Activity.objects.get(pk=locked.activity_id)
    activity.organization = locked.organization
    activity_log(activity=activity, providers=providers, staff=staff, actor=actor)
    PlannedVisitEvent.objects.create(
        visit=locked, from_status=locked.status, to_status=PlannedVisit.Status.DONE, actor=actor
    )
    locked.activity = activity
    locked.status = PlannedVisit.Status.DONE
    locked.save(update_fields=["activity", "status"])
    return activity


@transaction.atomic
def planned_visit_skip(*, visit: PlannedVisit, actor: User, reason: str) -> PlannedVisit:
    """Take a planned visit off the day, saying why; the skip is a history row (who, when,
    why) on the day plan and the partner's timeline. Only a planned visit can be
    skipped: a second tap, or a skip of a visit already logged, changes nothing."""
    reason = reason.strip()
    if not reason:
        raise ValidationError({"reason": "Say why the visit is skipped."})
    locked = PlannedVisit.objects.select_for_update().get(pk=visit.pk)
    if locked.status != PlannedVisit.Status.PLANNED:
        return locked
    event = PlannedVisitEvent(
        visit=locked,
        from_status=locked.status,
        to_status=PlannedVisit.Status.SKIPPED,
        actor=actor,
        reason=reason,
    )
    event.full_clean()
    event.save()
    locked.status = PlannedVisit.Status.SKIPPED
    locked.save(update_fields=["status"])
    return locked


@transaction.atomic
def calendar_feed_regenerate(*, user: User) -> str:
    """Make a new private feed token for `user` (the old URL stops working) and return
    it: the only moment the raw token exists."""
    token = secrets.token_urlsafe(32)
    CalendarFeed.objects.update_or_create(
        user=user,
        defaults={"token_hash": CalendarFeed.hash_token(token), "created_at": timezone.now()},
    )
    return token


@transaction.atomic
def calendar_feed_revoke(*, user: User) -> None:
    CalendarFeed.objects.filter(user=user).delete()
