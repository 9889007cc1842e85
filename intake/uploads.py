"""Checking uploaded documents by what they contain, not by what they are called."""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.template.defaultfilters import filesizeformat

from intake.models import ReferralAttachment

Kind = ReferralAttachment.Kind

# Leading bytes of each accepted format. An extension or a browser's Content-Type is
# whatever the sender says; these are what the file is.
SIGNATURES: list[tuple[bytes, str]] = [
    (b"%PDF-", Kind.PDF),
    (b"\x89PNG\r\n\x1a\n", Kind.PNG),
    (b"\xff\xd8\xff", Kind.JPEG),
    (b"II*\x00", Kind.TIFF),
    (b"MM\x00*", Kind.TIFF),
]


def _shown_name(upload: UploadedFile) -> str:
    name = str(upload.name or "file")
    return name if len(name) <= 80 else name[:77] + "…"


def check_upload(upload: UploadedFile) -> str:
    """The content type of an acceptable document, or ValidationError saying why not."""
    limit = settings.ATTACHMENT_MAX_BYTES
    if upload.size is None or upload.size > limit:
        raise ValidationError(
            f"“{_shown_name(upload)}” is {filesizeformat(upload.size or 0)}; "
            f"documents may be at most {filesizeformat(limit)}."
        )
    if upload.size == 0:
        raise ValidationError(f"“{_shown_name(upload)}” is empty.")
    upload.seek(0)
    head = upload.read(8)
    upload.seek(0)
    for signature, kind in SIGNATURES:
        if head.startswith(signature):
            return kind
    raise ValidationError(
        f"“{_shown_name(upload)}” is not a PDF, PNG, JPEG or TIFF file "
        "(checked by its content, not its name)."
    )


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class DocumentsField(forms.FileField):
    """Several documents at once, each checked by `check_upload`. Cleans to a list of
    (upload, content type) pairs; nothing is written anywhere until a service saves it."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault(
            "widget", MultipleFileInput(attrs={"accept": ".pdf,.png,.jpg,.jpeg,.tif,.tiff"})
        )
        kwargs.setdefault("required", False)
        kwargs.setdefault(
            "help_text",
            f"PDF, PNG, JPEG or TIFF, up to {filesizeformat(settings.ATTACHMENT_MAX_BYTES)} "
            f"each, at most {settings.ATTACHMENT_MAX_FILES} files.",
        )
        super().__init__(**kwargs)

    def clean(self, data: Any, initial: Any = None) -> list[tuple[UploadedFile, str]]:
        uploads = [d for d in (data if isinstance(data, (list, tuple)) else [data]) if d]
        if not uploads:
            if self.required:
                raise ValidationError(self.error_messages["required"], code="required")
            return []
        if len(uploads) > settings.ATTACHMENT_MAX_FILES:
            raise ValidationError(
                f"Attach at most {settings.ATTACHMENT_MAX_FILES} documents at a time."
            )
        checked: list[tuple[UploadedFile, str]] = []
        errors: list[ValidationError] = []
        for upload in uploads:
            upload = super().clean(upload, initial)
            try:
                checked.append((upload, check_upload(upload)))
            except ValidationError as error:
                errors.append(error)
        if errors:
            raise ValidationError(errors)
        return checked
