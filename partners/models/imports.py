"""A partner spreadsheet on its way in (PartnerImport)."""

from __future__ import annotations

import hashlib
import json

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.urls import reverse


class PartnerImport(models.Model):
    """A spreadsheet of partners on its way in: the parsed rows, the column mapping the
    user chose, and the state of applying it (claimed by a conditional update, so a
    double-click or a re-delivered task applies it once)."""

    class Status(models.TextChoices):
        UPLOADED = "uploaded", "Waiting for mapping and confirmation"
        QUEUED = "queued", "Queued"
        APPLYING = "applying", "Importing"
        APPLIED = "applied", "Imported"
        FAILED = "failed", "Failed"

    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    file_name = models.CharField(max_length=200)
    headers = models.JSONField(default=list)
    rows = models.JSONField(default=list)
    # The sheet's row number of each of `rows` (blank rows are not kept but are counted);
    # empty for an import read before numbers were kept: then the header was row 1.
    row_numbers = models.JSONField(default=list, blank=True)
    # How a CSV's text was read (partners.spreadsheets.reading.ENCODINGS), said on the
    # preview so a wrong guess shows; blank for a workbook.
    encoding = models.CharField(max_length=20, blank=True)
    # Column index (string) to import target; see partners.spreadsheets.columns.TARGETS.
    mapping = models.JSONField(default=dict)
    # Who owns the partners the import adds (those it updates keep theirs): a liaison's
    # list, their tasks and thank-yous follow the owner.
    new_owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name="owner of the new partners",
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.UPLOADED)
    total_rows = models.PositiveIntegerField(default=0)
    processed_rows = models.PositiveIntegerField(default=0)
    result = models.JSONField(default=dict, blank=True)
    # The rows the import refused when it ran, as [row number, cells, reasons]: the
    # rejected-rows download of an applied import, which must not be re-planned against a
    # partner list that has changed since. None: not applied (or applied before it was kept).
    rejected_rows = models.JSONField(null=True, blank=True)
    error = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # When a worker last claimed it or reported progress: one silent for STALE_IMPORT was
    # lost (partners.services.imports.partner_imports_to_redrive).
    claimed_at = models.DateTimeField(null=True, blank=True)
    # How many times a worker started applying it: one that kills its worker every time
    # is given up after IMPORT_MAX_ATTEMPTS instead of being re-run for ever.
    attempts = models.PositiveSmallIntegerField(default=0)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [
            # The sweep looks for queued imports whose task message was lost.
            models.Index(
                fields=["claimed_at"],
                condition=Q(status__in=["queued", "applying"]),
                name="partnerimport_pending_idx",
            ),
        ]

    def __str__(self) -> str:
        return self.file_name

    def get_absolute_url(self) -> str:
        return reverse("partners:import_detail", args=[self.pk])

    @property
    def mapping_version(self) -> str:
        """What the preview was computed from (the columns and the owner of new partners),
        as a short digest: the confirmation sends it back, and an import whose mapping was
        changed since (by a colleague, or in another tab) is not applied unseen."""
        chosen = {"mapping": self.mapping, "new_owner": self.new_owner_id}
        return hashlib.sha256(json.dumps(chosen, sort_keys=True).encode()).hexdigest()[:32]

    @property
    def is_running(self) -> bool:
        return self.status in (self.Status.QUEUED, self.Status.APPLYING)

    @property
    def percent(self) -> int:
        return round(100 * self.processed_rows / self.total_rows) if self.total_rows else 0
