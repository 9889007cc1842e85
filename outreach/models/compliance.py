"""The gifts and meals ledger: the yearly limit per physician and each one's shares."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q

from outreach.models.activities import Activity

if TYPE_CHECKING:
    pass


class ComplianceLimit(models.Model):
    """The practice's non-monetary compensation limit per physician for one calendar year
    (Stark law, 42 CFR 411.357(k)). CMS adjusts it every year, so it is data a manager
    enters, not a constant in code."""

    year = models.PositiveSmallIntegerField(unique=True)
    amount = models.DecimalField(
        "limit ($)", max_digits=9, decimal_places=2, validators=[MinValueValidator(Decimal("1"))]
    )
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-year"]
        permissions = [
            ("view_compliance_report", "Can see every physician's gifts and meals totals"),
            ("override_compliance_limit", "Can log a gift or meal over the yearly limit"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="compliance_limit_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.year}: ${self.amount}"

    @classmethod
    def for_year(cls, year: int) -> Decimal | None:
        return cls.applying_to(year)[0]

    @classmethod
    def applying_to(cls, year: int) -> tuple[Decimal | None, int | None]:
        """The limit that holds gifts and meals of `year`, and the year it was set for.
        A year nobody has set yet (January, before the manager enters CMS's new figure; a
        gift dated back) is held to the nearest year's before it, since CMS only raises
        the limit, else the nearest after: never to no limit at all while one is known."""
        nearest = (
            cls.objects.filter(year__lte=year).order_by("-year").values_list("amount", "year")
        ).first() or cls.objects.filter(year__gt=year).order_by("year").values_list(
            "amount", "year"
        ).first()
        return nearest if nearest else (None, None)


class ActivityShare(models.Model):
    """One physician's share of the cost of a meal, gift or event: the ledger rows that
    accrue per calendar year against the limit. Written only by `activity_log`."""

    activity = models.ForeignKey(Activity, on_delete=models.CASCADE, related_name="shares")
    provider = models.ForeignKey(
        "partners.Provider", on_delete=models.CASCADE, related_name="gift_shares"
    )
    # Denormalised from activity.occurred_at so the yearly total is one indexed filter.
    year = models.PositiveSmallIntegerField()
    amount = models.DecimalField(max_digits=9, decimal_places=2)

    class Meta:
        ordering = ["-year", "provider"]
        constraints = [
            models.UniqueConstraint(
                fields=["activity", "provider"], name="share_once_per_activity"
            ),
            models.CheckConstraint(condition=Q(amount__gte=0), name="share_not_negative"),
        ]
        indexes = [
            # The yearly total per physician (form warning and the manager report).
            models.Index(fields=["year", "provider"], name="share_year_provider_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.provider_id} {self.year}: ${self.amount}"
