"""A referral's history: one event row per status move, change of coordinator or edit."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from referrals.models.pipeline import Status
from referrals.models.referrals import Referral


class ReferralEventQuerySet(models.QuerySet["ReferralEvent"]):
    def for_timeline(self) -> ReferralEventQuerySet:
        return self.select_related("actor", "from_assignee", "to_assignee")


class ReferralEvent(models.Model):
    """The referral's history, one row per change: a status move, a change of coordinator
    (claim, reassignment, bulk assignment, edit) or an edit of its details."""

    class Kind(models.TextChoices):
        STATUS = "status", "Status change"
        ASSIGNMENT = "assignment", "Coordinator change"
        EDIT = "edit", "Details edited"

    referral = models.ForeignKey(Referral, on_delete=models.CASCADE, related_name="events")
    # db_default too: bulk loaders (the scale harness COPY) write status events without it.
    kind = models.CharField(
        max_length=10, choices=Kind.choices, default=Kind.STATUS, db_default=Kind.STATUS
    )
    from_status = models.CharField(max_length=12, choices=Status.choices, blank=True)
    # Empty for events that are not status moves.
    to_status = models.CharField(max_length=12, choices=Status.choices, blank=True)
    # Assignment events only. Not indexed: nothing looks events up by them, and users who
    # touched patient data are deactivated rather than deleted (see audit.PatientDataAccess).
    from_assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
    )
    to_assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
    )
    # Edits only: [{"field": label, "old": text, "new": text}], in form order. Patient
    # fields are listed by name alone, never with their values: the history is shown to
    # roles that see initials only.
    changes = models.JSONField(null=True, blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True
    )
    at = models.DateTimeField(default=timezone.now)
    note = models.TextField(blank=True)

    objects = ReferralEventQuerySet.as_manager()

    class Meta:
        ordering = ["at", "pk"]
        indexes = [
            # The loop sweep looks for referrals that reached a status.
            models.Index(fields=["to_status", "at"], name="referralevent_status_idx"),
        ]
        constraints = [
            # A status event names the status reached; no other event does, so searches
            # by to_status (the loop sweep) never pick up an assignment or an edit.
            models.CheckConstraint(
                condition=(Q(kind="status") & ~Q(to_status=""))
                | (~Q(kind="status") & Q(to_status="")),
                name="referralevent_status_iff_kind_status",
            ),
        ]

    def __str__(self) -> str:
        if self.kind == self.Kind.ASSIGNMENT:
            return (
                f"{self.referral_id}: coordinator {self.from_assignee_id} → {self.to_assignee_id}"
            )
        if self.kind == self.Kind.EDIT:
            return f"{self.referral_id}: details edited"
        return f"{self.referral_id}: {self.from_status or 'new'} → {self.to_status}"
