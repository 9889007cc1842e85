"""Activities: the visits, calls, lunches and events logged with partners."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone

if TYPE_CHECKING:
    pass


class Activity(models.Model):
    """A touch with a referring office: a visit, a call, a lunch, with who was there and
    the next step the following visit starts from."""

    class Kind(models.TextChoices):
        VISIT = "visit", "Visit"
        DROP_IN = "drop_in", "Drop-in"
        CALL = "call", "Call"
        LUNCH = "lunch", "Lunch"
        MEETING = "meeting", "Meeting"
        EVENT = "event", "Event"
        EMAIL = "email", "Email"
        LETTER = "letter", "Letter"
        GIFT = "gift", "Gift"

    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.VISIT)
    occurred_at = models.DateTimeField(default=timezone.now)
    logged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="activities"
    )
    organization = models.ForeignKey(
        "partners.Organization",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="activities",
    )
    providers = models.ManyToManyField(
        "partners.Provider", blank=True, related_name="activities", verbose_name="providers met"
    )
    staff = models.ManyToManyField(
        "partners.StaffMember", blank=True, related_name="activities", verbose_name="staff met"
    )
    notes = models.TextField(blank=True)
    next_step = models.CharField(max_length=300, blank=True)
    next_step_due = models.DateField("next step due", null=True, blank=True)
    # What a lunch, gift or event cost the practice; shared among the attendees (see
    # outreach.ledger for the rule).
    cost = models.DecimalField(
        "cost ($)",
        max_digits=9,
        decimal_places=2,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal("0"))],
        help_text="Meals and gifts only: the total, split evenly across everyone who attended.",
    )
    limit_override_reason = models.CharField(
        "reason for exceeding the yearly limit",
        max_length=300,
        blank=True,
        help_text="Managers only, when a physician's share goes over the yearly limit.",
    )
    # Set on the activities that record who came to an event: one per attending office,
    # so each office's "where we left off" and last touch count the event.
    event = models.ForeignKey(
        "Event", on_delete=models.SET_NULL, null=True, blank=True, related_name="activities"
    )
    # The key of the form it was logged from (drawn with a new one each time): a post sent
    # again after its answer was lost (a flaky connection) finds this activity instead of
    # logging, charging and following it up twice.
    submission_key = models.UUIDField(null=True, blank=True, unique=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-occurred_at", "-pk"]
        verbose_name_plural = "activities"
        constraints = [
            models.CheckConstraint(
                condition=Q(cost__isnull=True) | Q(cost__gte=0), name="activity_cost_not_negative"
            ),
            # Recording an event's attendance again updates each office's activity
            # instead of adding another (attendees without an office share one).
            models.UniqueConstraint(
                fields=["event", "organization"],
                condition=Q(event__isnull=False, organization__isnull=False),
                name="activity_one_per_event_and_office",
            ),
            models.UniqueConstraint(
                fields=["event"],
                condition=Q(event__isnull=False, organization__isnull=True),
                name="activity_one_officeless_per_event",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} on {self.occurred_at:%Y-%m-%d}"
