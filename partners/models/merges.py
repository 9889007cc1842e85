"""The record of a duplicate provider or office merged into its survivor (PartnerMerge)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from partners.models.organizations import Organization
from partners.models.providers import Provider


class PartnerMerge(models.Model):
    """A duplicate provider or office folded into the survivor: who, when, which ids, and
    how many rows moved. The duplicate row is gone; this is its record."""

    class Kind(models.TextChoices):
        PROVIDER = "provider", "Provider"
        ORGANIZATION = "organization", "Office"

    kind = models.CharField(max_length=12, choices=Kind.choices)
    survivor_provider = models.ForeignKey(
        Provider, on_delete=models.CASCADE, null=True, blank=True, related_name="merges"
    )
    survivor_organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, null=True, blank=True, related_name="merges"
    )
    survivor_id_at_merge = models.PositiveBigIntegerField()
    duplicate_id = models.PositiveBigIntegerField()
    duplicate_name = models.CharField(max_length=300)
    duplicate_npi = models.CharField(max_length=10, blank=True)
    # Rows re-pointed to the survivor, per related table, e.g. {"referrals": 3}.
    moved = models.JSONField(default=dict)
    merged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    merged_at = models.DateTimeField()

    class Meta:
        ordering = ["-merged_at", "-pk"]
        constraints = [
            # Exactly one survivor, of the kind the row says.
            models.CheckConstraint(
                condition=(
                    Q(kind="provider", survivor_organization__isnull=True)
                    | Q(kind="organization", survivor_provider__isnull=True)
                ),
                name="partnermerge_one_survivor_kind",
            ),
        ]

    def __str__(self) -> str:
        return (
            f"{self.get_kind_display()} {self.duplicate_id} merged into {self.survivor_id_at_merge}"
        )
