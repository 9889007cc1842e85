"""Logging a new referral: one received (fax, phone, walk-in) or one sent out."""

from __future__ import annotations

import contextlib

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import HttpResponse
from django.shortcuts import redirect, render

from audit.models import PatientDataAccess
from audit.services import PATIENT_FIELDS, audit_names_listed, audit_record
from core.types import AuthedRequest
from intake.services import attachments_save, staged_documents_discard
from intake.uploads import bounded_uploads
from referrals.forms import OutboundReferralForm, ReferralEntryForm
from referrals.models import Referral
from referrals.selectors import possible_duplicates
from referrals.services.duplicates import referral_confirm_not_duplicate
from referrals.services.workflow import referral_log


@bounded_uploads
@login_required
@permission_required("referrals.add_referral", raise_exception=True)
def referral_create(request: AuthedRequest) -> HttpResponse:
    """Log a referral from a fax, a phone call or a walk-in (?channel= preselects it)."""
    initial = {
        "provider": request.GET.get("provider"),
        "assigned_to": request.user.pk,
        "channel": request.GET.get("channel", Referral.Channel.FAX),
    }
    # Phone and walk-in entries are quick: no documents to attach. The address says which
    # form the page is (it posts back to it), not the channel chosen: on the full form a
    # phoned-in referral may come with a faxed document, which must not be dropped.
    spoken = request.GET.get("channel") in (Referral.Channel.PHONE, Referral.Channel.WALK_IN)
    form = ReferralEntryForm(
        request.POST or None,
        request.FILES or None,
        initial=initial,
        with_documents=not spoken,
        documents_owner=request.user,
    )
    duplicates: list[Referral] = []
    valid = request.method == "POST" and form.is_valid()
    # Kept documents ticked for removal go, whatever becomes of the rest of the form.
    staged_documents_discard(documents=form.removed_documents)
    if valid:
        duplicates = _unconfirmed_duplicates(request, form)
        if not duplicates:
            try:
                referral = _log_with_documents(request, form)
            except ValidationError as error:
                form.add_error(None, error)
            else:
                messages.success(request, f"Referral #{referral.pk} was logged.")
                return redirect(referral)
    if request.method == "POST":
        form.keep_documents()
    return render(request, "referrals/referral_form.html", {"form": form, "duplicates": duplicates})


def _unconfirmed_duplicates(
    request: AuthedRequest, form: ReferralEntryForm | OutboundReferralForm
) -> list[Referral]:
    """Check, then do: a likely duplicate of the referral a valid form holds is shown first,
    and it is saved only once the coordinator confirms it is a new referral. Returns the
    earlier referrals to show (none once confirmed), their patients' names audited."""
    if form.cleaned_data["confirm_duplicate"]:
        return []
    # The name as it will be stored (the model's clean() took out invisible characters
    # pasted along with it), not as typed.
    new = form.instance
    duplicates = list(
        possible_duplicates(
            provider=new.provider,
            patient_last_name=new.patient_last_name,
            patient_dob=new.patient_dob,
            direction=new.direction,
            # A fax entered late is compared with the referrals of its own days.
            around=new.received_at,
        )[:10]
    )
    if duplicates:
        form.ask_to_confirm_duplicate()
        # The warning names each earlier referral's patient.
        audit_names_listed(request, [duplicate.pk for duplicate in duplicates])
    return duplicates


def _keep_as_new(referral: Referral, form: ReferralEntryForm | OutboundReferralForm) -> None:
    """The coordinator was shown its possible duplicates and confirmed it is new: the queue
    does not flag it as one of theirs, and its history says so (who, and which)."""
    if not form.cleaned_data["confirm_duplicate"]:
        return
    # Nothing like it any more (the other one was deleted meanwhile): no question left.
    with contextlib.suppress(ValidationError):
        referral_confirm_not_duplicate(referral=referral, actor=referral.created_by)


@transaction.atomic
def _log_with_documents(request: AuthedRequest, form: ReferralEntryForm) -> Referral:
    referral = referral_log(referral=form.instance, actor=request.user)
    _keep_as_new(referral, form)
    attached = attachments_save(
        referral=referral,
        documents=form.cleaned_data.get("documents", []),
        staged=form.kept_documents,
        actor=request.user,
    )
    audit_record(
        action=PatientDataAccess.Action.CREATE,
        referral_ids=[referral.pk],
        user=request.user,
        # The documents that came with it are patient details too.
        fields=(*PATIENT_FIELDS, "attachments") if attached else PATIENT_FIELDS,
        request=request,
    )
    return referral


@login_required
@permission_required("referrals.add_referral", raise_exception=True)
def referral_refer_out(request: AuthedRequest) -> HttpResponse:
    """Send a patient to a specialist in the network (or, with a reason, outside it)."""
    initial = {"provider": request.GET.get("provider"), "assigned_to": request.user.pk}
    form = OutboundReferralForm(request.POST or None, initial=initial)
    duplicates: list[Referral] = []
    if request.method == "POST" and form.is_valid():
        # The same patient already sent to this specialist (or their office) lately.
        duplicates = _unconfirmed_duplicates(request, form)
    if request.method == "POST" and form.is_valid() and not duplicates:
        try:
            with transaction.atomic():
                referral = referral_log(referral=form.instance, actor=request.user)
                _keep_as_new(referral, form)
                audit_record(
                    action=PatientDataAccess.Action.CREATE,
                    referral_ids=[referral.pk],
                    user=request.user,
                    request=request,
                )
        except ValidationError as error:
            form.add_error(None, error)
        else:
            messages.success(request, f"Referral #{referral.pk} to the specialist was logged.")
            return redirect(referral)
    return render(
        request,
        "referrals/referral_form.html",
        {"form": form, "outbound": True, "duplicates": duplicates},
    )
