"""The patient-data audit trail: who saw, changed, downloaded or exported whose details.

Rows are only ever added. The app has no page that edits them, the admin is read-only,
the model itself refuses updates and deletes, and so does the database, whoever sends the
SQL (triggers installed by migration 0002, see audit/triggers.py).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models


class AppendOnlyError(RuntimeError):
    pass


class PatientDataAccessQuerySet(models.QuerySet["PatientDataAccess"]):
    def for_list(self) -> PatientDataAccessQuerySet:
        return self.select_related("user")

    def update(self, **kwargs: Any) -> int:
        raise AppendOnlyError("The patient-data audit trail cannot be changed.")

    def delete(self) -> tuple[int, dict[str, int]]:
        raise AppendOnlyError("The patient-data audit trail cannot be deleted.")


class PatientDataAccess(models.Model):
    class Action(models.TextChoices):
        VIEW = "view", "Viewed"
        LIST = "list", "Listed"
        CREATE = "create", "Created"
        CHANGE = "change", "Changed"
        # A file: a referral's document, or a letter about it as a PDF (the fields say which).
        DOWNLOAD = "download", "Downloaded"
        EXPORT = "export", "Exported"
        DELETE = "delete", "Deleted"

    class Source(models.TextChoices):
        APP = "app", "Signed-in user"
        INTAKE_LINK = "intake_link", "Office intake link"
        HL7 = "hl7", "HL7 import"
        COMMAND = "command", "Command line"
        API = "api", "API token (REST or FHIR)"

    at = models.DateTimeField(auto_now_add=True, db_index=True)
    # SET_NULL would rewrite audit rows; PROTECT keeps a user who has touched patient data
    # (deactivate them instead of deleting).
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    source = models.CharField(max_length=12, choices=Source.choices, default=Source.APP)
    action = models.CharField(max_length=10, choices=Action.choices)
    # A plain id, not a foreign key: the trail must outlive a deleted referral unchanged.
    referral_id = models.BigIntegerField()
    # Field NAMES only, never values: the trail itself must hold no patient data.
    fields = models.JSONField(default=list, blank=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    request_id = models.CharField(max_length=64, blank=True)

    objects = PatientDataAccessQuerySet.as_manager()

    class Meta:
        ordering = ["-at", "-pk"]
        verbose_name = "patient data access"
        verbose_name_plural = "patient data accesses"
        indexes = [
            # The audit page filters by person and sorts by time.
            models.Index(fields=["user", "-at"], name="audit_user_at_idx"),
            # "Who has seen this patient's referral?", newest first.
            models.Index(fields=["referral_id", "-at"], name="audit_referral_at_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.get_action_display()} referral #{self.referral_id}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None:
            raise AppendOnlyError("The patient-data audit trail cannot be changed.")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise AppendOnlyError("The patient-data audit trail cannot be deleted.")

    @property
    def field_labels(self) -> list[str]:
        """The fields as the referral page names them ("patient last name"), not columns."""
        from django.apps import apps
        from django.core.exceptions import FieldDoesNotExist

        from core.meta import own_field

        referral = apps.get_model("referrals", "Referral")
        labels = []
        for name in self.fields:
            if name == "attachments":
                # The referral's documents as a whole (a reverse relation, not a column).
                labels.append("documents")
                continue
            if name == "letter":
                # A letter about the referral (initials and dates), not one of its columns.
                labels.append("letter")
                continue
            try:
                labels.append(str(own_field(referral, name).verbose_name))
            except FieldDoesNotExist:
                labels.append(name)
        return labels
