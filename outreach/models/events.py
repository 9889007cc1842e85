"""Practice events partners are invited to, and their invitations."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.urls import reverse

if TYPE_CHECKING:
    pass


class Event(models.Model):
    """A practice event partners are invited to: the annual referral-partner meeting, a
    dinner, a lunch-and-learn."""

    class Kind(models.TextChoices):
        ANNUAL_MEETING = "annual_meeting", "Annual meeting"
        DINNER = "dinner", "Dinner"
        LUNCH_AND_LEARN = "lunch_and_learn", "Lunch-and-learn"
        CME = "cme", "CME"
        OPEN_HOUSE = "open_house", "Open house"
        OTHER = "other", "Other"

    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.ANNUAL_MEETING)
    starts_at = models.DateTimeField()
    place = models.CharField(max_length=300, blank=True)
    organizer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="events"
    )
    notes = models.TextField(blank=True)
    # What the event cost the practice (catering, venue); shared per head among everyone
    # who came, and each physician's share goes in the gifts and meals ledger.
    cost = models.DecimalField(
        "cost ($)",
        max_digits=9,
        decimal_places=2,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal("0"))],
        help_text="Catering, venue and the like: split evenly across everyone who came.",
    )
    remind_days_before = models.PositiveSmallIntegerField(
        "reminder days before",
        default=7,
        validators=[MaxValueValidator(90)],
        help_text="Invitees who have not declined get a reminder letter this many days "
        "before, by their preferred channel. 0 sends none.",
    )
    # Goes up each time the event moves to a new date or place (outreach.meetings.event_save):
    # each version gets its own reminder, numbered by it (Letter.sequence).
    schedule_version = models.PositiveSmallIntegerField(default=1, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    # The version an edit form was opened at: a save over a colleague's later change is
    # refused (outreach.views.field.event_update).
    updated_at = models.DateTimeField(auto_now=True)
    # Set once, by outreach.services.events.event_cancel: who called it off, when and why.
    cancelled_at = models.DateTimeField(null=True, blank=True, editable=False)
    cancelled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        editable=False,
        related_name="+",
    )
    cancel_reason = models.CharField(max_length=300, blank=True, editable=False)

    class Meta:
        ordering = ["-starts_at", "-pk"]
        constraints = [
            models.CheckConstraint(
                condition=Q(cost__isnull=True) | Q(cost__gte=0), name="event_cost_not_negative"
            ),
            # A cancellation always says why: invitees' letters and colleagues read it.
            models.CheckConstraint(
                condition=Q(cancelled_at__isnull=True) | ~Q(cancel_reason=""),
                name="event_cancel_has_reason",
            ),
        ]
        indexes = [
            # The reminder run and the annual-meeting lookups filter on kind and date.
            models.Index(fields=["kind", "starts_at"], name="event_kind_starts_idx"),
        ]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("outreach:event_detail", args=[self.pk])

    @property
    def is_cancelled(self) -> bool:
        return self.cancelled_at is not None


class Invitation(models.Model):
    """One invitee of an event (a provider or a staff member), their RSVP and whether
    they came."""

    class Rsvp(models.TextChoices):
        INVITED = "invited", "No reply yet"
        YES = "yes", "Coming"
        MAYBE = "maybe", "Maybe"
        NO = "no", "Not coming"

    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="invitations")
    provider = models.ForeignKey(
        "partners.Provider", on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    staff = models.ForeignKey(
        "partners.StaffMember", on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    rsvp = models.CharField(max_length=10, choices=Rsvp.choices, default=Rsvp.INVITED)
    attended = models.BooleanField(default=False)

    class Meta:
        ordering = ["pk"]
        constraints = [
            # An invitation is for exactly one person, provider or staff.
            models.CheckConstraint(
                condition=(Q(provider__isnull=False) & Q(staff__isnull=True))
                | (Q(provider__isnull=True) & Q(staff__isnull=False)),
                name="invitation_one_person",
            ),
            models.UniqueConstraint(
                fields=["event", "provider"],
                condition=Q(provider__isnull=False),
                name="invitation_provider_once",
            ),
            models.UniqueConstraint(
                fields=["event", "staff"],
                condition=Q(staff__isnull=False),
                name="invitation_staff_once",
            ),
        ]

    def __str__(self) -> str:
        return f"Invitation {self.pk} to event {self.event_id}"

    @property
    def person(self) -> object:
        return self.provider or self.staff
