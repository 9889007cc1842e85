"""Checking uploaded documents by what they contain, not by what they are called."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from io import BytesIO
from typing import Any

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import InMemoryUploadedFile, UploadedFile
from django.core.files.uploadhandler import FileUploadHandler
from django.http import HttpRequest, HttpResponse
from django.template.defaultfilters import filesizeformat
from django.views.decorators.csrf import csrf_exempt, csrf_protect

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


class AttachAgainMixin:
    """For a form with a `documents` field. A browser cannot put a chosen file back into a
    file input, so a form that comes back (with an error elsewhere, or to confirm a possible
    duplicate) says by name which documents must be chosen again, instead of letting a
    referral go without them."""

    def ask_to_attach_again(self) -> None:
        form: Any = self
        if "documents" not in form.fields:
            return
        uploads = [f for f in form.files.getlist(form.add_prefix("documents")) if f]
        if not uploads or "documents" in form.errors:
            return
        names = ", ".join(f"“{(upload.name or 'a file')[:80]}”" for upload in uploads)
        form.add_error(
            "documents",
            f"Nothing was sent yet, and a browser cannot keep a chosen file: choose {names} again.",
        )


class BoundedMemoryUploadHandler(FileUploadHandler):
    """Keeps each uploaded file in memory, up to one byte past `limit`, and counts the
    rest without keeping it. The file's size is the real size, so `check_upload` refuses
    an oversized file by its true size, and no refused upload ever touches the disk
    (Django's default handler spools big uploads to a temporary file)."""

    def __init__(self, request: Any = None, *, limit: int | None = None) -> None:
        super().__init__(request)
        self.limit = settings.ATTACHMENT_MAX_BYTES if limit is None else limit
        self.files_seen = 0

    def new_file(self, *args: Any, **kwargs: Any) -> None:
        super().new_file(*args, **kwargs)
        self.files_seen += 1
        self.buffer = BytesIO()
        self.received = 0
        # Past the per-form maximum the form refuses anyway: keep none of it, so a post
        # with a hundred files cannot fill the server's memory.
        self.keep = self.files_seen <= settings.ATTACHMENT_MAX_FILES

    def receive_data_chunk(self, raw_data: bytes, start: int) -> None:
        self.received += len(raw_data)
        room = self.limit + 1 - self.buffer.tell()
        if self.keep and room > 0:
            self.buffer.write(raw_data[:room])
        # None: no later handler receives the data.

    def file_complete(self, file_size: int) -> InMemoryUploadedFile:
        self.buffer.seek(0)
        return InMemoryUploadedFile(
            file=self.buffer,
            field_name=self.field_name,
            name=self.file_name,
            content_type=self.content_type,
            size=self.received,
            charset=self.charset,
            content_type_extra=self.content_type_extra,
        )


def bounded_uploads(
    view: Callable[..., HttpResponse] | None = None, *, limit: int | None = None
) -> Any:
    """Decorate a view so its uploads go through BoundedMemoryUploadHandler. The handler
    must be set before anything reads request.POST, and the CSRF middleware reads it, so
    the CSRF check moves inside (Django's documented pattern for per-view handlers)."""

    def decorate(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        protected = csrf_protect(view)

        @csrf_exempt
        @wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            request.upload_handlers = [BoundedMemoryUploadHandler(request, limit=limit)]
            return protected(request, *args, **kwargs)

        return wrapper

    return decorate(view) if view is not None else decorate
