"""Inquiries: every prospective new patient, by source, for the conversion funnel."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils import timezone

from referrals.models.referrals import Referral


class InquiryQuerySet(models.QuerySet["Inquiry"]):
    def front_desk(self) -> InquiryQuerySet:
        """Inquiries from sources other than a partner's referral (a referral's own moves
        with the referral)."""
        return self.filter(referral__isnull=True)

    def open(self) -> InquiryQuerySet:
        return self.filter(status__in=[Inquiry.Status.INQUIRY, Inquiry.Status.SCHEDULED])

    def conversion_by_source(self, *, since: datetime, until: datetime) -> list[dict[str, Any]]:
        """Per source, inquiries received in [since, until) and how many reached scheduling
        and a first visit: one grouped query. Every source is listed, with zeros, so a
        source with no inquiries shows as such rather than vanishing."""
        reached_scheduling = [Inquiry.Status.SCHEDULED, Inquiry.Status.SEEN_NEW_PATIENT]
        counts = {
            row["source"]: row
            for row in self.filter(received_at__gte=since, received_at__lt=until)
            .order_by()
            .values("source")
            .annotate(
                inquiries=models.Count("pk"),
                # Reached scheduling, even if lost after (the booking was made).
                scheduled=models.Count(
                    "pk",
                    filter=Q(status__in=reached_scheduling) | Q(scheduled_at__isnull=False),
                ),
                seen=models.Count("pk", filter=Q(status=Inquiry.Status.SEEN_NEW_PATIENT)),
                lost=models.Count("pk", filter=Q(status=Inquiry.Status.LOST)),
            )
        }
        rows = []
        for source, label in Inquiry.Source.choices:
            row = counts.get(source, {"inquiries": 0, "scheduled": 0, "seen": 0, "lost": 0})
            total = row["inquiries"]
            rows.append(
                {
                    "source": source,
                    "label": label,
                    "inquiries": total,
                    "scheduled": row["scheduled"],
                    "seen": row["seen"],
                    "lost": row["lost"],
                    "scheduled_rate": row["scheduled"] / total * 100 if total else None,
                    "conversion_rate": row["seen"] / total * 100 if total else None,
                }
            )
        return rows


class Inquiry(models.Model):
    """A prospective new patient from any source, so every source runs the same funnel
    (inquiry → scheduled → seen as a new patient) and conversion can be compared from the
    practice's own data. Inbound referrals create theirs in referral_log and move it in
    referral_transition; other sources are entered by the front desk."""

    class Source(models.TextChoices):
        PARTNER_REFERRAL = "partner_referral", "Partner referral"
        WEB = "web", "Web"
        ADVERTISING = "advertising", "Advertising"
        INSURANCE_DIRECTORY = "insurance_directory", "Insurance directory"
        SELF = "self", "Self (walk-in, word of mouth)"
        OTHER = "other", "Other"

    class Status(models.TextChoices):
        INQUIRY = "inquiry", "Inquiry"
        SCHEDULED = "scheduled", "Scheduled"
        SEEN_NEW_PATIENT = "seen_new_patient", "Seen as a new patient"
        LOST = "lost", "Lost"

    source = models.CharField(max_length=20, choices=Source.choices)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.INQUIRY)
    referral = models.OneToOneField(
        Referral, on_delete=models.CASCADE, null=True, blank=True, related_name="inquiry"
    )
    received_at = models.DateTimeField(default=timezone.now)
    scheduled_at = models.DateTimeField(null=True, blank=True)
    seen_at = models.DateTimeField(null=True, blank=True)
    lost_at = models.DateTimeField(null=True, blank=True)
    # Lost because the patient did not come to the visit booked (the referral was closed
    # after a no-show): one of the reasons the conversion report lists.
    missed_visit = models.BooleanField(default=False)
    note = models.CharField(
        max_length=300, blank=True, help_text="No patient details here: use a referral."
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True
    )

    objects = InquiryQuerySet.as_manager()

    class Meta:
        ordering = ["-received_at", "-pk"]
        verbose_name_plural = "inquiries"
        indexes = [
            # The conversion report groups a period's inquiries by source.
            models.Index(fields=["received_at", "source"], name="inquiry_period_idx"),
            # The few lost after a no-show, counted for a period without the rest.
            models.Index(
                fields=["received_at"],
                condition=Q(missed_visit=True),
                name="inquiry_missed_visit_idx",
            ),
        ]
        constraints = [
            # Only a partner referral has a referral behind it.
            models.CheckConstraint(
                condition=Q(referral__isnull=True) | Q(source="partner_referral"),
                name="inquiry_referral_only_for_partner_referrals",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_source_display()} inquiry #{self.pk}"

    def clean(self) -> None:
        if self.referral_id is None and self.source == self.Source.PARTNER_REFERRAL:
            raise ValidationError(
                {"source": "Log a partner referral as a referral; its inquiry follows it."}
            )
        if self.status == self.Status.INQUIRY:
            # Put back to the start (a step marked by mistake, or the patient is being
            # chased again): nothing was booked, seen or lost, and the report counts a
            # booking by its date (one lost after it was booked still reached scheduling).
            self.scheduled_at = self.seen_at = self.lost_at = None
        if self.status == self.Status.SCHEDULED and self.scheduled_at is None:
            self.scheduled_at = timezone.now()
        if self.status == self.Status.SEEN_NEW_PATIENT and self.seen_at is None:
            self.seen_at = timezone.now()
        if self.status == self.Status.LOST and self.lost_at is None:
            self.lost_at = timezone.now()
