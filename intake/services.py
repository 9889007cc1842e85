"""Intake workflows: office links, submissions through them, and referral documents."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial

from django.conf import settings
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.core.files.base import File
from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from audit.models import PatientDataAccess
from audit.services import PATIENT_FIELDS, audit_record
from core.text import strip_invisible
from intake.hl7 import (
    Hl7Error,
    OrderAlreadyImported,
    ReferralOrder,
    UnknownReferrer,
    read_referral_order,
)
from intake.models import (
    Hl7Import,
    IntakeLink,
    IntakeSubmission,
    ReferralAttachment,
    StagedDocument,
    hash_token,
)
from intake.storage import private_storage
from partners.models import Organization, Provider
from referrals.models import Referral, SlaTarget
from referrals.services.workflow import referral_log
from registry.models import RegistryProvider, Taxonomy


class IntakeRefused(Exception):
    """The link cannot be used. `message` is safe to show to the office."""

    def __init__(self, message: str, *, status: int, retry_at: datetime | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.retry_at = retry_at


class FormAlreadySent(ValidationError):
    """The opened form's key came back with another patient's details."""


def _compared(value: object) -> str:
    # As stored: the referral sent was cleaned of invisible characters when it was logged.
    return strip_invisible(str(value)).strip().casefold()


def _same_patient_and_reason(sent: Referral, again: Referral) -> bool:
    fields = ("patient_first_name", "patient_last_name", "patient_dob", "reason")
    return all(_compared(getattr(sent, name)) == _compared(getattr(again, name)) for name in fields)


@dataclass(frozen=True)
class NewProvider:
    """A referring provider the office named that is not on its list."""

    first_name: str
    last_name: str
    npi: str


@transaction.atomic
def intake_link_create(
    *,
    organization: Organization,
    actor: User,
    label: str = "",
    expires_at: datetime | None = None,
) -> tuple[IntakeLink, str]:
    """Make a link for an office. Returns the link and its raw token, which exists only
    in this return value: show it once, it cannot be recovered later."""
    raw = IntakeLink.new_token()
    link = IntakeLink(organization=organization, label=label, expires_at=expires_at)
    link.created_by = actor
    link.set_token(raw)
    link.full_clean()
    link.save()
    return link, raw


@transaction.atomic
def intake_link_revoke(*, link: IntakeLink, actor: User) -> IntakeLink:
    locked = IntakeLink.objects.select_for_update().get(pk=link.pk)
    if not locked.is_revoked:
        locked.revoke(by=actor)
    return locked


def _refusal(link: IntakeLink | None) -> IntakeRefused | None:
    if link is None:
        return IntakeRefused(
            "This referral link is not valid. Please check that you copied the whole link, "
            "or ask the practice for a new one.",
            status=404,
        )
    if link.is_revoked:
        return IntakeRefused(
            "This referral link has been withdrawn by the practice. Please ask them for a "
            "new one, or send the referral by fax.",
            status=410,
        )
    if link.is_expired:
        return IntakeRefused(
            "This referral link has expired. Please ask the practice for a new one, or send "
            "the referral by fax.",
            status=410,
        )
    return None


def check_intake_link(raw_token: str) -> IntakeLink:
    """The usable link for this token, or IntakeRefused saying why not."""
    link = None
    if 20 <= len(raw_token) <= 100:
        link = (
            IntakeLink.objects.select_related("organization")
            .filter(token_hash=hash_token(raw_token))
            .first()
        )
    refusal = _refusal(link)
    if refusal:
        raise refusal
    assert link is not None
    return link


def _check_throttle(link: IntakeLink) -> None:
    # Counted in the database rather than a cache: every web process sees the same
    # count (a per-process memory cache would multiply the limit by the worker count),
    # it survives restarts, and the count runs under the link's row lock, so two
    # simultaneous submissions cannot both take the last slot.
    until = throttled_until(link)
    if until is not None:
        raise IntakeRefused(throttle_message(until), status=429, retry_at=until)


def throttled_until(link: IntakeLink) -> datetime | None:
    """If the link has reached its hourly limit, when it takes a referral again (an hour
    after the submission whose ageing out frees a slot); else None."""
    limit = settings.INTAKE_LINK_SUBMISSIONS_PER_HOUR
    times = list(
        link.submissions.filter(submitted_at__gte=timezone.now() - timedelta(hours=1))
        .order_by("-submitted_at")
        .values_list("submitted_at", flat=True)[:limit]
    )
    return times[-1] + timedelta(hours=1) if len(times) >= limit else None


def throttle_message(until: datetime) -> str:
    limit = settings.INTAKE_LINK_SUBMISSIONS_PER_HOUR
    return (
        f"This link has reached its limit of {limit} referrals an hour: it takes the next "
        f"one from {timezone.localtime(until):%-I:%M %p}. Nothing from this attempt was "
        "saved yet; send it then, or by fax."
    )


def _provider_for(link: IntakeLink, new_provider: NewProvider) -> tuple[Provider, bool]:
    provider = Provider.objects.filter(npi=new_provider.npi).first()
    if provider is not None:
        if provider.organization_id not in (link.organization_id, None):
            # Crediting another practice's provider would send them the letters about
            # this patient.
            raise ValidationError(
                {
                    "other_npi": "Our records list this NPI at another practice, so it "
                    "cannot be used through your office's link. Please send this referral "
                    "by fax or call us, and we will update our records."
                }
            )
        if _name_key(provider.last_name) != _name_key(new_provider.last_name):
            # The letters about this patient would greet someone else: a typo in the NPI,
            # most likely. Said without naming who the NPI is (anyone holding the link
            # could otherwise look names up by number).
            raise ValidationError(
                {
                    "other_npi": "This NPI belongs to a provider of another name in our "
                    "records: check the NPI and the last name, or choose the provider from "
                    "the list above."
                }
            )
        # Known, with no office yet (an earlier order named them): credited as they are.
        return provider, False
    provider = Provider(
        npi=new_provider.npi,
        first_name=new_provider.first_name,
        last_name=new_provider.last_name,
        organization=link.organization,
        status=Provider.Status.PROSPECT,
    )
    # What the national registry says of the NPI (the form checked the name against it)
    # rather than what was typed: credential and specialty for the partner directory.
    record = RegistryProvider.objects.by_npi(new_provider.npi)
    if record is not None and record.last_name:
        taxonomy = Taxonomy.objects.filter(code=record.primary_taxonomy_code).first()
        provider.first_name = record.first_name.title()[:100] or provider.first_name
        provider.last_name = record.last_name.title()[:100]
        provider.credential = record.credential[:50]
        provider.taxonomy_code = record.primary_taxonomy_code
        provider.specialty = taxonomy.label[:200] if taxonomy else ""
    provider.full_clean()
    provider.save()
    return provider, True


def shown_name(name: str | None, limit: int = 200) -> str:
    """An uploaded file's name as kept for showing it: a name longer than the column
    loses letters from its middle, never its extension (what it is)."""
    name = str(name or "")
    if len(name) <= limit:
        return name
    stem, dot, extension = name.rpartition(".")
    if not dot or len(extension) > 10:
        return name[: limit - 1] + "…"
    return f"{stem[: limit - len(extension) - 2]}….{extension}"


def _name_key(name: str) -> str:
    """A last name as compared across records: no case, accents, spaces or punctuation."""
    bare = unicodedata.normalize("NFKD", name.casefold())
    return "".join(char for char in bare if char.isalnum())


STAGED_GONE = (
    "A document kept from your last attempt is no longer there (it may have been sent "
    "already, from another tab): check before sending again, and choose it again if needed."
)


def _save_with_files(rows: Sequence[tuple[ReferralAttachment | StagedDocument, File]]) -> None:
    """Write each row's file to the private storage, then the row. Inside the caller's
    transaction: a rollback takes the rows back but not the files, so when anything here
    fails the files written so far are deleted before the error goes on."""
    written: list[ReferralAttachment | StagedDocument] = []
    try:
        for row, content in rows:
            row.file.save("upload", content, save=False)
            written.append(row)
            row.save()
    except BaseException:
        for row in written:
            row.file.delete(save=False)
        raise


def attachments_save(
    *,
    referral: Referral,
    documents: list[tuple[UploadedFile, str]],
    actor: User | None,
    staged: Sequence[StagedDocument] = (),
) -> list[ReferralAttachment]:
    """Store documents already checked by `check_upload`, and the `staged` ones kept from
    an earlier post of the same form (which are then deleted). Called inside the caller's
    transaction, as its last step, so a refused referral never leaves a file behind."""
    claimed = _claim_staged(staged)
    with ExitStack() as opened:
        try:
            kept = [(opened.enter_context(doc.as_upload()), doc.content_type) for doc in claimed]
        except FileNotFoundError as missing:
            raise ValidationError({"documents": STAGED_GONE}) from missing
        rows = [
            (
                ReferralAttachment(
                    referral=referral,
                    content_type=content_type,
                    original_name=shown_name(upload.name),
                    size=upload.size or 0,
                    uploaded_by=actor,
                ),
                upload,
            )
            for upload, content_type in [*documents, *kept]
        ]
        # Written to the private storage only now, after every check has passed.
        _save_with_files(rows)
    staged_documents_discard(documents=claimed)
    return [attachment for attachment, _upload in rows]


def _claim_staged(staged: Sequence[StagedDocument]) -> list[StagedDocument]:
    # Locked, so the same kept document cannot go with two referrals (a double click).
    claimed = list(
        StagedDocument.objects.select_for_update().filter(pk__in=[doc.pk for doc in staged])
    )
    if len(claimed) != len(staged):
        raise ValidationError({"documents": STAGED_GONE})
    return claimed


def _staging_room(owner: User | IntakeLink) -> int:
    """How many more documents may be kept for this owner; for a link, check-then-do
    under its row lock like a submission."""
    if isinstance(owner, IntakeLink):
        locked = IntakeLink.objects.select_for_update().get(pk=owner.pk)
        refusal = _refusal(locked)
        if refusal:
            raise ValidationError(refusal.message)
        try:
            _check_throttle(locked)
        except IntakeRefused as throttled:
            raise ValidationError(throttled.message) from throttled
    # An hour's worth of referrals with all their documents: more than anyone honest
    # leaves waiting, and a bound on what an anonymous visitor can make the server keep.
    limit = settings.INTAKE_LINK_SUBMISSIONS_PER_HOUR * settings.ATTACHMENT_MAX_FILES
    return limit - StagedDocument.objects.owned_by(owner).count()


@transaction.atomic
def documents_stage(
    *, documents: list[tuple[UploadedFile, str]], owner: User | IntakeLink
) -> list[StagedDocument]:
    """Keep documents that passed `check_upload` on a form that came back, for the
    owner's next post of it. Raises ValidationError saying why they cannot be kept."""
    if len(documents) > _staging_room(owner):
        raise ValidationError("Too many documents are already waiting to be sent.")
    rows = []
    for upload, content_type in documents:
        staged = StagedDocument(
            content_type=content_type,
            original_name=shown_name(upload.name),
            size=upload.size or 0,
        )
        staged.set_owner(owner)
        rows.append((staged, upload))
    _save_with_files(rows)
    return [staged for staged, _upload in rows]


def _delete_files(names: list[str]) -> None:
    storage = private_storage()
    for name in names:
        storage.delete(name)


@transaction.atomic
def staged_documents_discard(*, documents: Iterable[StagedDocument]) -> int:
    """Delete staged documents: the rows now, their files once that is committed (a
    rolled-back delete keeps both). Returns how many were deleted."""
    pks = [doc.pk for doc in documents]
    if not pks:
        return 0
    locked = list(StagedDocument.objects.select_for_update().filter(pk__in=pks).only("file"))
    StagedDocument.objects.filter(pk__in=[doc.pk for doc in locked]).delete()
    # robust: a file that cannot be deleted now must not fail the caller; the rows are gone.
    transaction.on_commit(
        partial(_delete_files, [doc.file.name for doc in locked if doc.file.name]), robust=True
    )
    return len(locked)


def attachment_files_delete(*, attachments: QuerySet[ReferralAttachment]) -> int:
    """Delete the stored files of these documents once the transaction commits; the caller
    deletes their rows (a referral's go with it by cascade, which leaves files behind),
    and a rolled-back delete keeps both. Returns how many files are to go."""
    names = [name for name in attachments.order_by().values_list("file", flat=True) if name]
    if names:
        # robust: a file that cannot be deleted now must not fail the delete; the rows are gone.
        transaction.on_commit(partial(_delete_files, names), robust=True)
    return len(names)


@transaction.atomic
def attachments_delete(
    *,
    attachments: QuerySet[ReferralAttachment],
    actor: User | None,
    request: HttpRequest | None = None,
) -> int:
    """Delete these documents, rows and (once committed) files, each a change of its
    referral's patient details in the audit trail. Returns how many were deleted."""
    referral_ids = sorted(set(attachments.values_list("referral_id", flat=True)))
    audit_record(
        action=PatientDataAccess.Action.CHANGE,
        referral_ids=referral_ids,
        user=actor,
        fields=["attachments"],
        request=request,
    )
    attachment_files_delete(attachments=attachments)
    deleted, _ = attachments.delete()
    return deleted


def staged_documents_delete_stale(*, now: datetime | None = None) -> int:
    """Delete documents kept for forms nobody sent (older than StagedDocument.LIFETIME),
    rows and files, in batches, then any file under staged/ that old which no row names
    (its owner deleted, taking the row along; a commit that failed after the file was
    written). Returns how many rows were deleted."""
    deleted = 0
    while batch := list(StagedDocument.objects.stale(now=now).only("pk")[:500]):
        deleted += staged_documents_discard(documents=batch)
    _delete_files(_orphan_staged_files(now=now or timezone.now()))
    return deleted


def _orphan_staged_files(*, now: datetime) -> list[str]:
    storage = private_storage()
    cutoff = now - StagedDocument.LIFETIME
    named = set(StagedDocument.objects.values_list("file", flat=True))
    orphans: list[str] = []
    folders = ["staged"]
    while folders:
        folder = folders.pop()
        if not storage.exists(folder):
            continue
        subfolders, files = storage.listdir(folder)
        folders.extend(f"{folder}/{name}" for name in subfolders)
        orphans.extend(
            path
            for path in (f"{folder}/{name}" for name in files)
            if path not in named and storage.get_modified_time(path) < cutoff
        )
    return orphans


@transaction.atomic
def attachment_add(
    *,
    referral: Referral,
    documents: list[tuple[UploadedFile, str]],
    actor: User,
) -> list[ReferralAttachment]:
    return attachments_save(referral=referral, documents=documents, actor=actor)


@transaction.atomic
def intake_submit(
    *,
    link: IntakeLink,
    referral: Referral,
    contact_name: str,
    contact_phone: str = "",
    new_provider: NewProvider | None = None,
    documents: list[tuple[UploadedFile, str]] | None = None,
    staged: Sequence[StagedDocument] = (),
    request: HttpRequest | None = None,
    form_key: str = "",
) -> IntakeSubmission:
    """Log a referral an office sent through its link: lands in the queue as received,
    from the web form, with nobody as its creator. `request`, when given, puts the
    sender's address on the audit row. The same opened form (`form_key`) sent again is
    the submission it already made, not a second referral."""
    # The row lock serialises submissions through one link, for the throttle's count
    # and for the form key.
    locked = IntakeLink.objects.select_for_update().get(pk=link.pk)
    refusal = _refusal(locked)
    if refusal:
        raise refusal
    if form_key:
        already = (
            IntakeSubmission.objects.filter(link=locked, form_key=form_key)
            .select_related("referral")
            .first()
        )
        if already is not None:
            if _same_patient_and_reason(already.referral, referral):
                return already
            # The key of a form already sent, with another patient: a browser that put
            # the old form's hidden key back (Back, a restored tab). Answering with the
            # first referral's reference would drop this one without a word.
            raise FormAlreadySent(
                "This form was already used to send a referral for another patient. "
                "Check the details below and send it again: it goes as a new referral."
            )
    _check_throttle(locked)
    provider_added = False
    if new_provider is not None:
        referral.provider, provider_added = _provider_for(locked, new_provider)
    elif referral.provider.organization_id != locked.organization_id:
        raise ValidationError({"provider": "Choose one of your office's providers."})
    referral.direction = Referral.Direction.INBOUND
    referral.channel = Referral.Channel.WEB_FORM
    referral.received_at = timezone.now()
    referral_log(referral=referral, actor=None)
    submission = IntakeSubmission(
        link=locked,
        form_key=form_key,
        referral=referral,
        contact_name=strip_invisible(contact_name),
        contact_phone=contact_phone,
        provider_added=provider_added,
    )
    submission.full_clean()
    submission.save()
    attached = attachments_save(
        referral=referral, documents=documents or [], actor=None, staged=staged
    )
    audit_record(
        action=PatientDataAccess.Action.CREATE,
        referral_ids=[referral.pk],
        # The documents that came with it are patient details too.
        fields=(*PATIENT_FIELDS, "attachments") if attached else PATIENT_FIELDS,
        source=PatientDataAccess.Source.INTAKE_LINK,
        request=request,
    )
    return submission


def _hl7_provider(order: ReferralOrder) -> Provider:
    """The partner who sent the order: by NPI when the message carries one (a new NPI
    becomes a prospect, since the NPI itself vouches for who it is), otherwise by name
    when exactly one partner has it."""
    if order.provider_npi:
        provider = Provider.objects.filter(npi=order.provider_npi).first()
        if provider is not None:
            return provider
        if not order.provider_last_name:
            raise Hl7Error(f"The referring provider (NPI {order.provider_npi}) has no name.")
        provider = Provider(
            npi=order.provider_npi,
            first_name=order.provider_first_name or "(unknown)",
            last_name=order.provider_last_name,
            status=Provider.Status.PROSPECT,
        )
        try:
            provider.full_clean()
        except ValidationError as error:
            raise Hl7Error(
                f"The referring provider (NPI {order.provider_npi}) cannot be added as a partner: "
                + " ".join(error.messages)
            ) from error
        provider.save()
        return provider
    name = f"{order.provider_first_name} {order.provider_last_name}".strip() or "(no name)"
    matches = list(
        Provider.objects.filter(
            last_name__iexact=order.provider_last_name, first_name__iexact=order.provider_first_name
        )[:2]
    )
    if order.provider_last_name and len(matches) == 1:
        return matches[0]
    identifier = f" (ID {order.provider_id})" if order.provider_id else ""
    problem = "matches several partners" if matches else "matches no partner"
    raise UnknownReferrer(
        f"The referring provider {name}{identifier} has no NPI and {problem}; "
        "choose the partner and import again.",
        first_name=order.provider_first_name,
        last_name=order.provider_last_name,
    )


def _check_chosen_provider(order: ReferralOrder, provider: Provider) -> None:
    """A partner chosen for the import is for an order whose NPI names none of ours: one
    whose NPI names another partner is theirs, and crediting it elsewhere would send that
    patient's letters to the wrong office."""
    if not order.provider_npi:
        return
    named = Provider.objects.filter(npi=order.provider_npi).exclude(pk=provider.pk).first()
    if named is not None:
        raise Hl7Error(
            f"The message names its referring provider by NPI {order.provider_npi}, our "
            f"partner {named.display_name}, not {provider.display_name}: import it without "
            "choosing a partner to credit it to them."
        )


@transaction.atomic
def referral_import_hl7(
    *,
    data: bytes | str,
    actor: User | None,
    provider: Provider | None = None,
    request: HttpRequest | None = None,
) -> Referral:
    """Turn a 360X referral order (HL7 v2 OMG^O19) into a received referral. Raises
    Hl7Error with the reason when the message cannot be used."""
    order = read_referral_order(data)
    if not order.message_control_id:
        raise Hl7Error("The message has no control ID (MSH-10).")
    if len(order.message_control_id) > 200 or len(order.sending_application) > 200:
        # Both identify the message for the once-only check; cut short they would not.
        raise Hl7Error(
            "The message's control ID (MSH-10) or sending application (MSH-3 and MSH-4) is "
            "longer than 200 characters."
        )
    if len(order.placer_order_number) > 200:
        raise Hl7Error("The placer order number (ORC-2) is longer than 200 characters.")
    if provider is not None:
        _check_chosen_provider(order, provider)
    return referral_receive_order(
        order=order,
        provider=provider or _hl7_provider(order),
        actor=actor,
        source=PatientDataAccess.Source.HL7,
        request=request,
    )


def _imported_referral_id(order: ReferralOrder) -> int | None:
    return (
        Hl7Import.objects.filter(
            sending_application=order.sending_application,
            message_control_id=order.message_control_id,
        )
        .values_list("referral_id", flat=True)
        .first()
    )


@transaction.atomic
def referral_receive_order(
    *,
    order: ReferralOrder,
    provider: Provider,
    actor: User | None,
    source: str,
    request: HttpRequest | None = None,
) -> Referral:
    """Log an electronic referral order (an HL7 v2 message, or a FHIR ServiceRequest read
    into the same ReferralOrder) as a received e-referral from `provider`: once per
    (sending application, message id), with its history and its audit row. Raises
    Hl7Error with the reason when it cannot be saved (OrderAlreadyImported for a repeat)."""
    earlier = _imported_referral_id(order)
    if earlier is not None:
        raise OrderAlreadyImported(
            f"This message ({order.message_control_id}) was already imported as referral "
            f"#{earlier}.",
            referral_id=earlier,
        )
    referral = Referral(
        direction=Referral.Direction.INBOUND,
        provider=provider,
        patient_first_name=order.patient_first_name,
        patient_last_name=order.patient_last_name,
        patient_dob=order.patient_dob,
        patient_phone=order.patient_phone,
        reason=order.reason,
        urgency=(
            order.urgency
            if order.requested_within is None
            else SlaTarget.urgency_within(order.requested_within)
        ),
        channel=Referral.Channel.E_REFERRAL,
    )
    try:
        referral_log(referral=referral, actor=actor)
    except ValidationError as error:
        raise Hl7Error("The order cannot be saved: " + " ".join(error.messages)) from error
    try:
        with transaction.atomic():
            Hl7Import.objects.create(
                referral=referral,
                sending_application=order.sending_application,
                message_control_id=order.message_control_id,
                placer_order_number=order.placer_order_number,
                imported_by=actor,
            )
    except IntegrityError as error:
        # The same message imported at the same moment by someone else: theirs stands.
        raise OrderAlreadyImported(
            f"This message ({order.message_control_id}) was already imported.",
            referral_id=_imported_referral_id(order),
        ) from error
    audit_record(
        action=PatientDataAccess.Action.CREATE,
        referral_ids=[referral.pk],
        user=actor,
        source=source,
        request=request,
    )
    return referral
