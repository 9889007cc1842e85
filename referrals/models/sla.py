"""Service-level targets: how fast each urgency must be answered and seen."""

from __future__ import annotations

from datetime import timedelta

from django.core.validators import MaxValueValidator
from django.db import models

from referrals.models.pipeline import Urgency

# (first contact hours, appointment days) per urgency, until the practice sets its own.
DEFAULT_SLA_TARGETS: dict[str, tuple[int, int]] = {
    Urgency.STAT: (2, 1),
    Urgency.URGENT: (24, 7),
    Urgency.ROUTINE: (72, 30),
}


def urgency_within(within: timedelta, appointment: dict[str, timedelta]) -> str:
    """The urgency of a referral asked to be seen within `within`: the least urgent whose
    appointment target (`appointment`, by urgency) meets it, so its clock warns before
    the time asked for has passed; stat when none does (within hours)."""
    for urgency in (Urgency.ROUTINE, Urgency.URGENT, Urgency.STAT):
        if appointment[urgency] <= within:
            return urgency
    return Urgency.STAT


# The longest target a practice may set, for first contact or the appointment.
MAX_TARGET_DAYS = 365


class SlaState(models.TextChoices):
    CONTACT_OVERDUE = "contact_overdue", "First contact overdue"
    APPOINTMENT_OVERDUE = "appointment_overdue", "Appointment overdue"
    # The appointment's day is over and nobody recorded whether the patient came.
    OUTCOME_DUE = "outcome_due", "Seen or no-show? Not recorded"
    APPOINTMENT_LATE = "appointment_late", "Appointment later than target"
    ON_TRACK = "on_track", "On track"
    # Declined, cancelled or closed: no clock runs any more (its history says how it went).
    ENDED = "ended", "Ended"


# The states that need someone to act now: they stand out in the queue and count as overdue.
OVERDUE_STATES = (SlaState.CONTACT_OVERDUE, SlaState.APPOINTMENT_OVERDUE, SlaState.OUTCOME_DUE)


class SlaTarget(models.Model):
    """How quickly a referral of each urgency must be answered and seen. Data, not code,
    so a practice can tighten its own targets in the admin."""

    urgency = models.CharField(max_length=10, choices=Urgency.choices, unique=True)
    # At most a year each: every work-queue row shows its deadlines, and one beyond the
    # calendar Python reads (year 9999) made the queue a server error for everyone.
    first_contact_hours = models.PositiveIntegerField(
        help_text="Hours from receipt to the first answer (accept, decline or hold).",
        validators=[MaxValueValidator(MAX_TARGET_DAYS * 24)],
    )
    appointment_days = models.PositiveIntegerField(
        help_text="Days from receipt to the appointment.",
        validators=[MaxValueValidator(MAX_TARGET_DAYS)],
    )

    class Meta:
        ordering = ["first_contact_hours"]
        verbose_name = "SLA target"

    def __str__(self) -> str:
        return (
            f"{self.get_urgency_display()}: contact {self.first_contact_hours} h, "
            f"appointment {self.appointment_days} d"
        )

    @property
    def first_contact(self) -> timedelta:
        return timedelta(hours=self.first_contact_hours)

    @property
    def appointment(self) -> timedelta:
        return timedelta(days=self.appointment_days)

    @classmethod
    def urgency_within(cls, within: timedelta) -> str:
        """The urgency of a referral asked to be seen within `within`, by the practice's
        own appointment targets (see urgency_within)."""
        targets = cls.current()
        return urgency_within(within, {urgency: t.appointment for urgency, t in targets.items()})

    @classmethod
    def current(cls) -> dict[str, SlaTarget]:
        """Targets by urgency; an urgency missing from the table falls back to the default
        so a deleted row cannot make every referral look on track."""
        targets: dict[str, SlaTarget] = {t.urgency: t for t in cls.objects.all()}
        for urgency, (hours, days) in DEFAULT_SLA_TARGETS.items():
            targets.setdefault(
                urgency, cls(urgency=urgency, first_contact_hours=hours, appointment_days=days)
            )
        return targets
