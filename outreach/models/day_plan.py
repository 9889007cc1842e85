"""The liaison's day: planned visits and their history, the calendar feed, the daily digest."""

from __future__ import annotations

import hashlib
from datetime import date
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from outreach.models.activities import Activity

if TYPE_CHECKING:
    from django.contrib.auth.models import User


class PlannedVisitQuerySet(models.QuerySet["PlannedVisit"]):
    def for_user(self, user: User, *, write: bool = False) -> PlannedVisitQuerySet:
        """A plan belongs to its liaison; managers may read every liaison's plan."""
        if not user.has_perm(
            "outreach.change_plannedvisit" if write else "outreach.view_plannedvisit"
        ):
            return self.none()
        if not write and user.has_perm("outreach.view_all_tasks"):
            return self
        return self.filter(liaison=user)

    def on(self, day: date) -> PlannedVisitQuerySet:
        return self.filter(planned_on=day)


class PlannedVisit(models.Model):
    """One office on a liaison's plan for a day, in route order, and what came of it."""

    class Status(models.TextChoices):
        PLANNED = "planned", "Planned"
        DONE = "done", "Visited"
        SKIPPED = "skipped", "Skipped"

    liaison = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="planned_visits"
    )
    organization = models.ForeignKey(
        "partners.Organization", on_delete=models.CASCADE, related_name="planned_visits"
    )
    planned_on = models.DateField()
    position = models.PositiveSmallIntegerField(default=0)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PLANNED)
    activity = models.OneToOneField(
        Activity, on_delete=models.SET_NULL, null=True, blank=True, related_name="planned_visit"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    objects = PlannedVisitQuerySet.as_manager()

    class Meta:
        ordering = ["planned_on", "position", "pk"]
        constraints = [
            # An office appears once on a day's plan, however often "add" is tapped.
            models.UniqueConstraint(
                fields=["liaison", "planned_on", "organization"], name="plannedvisit_once_a_day"
            ),
        ]
        indexes = [
            models.Index(fields=["liaison", "planned_on"], name="plannedvisit_day_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.organization_id} on {self.planned_on}"


class PlannedVisitEvent(models.Model):
    """One change of a planned visit's status, with who, when and why: the history of
    the day plan (a skipped visit keeps its reason here, not in a text field)."""

    visit = models.ForeignKey(PlannedVisit, on_delete=models.CASCADE, related_name="events")
    from_status = models.CharField(max_length=10, choices=PlannedVisit.Status.choices)
    to_status = models.CharField(max_length=10, choices=PlannedVisit.Status.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    at = models.DateTimeField(default=timezone.now)
    reason = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["at", "pk"]
        constraints = [
            # A skip must say why; the reason is what the next plan starts from.
            models.CheckConstraint(
                condition=~Q(to_status="skipped") | ~Q(reason=""),
                name="plannedvisitevent_skip_has_reason",
            ),
        ]

    def __str__(self) -> str:
        return f"Visit {self.visit_id}: {self.from_status} -> {self.to_status}"


class CalendarFeed(models.Model):
    """A liaison's private iCal URL. Only a hash of the token is stored: the URL is shown
    once when made, and a leaked database does not open anyone's calendar."""

    class Events(models.TextChoices):
        ALL = "all", "All practice events"
        MINE = "mine", "Only mine: events I organize or my partners are invited to"

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="calendar_feed"
    )
    token_hash = models.CharField(max_length=64, unique=True)
    # Which practice events the feed carries. All by default: the feed carried every event
    # before the choice existed, and a subscribed calendar should not lose entries unasked.
    events = models.CharField(
        "events in the feed", max_length=10, choices=Events.choices, default=Events.ALL
    )
    created_at = models.DateTimeField(default=timezone.now)
    last_read_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"Calendar feed of user {self.user_id}"

    @staticmethod
    def hash_token(token: str) -> str:
        return hashlib.sha256(token.encode()).hexdigest()


class DigestDelivery(models.Model):
    """One row per liaison and day: the idempotency key of the daily digest email, so a
    beat that fires twice or a retried task never sends the same day's digest twice."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    day = models.DateField()
    sent_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "day"], name="digest_once_per_user_and_day"),
        ]

    def __str__(self) -> str:
        return f"Digest for {self.user_id} on {self.day}"
