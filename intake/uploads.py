"""Checking uploaded documents by what they contain, not by what they are called."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from io import BytesIO
from typing import TYPE_CHECKING, Any, cast

from django import forms
from django.conf import settings
from django.core import signing
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import InMemoryUploadedFile, UploadedFile
from django.core.files.uploadhandler import FileUploadHandler
from django.http import HttpRequest, HttpResponse, QueryDict
from django.template.defaultfilters import filesizeformat
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from PIL import Image

from intake.models import IntakeLink, ReferralAttachment, StagedDocument
from intake.services import documents_stage

if TYPE_CHECKING:
    from django.contrib.auth.models import User

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
            if not _readable(upload, kind):
                raise ValidationError(
                    f"“{_shown_name(upload)}” starts like a {kind.split('/')[1].upper()} "
                    "file but cannot be read as one (damaged, or cut short): scan or save "
                    "it again."
                )
            return kind
    raise ValidationError(
        f"“{_shown_name(upload)}” is not a PDF, PNG, JPEG or TIFF file "
        "(checked by its content, not its name)."
    )


def _readable(upload: UploadedFile, kind: str) -> bool:
    """Whether the document is whole: an image's structure checks out (Pillow reads its
    headers and chunks without decoding the pixels), a PDF has its end-of-file mark."""
    try:
        if kind == "application/pdf":
            size = upload.size or 0
            upload.seek(max(0, size - 2048))
            return b"%%EOF" in upload.read()
        with Image.open(upload) as image:
            image.verify()
        return True
    except Exception:
        return False
    finally:
        upload.seek(0)


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


@dataclass(frozen=True)
class KeptDocument:
    """What the form shows of a staged document: never its path. A user's own kept
    document has a `preview_url` (a download only its owner gets, for the page to show it
    beside the form again); one kept for an office's link has none."""

    reference: str
    name: str
    size: str
    preview_url: str = ""


class DocumentsInput(forms.Widget):
    """A file input for several documents, with the documents kept from the form's last
    post listed before it: each with a hidden signed reference and a box to remove it.
    Not a FileInput: crispy-forms draws those with its own template, without the list."""

    template_name = "widgets/documents_input.html"
    needs_multipart_form = True

    def __init__(self, attrs: dict[str, Any] | None = None) -> None:
        super().__init__(attrs)
        self.kept: list[KeptDocument] = []

    def __deepcopy__(self, memo: dict[int, Any]) -> DocumentsInput:
        # Each form gets its own list: the class-level field's widget is shared.
        result = copy.copy(self)
        result.attrs = self.attrs.copy()
        result.kept = list(self.kept)
        memo[id(self)] = result
        return result

    @staticmethod
    def kept_name(name: str) -> str:
        return f"{name}-kept"

    @staticmethod
    def remove_name(name: str) -> str:
        return f"{name}-remove"

    def format_value(self, value: Any) -> None:
        return None

    def value_from_datadict(self, data: Any, files: Any, name: str) -> list[UploadedFile]:
        return list(files.getlist(name)) if hasattr(files, "getlist") else [files.get(name)]

    def value_omitted_from_data(self, data: Any, files: Any, name: str) -> bool:
        return name not in files

    def use_required_attribute(self, initial: Any) -> bool:
        # Kept documents count as chosen; the form says when one is missing.
        return False

    def get_context(self, name: str, value: Any, attrs: dict[str, Any] | None) -> dict[str, Any]:
        context = super().get_context(name, value, attrs)
        context["widget"].update(
            kept=self.kept, kept_name=self.kept_name(name), remove_name=self.remove_name(name)
        )
        return context


class DocumentsField(forms.FileField):
    """Several documents at once, each checked by `check_upload`. Cleans to a list of
    (upload, content type) pairs; nothing is written anywhere until a service saves it."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault(
            "widget", DocumentsInput(attrs={"accept": ".pdf,.png,.jpg,.jpeg,.tif,.tiff"})
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


def _names(uploads: list[tuple[UploadedFile, str]]) -> str:
    return ", ".join(f"“{_shown_name(upload)}”" for upload, _kind in uploads)


class KeepsDocumentsMixin(forms.BaseForm):
    """For a form with a `documents` field. A browser cannot put a chosen file back into a
    file input, so when the form comes back (an error elsewhere, a possible duplicate to
    confirm) `keep_documents` keeps its documents on the server, and the form lists them
    with signed references that its next post sends instead of the files.

    Once validated, `kept_documents` are the verified ones to save with the form, and
    `removed_documents` those ticked for removal or too old to use, for the view to delete
    whatever happens to the rest of the form."""

    def __init__(
        self, *args: Any, documents_owner: User | IntakeLink | None = None, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.documents_owner = documents_owner
        self.kept_documents: list[StagedDocument] = []
        self.removed_documents: list[StagedDocument] = []

    def _posted(self, suffix: str = "") -> list[Any]:
        name = self.add_prefix("documents")
        if not suffix:
            return [upload for upload in self.files.getlist(name) if upload]
        data = self.data
        return data.getlist(f"{name}-{suffix}") if isinstance(data, QueryDict) else []

    def clean(self) -> dict[str, Any] | None:
        cleaned = super().clean()
        if "documents" in self.fields:
            for error in self._check_kept_documents():
                self.add_error("documents", error)
        return cleaned

    def _check_kept_documents(self) -> list[str]:
        removing = set(self._posted("remove"))
        keys: list[str] = []
        removed_keys: list[str] = []
        expired_keys: list[str] = []
        forged = 0
        for reference in self._posted("kept"):
            try:
                key = StagedDocument.key_from_reference(reference)
            except signing.SignatureExpired:
                key = StagedDocument.key_from_reference(reference, expired_too=True)
                (removed_keys if reference in removing else expired_keys).append(key)
            except signing.BadSignature:
                forged += 1
            else:
                (removed_keys if reference in removing else keys).append(key)
        owned = StagedDocument.objects.none()
        if self.documents_owner is not None:
            owned = StagedDocument.objects.owned_by(self.documents_owner)
        # The owner's own only: a reference to another user's or link's document finds
        # nothing, exactly like one to a document already sent.
        found = {
            doc.key.hex: doc for doc in owned.filter(key__in=keys + removed_keys + expired_keys)
        }
        self.kept_documents = [found[key] for key in keys if key in found]
        expired = [found[key] for key in expired_keys if key in found]
        self.removed_documents = [found[key] for key in removed_keys if key in found] + expired

        hours = int(StagedDocument.REFERENCE_MAX_AGE.total_seconds() // 3600)
        errors = [
            f"“{doc.original_name[:80]}” was kept for you for {hours} hours only: choose it again."
            for doc in expired
        ]
        # Forged, or not this owner's (any more): one message, which tells nothing of whose.
        if forged or any(key not in found for key in keys + expired_keys):
            errors.append(
                "A document kept from your last attempt could not be found (the page may be "
                "too old, or the document sent already): choose it again if it is needed."
            )
        kept, chosen = len(self.kept_documents), len(self._posted())
        # More than the maximum chosen at once is the field's own error.
        if kept + chosen > settings.ATTACHMENT_MAX_FILES >= chosen:
            errors.append(
                f"Attach at most {settings.ATTACHMENT_MAX_FILES} documents: {kept} kept and "
                f"{chosen} newly chosen make {kept + chosen}. Remove some, or choose fewer."
            )
        return errors

    def keep_documents(self) -> None:
        """For a form that comes back: keep its newly chosen documents that passed their
        checks, and list them with those kept before."""
        if "documents" not in self.fields or not self.is_bound:
            return
        staged: list[StagedDocument] = []
        fresh = self._fresh_documents()
        if fresh and self.documents_owner is not None:
            try:
                staged = documents_stage(documents=fresh, owner=self.documents_owner)
            except ValidationError as refusal:
                self.add_error(
                    "documents",
                    f"{' '.join(refusal.messages)} Nothing was sent yet: choose {_names(fresh)} again.",
                )
        # A save that failed because a kept document was gone must not list it again.
        still_there = set(
            StagedDocument.objects.filter(
                pk__in=[doc.pk for doc in self.kept_documents]
            ).values_list("pk", flat=True)
        )
        kept = [doc for doc in self.kept_documents if doc.pk in still_there] + staged
        widget = cast(DocumentsInput, self.fields["documents"].widget)
        widget.kept = [
            KeptDocument(
                reference=doc.reference,
                name=doc.original_name,
                size=filesizeformat(doc.size),
                preview_url=(
                    reverse("intake:staged_document", args=[doc.reference]) if doc.user_id else ""
                ),
            )
            for doc in kept
        ]

    def _fresh_documents(self) -> list[tuple[UploadedFile, str]]:
        """The newly chosen documents that pass `check_upload`, when keeping them stays
        within the maximum (beyond it the form asks to remove some or choose fewer)."""
        uploads = self._posted()
        if len(self.kept_documents) + len(uploads) > settings.ATTACHMENT_MAX_FILES:
            return []
        passed = []
        for upload in uploads:
            try:
                passed.append((upload, check_upload(upload)))
            except ValidationError:
                continue  # the field's error names it
        return passed


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
