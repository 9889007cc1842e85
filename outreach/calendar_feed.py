"""A liaison's private iCal feed: planned visits, practice events and open tasks.

No patient data goes in: visits and events carry office and event names only, and task
titles are what the practice wrote (the automatic thank-you titles use the patient's
initials, never the name). Follow-up titles are free text typed by staff, so the feed
carries them as typed. A cancelled event stays in, marked cancelled (see build).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import icalendar
from django.conf import settings
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from outreach.models import Event, Invitation, PlannedVisit, Task

# How far back and ahead the feed reaches: calendar apps re-read it every few hours.
PAST = timedelta(days=30)
AHEAD = timedelta(days=180)
EVENT_LENGTH = timedelta(hours=2)


def build(user: Any, *, host: str, only_mine: bool = False) -> bytes:
    """The feed as iCalendar bytes, in three queries (and the permissions, if not read).
    `only_mine` keeps to the events the user organizes or whose invitees include a partner
    of theirs (CalendarFeed.events), as the daily digest does; else all the practice's."""
    today = timezone.localdate()
    start, end = today - PAST, today + AHEAD
    calendar = icalendar.Calendar()
    calendar.add("prodid", "-//Referral CRM//Field calendar//EN")
    calendar.add("version", "2.0")
    calendar.add("x-wr-calname", f"{settings.PRACTICE_NAME}: field work")
    calendar.add("x-wr-timezone", settings.TIME_ZONE)
    stamp = timezone.now()

    visits = (
        PlannedVisit.objects.filter(liaison=user, planned_on__range=(start, end))
        .exclude(status=PlannedVisit.Status.SKIPPED)
        .select_related("organization")
        .order_by("planned_on", "position")
    )
    for visit in visits:
        office = visit.organization
        entry = icalendar.Event()
        entry.add("uid", f"visit-{visit.pk}@{host}")
        entry.add("dtstamp", stamp)
        entry.add("summary", f"{visit.position + 1}. Visit {office.name}")
        entry.add("dtstart", visit.planned_on)
        entry.add("dtend", visit.planned_on + timedelta(days=1))
        entry.add("location", ", ".join(office.address_lines))
        entry.add("status", "CONFIRMED")
        calendar.add_component(entry)

    events = Event.objects.filter(starts_at__date__range=(start, end)).order_by("starts_at")
    if not user.has_perm("outreach.view_event"):
        # Events are the liaisons' and managers' (a coordinator has no events page).
        events = events.none()
    elif only_mine:
        events = events.filter(
            Q(organizer=user)
            # Whatever the partner answered, and cancelled ones too: an entry that vanishes
            # from a feed stays in some calendar apps, where CANCELLED strikes it through.
            | Exists(Invitation.objects.filter(event=OuterRef("pk"), provider__owner=user))
        )
    for event in events:
        summary = f"{event.get_kind_display()}: {event.name}"
        entry = icalendar.Event()
        entry.add("uid", f"event-{event.pk}@{host}")
        entry.add("dtstamp", stamp)
        # Calendar apps take an entry with the same UID and a higher SEQUENCE as the new
        # version of it: each new date or place goes up one, and so does cancelling.
        entry.add("sequence", event.schedule_version - 1 + int(event.is_cancelled))
        if event.is_cancelled:
            # Kept, not dropped: with STATUS:CANCELLED an app strikes it through, where an
            # entry that simply vanishes from a feed stays in some of them.
            entry.add("status", "CANCELLED")
            summary = f"Cancelled: {summary}"
        else:
            entry.add("status", "CONFIRMED")
        entry.add("summary", summary)
        entry.add("dtstart", event.starts_at)
        entry.add("dtend", event.starts_at + EVENT_LENGTH)
        if event.place:
            entry.add("location", event.place)
        calendar.add_component(entry)

    # All-day entries rather than iCalendar task components: most calendar apps ignore those in a feed.
    tasks = (
        Task.objects.open()
        .filter(assignee=user, due_on__range=(start, end))
        .select_related("provider")
        .order_by("due_on", "pk")
    )
    for task in tasks:
        entry = icalendar.Event()
        entry.add("uid", f"task-{task.pk}@{host}")
        entry.add("dtstamp", stamp)
        entry.add("summary", f"Due: {task.summary_outside}")
        entry.add("dtstart", task.due_on)
        entry.add("dtend", task.due_on + timedelta(days=1))
        entry.add("transp", "TRANSPARENT")
        calendar.add_component(entry)
    return calendar.to_ical()
