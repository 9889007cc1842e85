"""How referrals arrive: office intake links, their submissions, documents, HL7 imports."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone

from intake.storage import private_storage

if TYPE_CHECKING:
    from django.contrib.auth.models import User


def hash_token(raw: str) -> str:
    return hashlib.sha256(raw.encode("utf-8", "surrogatepass")).hexdigest()


class IntakeLinkQuerySet(models.QuerySet["IntakeLink"]):
    def usable(self) -> IntakeLinkQuerySet:
        return self.filter(revoked_at__isnull=True).filter(
            Q(expires_at__isnull=True) | Q(expires_at__gt=timezone.now())
        )


class IntakeLink(models.Model):
    """A secret link a referring office uses to send us referrals without an account.

    Only the SHA-256 of the token is stored: the raw token is shown once, when the link
    is made. Someone who reads the database (a backup, a report) cannot submit through
    it, and revoking is a column, not a change of the site's secret key."""

    organization = models.ForeignKey(
        "partners.Organization", on_delete=models.CASCADE, related_name="intake_links"
    )
    label = models.CharField(
        max_length=100, blank=True, help_text="Who it was given to, e.g. “front desk”."
    )
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    objects = IntakeLinkQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"Intake link for {self.organization}" + (f" ({self.label})" if self.label else "")

    @staticmethod
    def new_token() -> str:
        return secrets.token_urlsafe(32)

    def set_token(self, raw: str) -> None:
        self.token_hash = hash_token(raw)

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None

    @property
    def is_expired(self) -> bool:
        return self.expires_at is not None and self.expires_at <= timezone.now()

    @property
    def is_usable(self) -> bool:
        return not self.is_revoked and not self.is_expired

    def revoke(self, *, by: User | None) -> None:
        self.revoked_at = timezone.now()
        self.revoked_by = by
        self.save(update_fields=["revoked_at", "revoked_by"])


def new_reference() -> str:
    # Unambiguous characters only (no 0/O, 1/I/L): it is read out over the phone.
    alphabet = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
    return "".join(secrets.choice(alphabet) for _ in range(8))


class IntakeSubmission(models.Model):
    """A referral an office sent through its link: what the office told us about itself."""

    link = models.ForeignKey(IntakeLink, on_delete=models.PROTECT, related_name="submissions")
    referral = models.OneToOneField(
        "referrals.Referral", on_delete=models.CASCADE, related_name="intake_submission"
    )
    # The confirmation number the office sees; deliberately not the sequential pk, which
    # would tell anyone how many referrals the practice receives.
    reference = models.CharField(max_length=8, unique=True, default=new_reference)
    contact_name = models.CharField("your name", max_length=100)
    contact_phone = models.CharField("call-back phone", max_length=30, blank=True)
    provider_added = models.BooleanField(
        default=False, help_text="The office named a provider we did not have yet."
    )
    submitted_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-submitted_at"]
        indexes = [
            # The per-link throttle counts a link's recent submissions.
            models.Index(fields=["link", "submitted_at"], name="intake_throttle_idx"),
        ]

    def __str__(self) -> str:
        return self.reference


def attachment_path(instance: ReferralAttachment, filename: str) -> str:
    # Never the uploader's file name on disk: it may name the patient, or try ../ tricks.
    return f"referrals/{timezone.now():%Y/%m}/{uuid.uuid4().hex}{instance.extension}"


class ReferralAttachment(models.Model):
    """A faxed, scanned or uploaded document belonging to a referral."""

    class Kind(models.TextChoices):
        PDF = "application/pdf", "PDF"
        PNG = "image/png", "PNG image"
        JPEG = "image/jpeg", "JPEG image"
        TIFF = "image/tiff", "TIFF image"

    EXTENSIONS: dict[str, str] = {
        Kind.PDF: ".pdf",
        Kind.PNG: ".png",
        Kind.JPEG: ".jpg",
        Kind.TIFF: ".tif",
    }

    referral = models.ForeignKey(
        "referrals.Referral", on_delete=models.CASCADE, related_name="attachments"
    )
    file = models.FileField(storage=private_storage, upload_to=attachment_path, max_length=200)
    content_type = models.CharField(max_length=40, choices=Kind.choices)
    original_name = models.CharField(max_length=200, blank=True)
    size = models.PositiveBigIntegerField()
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        help_text="Empty when the referring office uploaded it through its link.",
    )
    uploaded_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["uploaded_at", "pk"]

    def __str__(self) -> str:
        return f"{self.get_content_type_display()} for referral #{self.referral_id}"

    @property
    def extension(self) -> str:
        return self.EXTENSIONS.get(self.content_type, ".bin")

    def get_download_url(self) -> str:
        return reverse("intake:attachment_download", args=[self.pk])


class Hl7Import(models.Model):
    """One imported electronic referral order (an HL7 v2 message, or a FHIR ServiceRequest
    posted to the API); its message id makes a re-import harmless."""

    referral = models.OneToOneField(
        "referrals.Referral", on_delete=models.CASCADE, related_name="hl7_import"
    )
    sending_application = models.CharField(max_length=200, blank=True)
    message_control_id = models.CharField(max_length=200)
    placer_order_number = models.CharField(max_length=200, blank=True)
    imported_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    imported_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            # The same message from the same sender is the same order: import it once.
            models.UniqueConstraint(
                fields=["sending_application", "message_control_id"], name="hl7_message_once"
            ),
        ]

    def __str__(self) -> str:
        return f"HL7 {self.message_control_id}"
