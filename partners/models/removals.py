"""The record a partner leaves when it goes away (ProviderRemoval): a tombstone for API
syncs, which otherwise could not tell a removed partner from one that never changed."""

from __future__ import annotations

from django.db import models
from django.db.models import Q


class ProviderRemoval(models.Model):
    """A provider deleted, or merged into another, and when. Written by Provider.delete()
    and ProviderQuerySet.delete() in the delete's own transaction. Ids and the NPI only:
    nothing about patients, nor names (a deleted partner may have asked to be forgotten)."""

    class Reason(models.TextChoices):
        DELETED = "deleted", "Deleted"
        MERGED = "merged", "Merged into another partner"

    # The removed provider's id: a plain number, as the row it named is gone (an id is
    # never handed out again, so one record per id).
    provider_id = models.PositiveBigIntegerField(unique=True)
    npi = models.CharField("NPI", max_length=10, blank=True)
    removed_at = models.DateTimeField()
    reason = models.CharField(max_length=10, choices=Reason.choices)
    # The survivor's id, a number rather than a key: it may itself be removed later, and
    # its record then says where it went.
    merged_into = models.PositiveBigIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["removed_at", "pk"]
        verbose_name = "partner removal"
        indexes = [
            # API syncs ask for the removals since a time, oldest first.
            models.Index(fields=["removed_at", "id"], name="providerremoval_since_idx"),
        ]
        constraints = [
            # A merge names its survivor; a deletion has none.
            models.CheckConstraint(
                condition=Q(reason="merged", merged_into__isnull=False)
                | Q(reason="deleted", merged_into__isnull=True),
                name="providerremoval_merged_into_iff_merged",
            ),
        ]

    def __str__(self) -> str:
        if self.merged_into is not None:
            return f"Provider {self.provider_id} merged into {self.merged_into}"
        return f"Provider {self.provider_id} deleted"


class OrganizationRemoval(models.Model):
    """An office deleted, or merged into another, and when: the tombstone FHIR reads of
    Organization answer 410 Gone from. Written by Organization.delete() and its queryset's
    delete() in the delete's own transaction. Ids only."""

    class Reason(models.TextChoices):
        DELETED = "deleted", "Deleted"
        MERGED = "merged", "Merged into another office"

    organization_id = models.PositiveBigIntegerField(unique=True)
    removed_at = models.DateTimeField()
    reason = models.CharField(max_length=10, choices=Reason.choices)
    merged_into = models.PositiveBigIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["removed_at", "pk"]
        verbose_name = "office removal"
        constraints = [
            models.CheckConstraint(
                condition=Q(reason="merged", merged_into__isnull=False)
                | Q(reason="deleted", merged_into__isnull=True),
                name="organizationremoval_merged_into_iff_merged",
            ),
        ]

    def __str__(self) -> str:
        if self.merged_into is not None:
            return f"Office {self.organization_id} merged into {self.merged_into}"
        return f"Office {self.organization_id} deleted"
