from __future__ import annotations

import uuid

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core import signing
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count, Max
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from audit.models import PatientDataAccess
from audit.services import audit_record
from core.pagination import paginate
from core.templatetags.people import person
from core.types import AuthedRequest
from intake.forms import AttachmentForm, Hl7UploadForm, IntakeLinkForm, OfficeReferralForm
from intake.hl7 import MAX_MESSAGE_BYTES, Hl7Error, UnknownReferrer
from intake.models import IntakeLink, IntakeSubmission, StagedDocument
from intake.selectors import get_attachment_for_user, get_intake_link_for_user
from intake.services import (
    FormAlreadySent,
    IntakeRefused,
    attachment_add,
    check_intake_link,
    intake_link_create,
    intake_link_revoke,
    intake_submit,
    referral_import_hl7,
    staged_documents_discard,
    throttle_message,
    throttled_until,
)
from intake.uploads import bounded_uploads
from partners.selectors import get_organization_for_user
from referrals.selectors import get_referral_for_user

NEW_LINK_SESSION_KEY = "intake_new_link"


@login_required
@permission_required("intake.view_intakelink", raise_exception=True)
def organization_links(request: AuthedRequest, pk: int) -> HttpResponse:
    organization = get_organization_for_user(request.user, pk)
    can_add = request.user.has_perm("intake.add_intakelink")
    form = IntakeLinkForm(request.POST or None)
    if request.method == "POST":
        if not can_add:
            raise Http404
        if form.is_valid():
            link, raw = intake_link_create(
                organization=organization,
                actor=request.user,
                label=form.cleaned_data["label"],
                expires_at=form.expires_at(),
            )
            # Shown once, on the next page; the database keeps only its hash.
            request.session[NEW_LINK_SESSION_KEY] = {
                "pk": link.pk,
                "url": request.build_absolute_uri(reverse("intake:public_form", args=[raw])),
            }
            return redirect("intake:organization_links", pk=organization.pk)
    new_link = request.session.pop(NEW_LINK_SESSION_KEY, None)
    links = organization.intake_links.select_related("created_by", "revoked_by")
    return render(
        request,
        "intake/intakelink_list.html",
        {
            "organization": organization,
            "links": links,
            "form": form,
            "new_link": new_link,
            "can_add": can_add,
        },
    )


@login_required
@permission_required("intake.view_intakelink", raise_exception=True)
def link_list(request: AuthedRequest) -> HttpResponse:
    """Every office's intake links in one list, so the practice sees what it has handed
    out: the usable ones, or all with ?show=all, each with its referrals and the last."""
    show_all = request.GET.get("show") == "all"
    links = IntakeLink.objects.all() if show_all else IntakeLink.objects.usable()
    links = (
        links.select_related("organization", "created_by")
        .annotate(sent=Count("submissions"), last_sent=Max("submissions__submitted_at"))
        .order_by("organization__name", "-created_at", "-pk")
    )
    return render(
        request,
        "intake/intakelink_all.html",
        {"page": paginate(request, links), "show_all": show_all},
    )


@login_required
@require_POST
def link_revoke(request: AuthedRequest, pk: int) -> HttpResponse:
    link = get_intake_link_for_user(request.user, pk)
    revoked = intake_link_revoke(link=link, actor=request.user)
    if not link.is_revoked:  # as the link was before
        messages.success(request, "The link was revoked; the office can no longer use it.")
    else:
        # Revoked before (the page was opened earlier): who did it stays on record.
        messages.info(
            request,
            f"Nothing changed: the link was already revoked on "
            f"{timezone.localtime(revoked.revoked_at):%b %-d, %Y}"
            + (f" by {person(revoked.revoked_by)}." if revoked.revoked_by else "."),
        )
    return redirect("intake:organization_links", pk=link.organization_id)


def _refused(request: HttpRequest, refusal: IntakeRefused, *, heading: str = "") -> HttpResponse:
    context = {
        "heading": heading,
        "message": refusal.message,
        "practice_name": settings.PRACTICE_NAME,
        "practice_phone": settings.PRACTICE_PHONE,
        "practice_fax": settings.PRACTICE_FAX,
    }
    return render(request, "intake/refused.html", context, status=refusal.status)


@bounded_uploads
@never_cache
def public_form(request: HttpRequest, token: str) -> HttpResponse:
    """The page a referring office opens from its link. No account: the link is the key."""
    try:
        link = check_intake_link(token)
    except IntakeRefused as refusal:
        return _refused(request, refusal)
    form = OfficeReferralForm(
        request.POST or None,
        request.FILES or None,
        organization=link.organization,
        documents_owner=link,
    )
    valid = request.method == "POST" and form.is_valid()
    # Kept documents ticked for removal go, whatever becomes of the rest of the form.
    staged_documents_discard(documents=form.removed_documents)
    if valid:
        try:
            submission = intake_submit(
                link=link,
                referral=form.instance,
                contact_name=form.cleaned_data["contact_name"],
                contact_phone=form.cleaned_data["contact_phone"],
                new_provider=form.new_provider(),
                documents=form.cleaned_data["documents"],
                staged=form.kept_documents,
                request=request,
                form_key=form.cleaned_data["form_key"],
            )
        except IntakeRefused as refusal:
            if refusal.retry_at is None:
                return _refused(request, refusal)
            # Over the hourly limit: the form comes back as typed, with when to send it.
            form.add_error(None, refusal.message)
        except FormAlreadySent as error:
            form.add_error(None, error)
            # A fresh key, so that sending it again makes the new referral.
            data = request.POST.copy()
            data["form_key"] = uuid.uuid4().hex
            form.data = data
        except ValidationError as error:
            form.add_error(None, error)
        else:
            return redirect("intake:public_submitted", token=token, reference=submission.reference)
    if request.method == "POST":
        form.keep_documents()
    until = throttled_until(link)
    response = render(
        request,
        "intake/office_form.html",
        {"form": form, "link": link, "throttled": throttle_message(until) if until else ""},
        status=429 if until and request.method == "POST" else 200,
    )
    if until is not None:
        response["Retry-After"] = str(max(1, int((until - timezone.now()).total_seconds())))
    return response


@never_cache
def public_submitted(request: HttpRequest, token: str, reference: str) -> HttpResponse:
    try:
        link = check_intake_link(token)
    except IntakeRefused as refusal:
        return _refused(request, refusal)
    submission = (
        IntakeSubmission.objects.filter(link=link, reference=reference).first()
        # A reference is 8 letters and digits (new_reference): anything else, a NUL that
        # Postgres would refuse to compare included, is not one.
        if len(reference) <= 8 and reference.isascii() and reference.isalnum()
        else None
    )
    if submission is None:
        # The office has no account: its own page, not the staff's "back to the dashboard".
        return _refused(
            request,
            IntakeRefused(
                "We have no referral with that reference from this link. If you sent one, "
                "call us with the patient's name and we will find it.",
                status=404,
            ),
            heading="Referral not found",
        )
    return render(
        request,
        "intake/office_submitted.html",
        {
            "submission": submission,
            "link": link,
            "token": token,
            "practice_name": settings.PRACTICE_NAME,
            "practice_phone": settings.PRACTICE_PHONE,
        },
    )


@login_required
def attachment_download(request: AuthedRequest, pk: int) -> FileResponse:
    attachment = get_attachment_for_user(request.user, pk)
    try:
        handle = attachment.file.open("rb")
    except FileNotFoundError as missing:
        raise Http404 from missing
    audit_record(
        action=PatientDataAccess.Action.DOWNLOAD,
        referral_ids=[attachment.referral_id],
        user=request.user,
        fields=["attachments"],
        request=request,
    )
    # Always a download, never shown inline: a PDF rendered in our origin could run
    # script, and "attachment" keeps the browser from sniffing it into something else.
    return FileResponse(
        handle,
        as_attachment=True,
        filename=f"referral-{attachment.referral_id}-{attachment.pk}{attachment.extension}",
        content_type=attachment.content_type,
    )


@login_required
def staged_document(request: AuthedRequest, reference: str) -> FileResponse:
    """A document kept for the signed-in user's form that came back, fetched by that form's
    page to show it beside the form again. Only its owner gets it, only while its reference
    is valid, and as a download like an attachment (the page shows it from a blob). No
    audit row: it is not yet part of any referral, and only its uploader sees it."""
    try:
        key = StagedDocument.key_from_reference(reference)
    except signing.BadSignature as refused:
        raise Http404 from refused
    document = StagedDocument.objects.owned_by(request.user).filter(key=key).first()
    if document is None:
        raise Http404
    try:
        handle = document.file.open("rb")
    except FileNotFoundError as missing:
        raise Http404 from missing
    return FileResponse(
        handle,
        as_attachment=True,
        filename=f"kept-document{document.extension}",
        content_type=document.content_type,
    )


@bounded_uploads
@login_required
def referral_attachment_add(request: AuthedRequest, pk: int) -> HttpResponse:
    referral = get_referral_for_user(request.user, pk, write=True)
    if not request.user.has_perm("referrals.view_patient_details"):
        raise Http404
    form = AttachmentForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        with transaction.atomic():
            added = attachment_add(
                referral=referral, documents=form.cleaned_data["documents"], actor=request.user
            )
            audit_record(
                action=PatientDataAccess.Action.CHANGE,
                referral_ids=[referral.pk],
                user=request.user,
                fields=["attachments"],
                request=request,
            )
        messages.success(
            request, f"{len(added)} document{'s' if len(added) != 1 else ''} attached."
        )
        return redirect(referral)
    return render(request, "intake/attachment_form.html", {"form": form, "referral": referral})


@bounded_uploads(limit=MAX_MESSAGE_BYTES)
@login_required
@permission_required("referrals.add_referral", raise_exception=True)
def hl7_upload(request: AuthedRequest) -> HttpResponse:
    form = Hl7UploadForm(request.POST or None, request.FILES or None)
    unknown_referrer = None
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["message"]
        try:
            referral = referral_import_hl7(
                data=upload.read(),
                actor=request.user,
                provider=form.cleaned_data["provider"],
                request=request,
            )
        except Hl7Error as error:
            form.add_error("message", str(error))
            if isinstance(error, UnknownReferrer):
                # Where to find them: they must become a partner (with their NPI) first.
                unknown_referrer = error
        else:
            messages.success(request, f"The HL7 order was imported as referral #{referral.pk}.")
            return redirect(referral)
    return render(
        request, "intake/hl7_form.html", {"form": form, "unknown_referrer": unknown_referrer}
    )
