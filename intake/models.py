"""How referrals arrive: office intake links, their submissions, documents, HL7 imports."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from django.conf import settings
from django.core import signing
from django.core.files.uploadedfile import UploadedFile
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
    # The key of the opened form it came from (OfficeReferralForm.form_key).
    form_key = models.CharField(max_length=32, blank=True)

    class Meta:
        ordering = ["-submitted_at"]
        indexes = [
            # The per-link throttle counts a link's recent submissions.
            models.Index(fields=["link", "submitted_at"], name="intake_throttle_idx"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["link", "form_key"],
                condition=~models.Q(form_key=""),
                name="intake_submission_once_per_form",
            )
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


def staged_path(instance: StagedDocument, filename: str) -> str:
    # Like attachment_path: a random name, never the uploader's.
    return f"staged/{timezone.now():%Y/%m}/{uuid.uuid4().hex}{instance.extension}"


class StagedDocumentQuerySet(models.QuerySet["StagedDocument"]):
    def owned_by(self, owner: User | IntakeLink) -> StagedDocumentQuerySet:
        if isinstance(owner, IntakeLink):
            return self.filter(link=owner)
        return self.filter(user=owner)

    def stale(self, *, now: datetime | None = None) -> StagedDocumentQuerySet:
        return self.filter(created_at__lt=(now or timezone.now()) - StagedDocument.LIFETIME)


class StagedDocument(models.Model):
    """A document that passed its checks on a form that came back (a typo elsewhere, a
    possible duplicate to confirm). A browser cannot refill a file input, so the server
    keeps the document and the form carries a signed reference to it until it is saved.
    It has no URL: nobody downloads it, it only becomes a ReferralAttachment or is deleted."""

    # The form's reference to it is good this long; the row itself is swept after LIFETIME.
    REFERENCE_MAX_AGE = timedelta(hours=2)
    REFERENCE_SALT = "intake.StagedDocument.reference"
    LIFETIME = timedelta(days=1)

    key = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    file = models.FileField(storage=private_storage, upload_to=staged_path, max_length=200)
    content_type = models.CharField(max_length=40, choices=ReferralAttachment.Kind.choices)
    original_name = models.CharField(max_length=200, blank=True)
    size = models.PositiveBigIntegerField()
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="+",
    )
    link = models.ForeignKey(
        IntakeLink, on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    objects = StagedDocumentQuerySet.as_manager()

    class Meta:
        constraints = [
            # Kept for exactly one owner: only that user, or only that link, may use it.
            models.CheckConstraint(
                condition=models.Q(user__isnull=False, link__isnull=True)
                | models.Q(user__isnull=True, link__isnull=False),
                name="staged_document_one_owner",
            ),
        ]
        indexes = [
            # The sweep deletes the old ones.
            models.Index(fields=["created_at"], name="staged_document_age_idx"),
        ]

    def __str__(self) -> str:
        return f"Staged {self.get_content_type_display()} {self.key}"

    @property
    def extension(self) -> str:
        return ReferralAttachment.EXTENSIONS.get(self.content_type, ".bin")

    @property
    def reference(self) -> str:
        """What the form carries to find this document again; signed, so a visitor
        cannot make one up, and dated, so an old page cannot use it."""
        signer = signing.TimestampSigner(salt=self.REFERENCE_SALT)
        return signer.sign(self.key.hex)

    @classmethod
    def key_from_reference(cls, reference: str, *, expired_too: bool = False) -> str:
        """The key a reference was signed for. Raises signing.BadSignature for a forged
        one and, unless `expired_too`, signing.SignatureExpired for one older than
        REFERENCE_MAX_AGE."""
        signer = signing.TimestampSigner(salt=cls.REFERENCE_SALT)
        return signer.unsign(reference, max_age=None if expired_too else cls.REFERENCE_MAX_AGE)

    def set_owner(self, owner: User | IntakeLink) -> None:
        if isinstance(owner, IntakeLink):
            self.link = owner
        else:
            self.user = owner

    def as_upload(self) -> UploadedFile:
        """The stored document as an upload, for the code that saves fresh ones."""
        return UploadedFile(
            file=self.file.open("rb"),
            name=self.original_name,
            content_type=self.content_type,
            size=self.size,
        )


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
