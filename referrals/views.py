from __future__ import annotations

import csv
from collections.abc import Iterator
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from audit.models import PatientDataAccess
from audit.services import PATIENT_FIELDS, audit_record
from core.htmx import render_page
from core.pagination import paginate
from intake.models import IntakeSubmission
from intake.services import attachments_save
from intake.uploads import bounded_uploads
from referrals.forms import ReferralEntryForm, ReferralFilter, ReferralForm, TransitionForm
from referrals.models import ACTION_LABELS, Referral, Status
from referrals.selectors import get_referral_for_user, possible_duplicates
from referrals.services import referral_log, referral_transition

# Actions that need more than a click, and the field each one asks for.
ACTION_FIELDS = {Status.DECLINED: "decline_reason", Status.SCHEDULED: "appointment_at"}


@login_required
@permission_required("referrals.view_referral", raise_exception=True)
def referral_list(request: HttpRequest) -> HttpResponse:
    """The work queue: every referral the user may see, filtered and paginated."""
    filterset = ReferralFilter(
        request.GET or {"open": True},
        queryset=Referral.objects.for_user(request.user).for_list(),
        request=request,
    )
    page = paginate(request, filterset.qs)
    if request.user.has_perm("referrals.view_patient_details"):
        # The queue shows these patients' names: that is a read of patient data.
        audit_record(
            action=PatientDataAccess.Action.LIST,
            referral_ids=[referral.pk for referral in page],
            user=request.user,
            fields=["patient_first_name", "patient_last_name"],
            request=request,
        )
    return render_page(
        request,
        "referrals/referral_list.html",
        {"filter": filterset, "page": page},
        partial="results",
    )


@bounded_uploads
@login_required
@permission_required("referrals.add_referral", raise_exception=True)
def referral_create(request: HttpRequest) -> HttpResponse:
    """Log a referral from a fax, a phone call or a walk-in (?channel= preselects it)."""
    initial = {
        "provider": request.GET.get("provider"),
        "assigned_to": request.user.pk,
        "channel": request.GET.get("channel", Referral.Channel.FAX),
    }
    form = ReferralEntryForm(request.POST or None, request.FILES or None, initial=initial)
    duplicates: list[Referral] = []
    if request.method == "POST" and form.is_valid():
        # Check, then do: a likely duplicate is shown first and saved only when the
        # coordinator confirms it is a new referral.
        if not form.cleaned_data["confirm_duplicate"]:
            duplicates = list(
                possible_duplicates(
                    provider=form.cleaned_data["provider"],
                    patient_last_name=form.cleaned_data["patient_last_name"],
                    patient_dob=form.cleaned_data["patient_dob"],
                )[:10]
            )
        if duplicates:
            form.ask_to_confirm_duplicate()
        else:
            try:
                referral = _log_with_documents(request, form)
            except ValidationError as error:
                form.add_error(None, error)
            else:
                messages.success(request, f"Referral #{referral.pk} was logged.")
                return redirect(referral)
    return render(request, "referrals/referral_form.html", {"form": form, "duplicates": duplicates})


@transaction.atomic
def _log_with_documents(request: HttpRequest, form: ReferralEntryForm) -> Referral:
    referral = referral_log(referral=form.instance, actor=request.user)
    audit_record(
        action=PatientDataAccess.Action.CREATE,
        referral_ids=[referral.pk],
        user=request.user,
        request=request,
    )
    attachments_save(
        referral=referral, documents=form.cleaned_data["documents"], actor=request.user
    )
    return referral


@login_required
def referral_update(request: HttpRequest, pk: int) -> HttpResponse:
    referral = get_referral_for_user(request.user, pk, write=True)
    form = ReferralForm(request.POST or None, instance=referral)
    if request.method == "POST" and form.is_valid():
        with transaction.atomic():
            form.save()
            changed = [name for name in form.changed_data if name in PATIENT_FIELDS]
            if changed:
                audit_record(
                    action=PatientDataAccess.Action.CHANGE,
                    referral_ids=[referral.pk],
                    user=request.user,
                    fields=changed,
                    request=request,
                )
        messages.success(request, "Changes saved.")
        return redirect(referral)
    if request.method == "GET" and request.user.has_perm("referrals.view_patient_details"):
        # The edit form shows every patient field.
        audit_record(
            action=PatientDataAccess.Action.VIEW,
            referral_ids=[referral.pk],
            user=request.user,
            request=request,
        )
    return render(request, "referrals/referral_form.html", {"form": form, "referral": referral})


def _workflow_context(request: HttpRequest, referral: Referral, **extra: Any) -> dict[str, Any]:
    can_change = request.user.has_perm("referrals.change_referral")
    actions = (
        [
            {"status": status, "label": ACTION_LABELS[status], "field": ACTION_FIELDS.get(status)}
            for status in referral.allowed_transitions()
        ]
        if can_change
        else []
    )
    return {
        "referral": referral,
        "actions": actions,
        "events": referral.events.select_related("actor"),
        **extra,
    }


@login_required
def referral_detail(request: HttpRequest, pk: int) -> HttpResponse:
    referral = get_referral_for_user(request.user, pk)
    context = _workflow_context(request, referral)
    context["tasks"] = referral.tasks.select_related("assignee")
    context["letters"] = referral.letters.all()
    context["submission"] = IntakeSubmission.objects.filter(referral=referral).first()
    if request.user.has_perm("referrals.view_patient_details"):
        audit_record(
            action=PatientDataAccess.Action.VIEW,
            referral_ids=[referral.pk],
            user=request.user,
            request=request,
        )
        context["attachments"] = referral.attachments.all()
        context["duplicate_window_days"] = settings.DUPLICATE_WINDOW_DAYS
        context["duplicates"] = possible_duplicates(
            provider=referral.provider,
            patient_last_name=referral.patient_last_name,
            patient_dob=referral.patient_dob,
            exclude_pk=referral.pk,
        )[:10]
    return render(request, "referrals/referral_detail.html", context)


@login_required
@require_POST
def referral_transition_view(request: HttpRequest, pk: int) -> HttpResponse:
    referral = get_referral_for_user(request.user, pk, write=True)
    form = TransitionForm(request.POST)
    error = None
    if form.is_valid():
        try:
            referral = referral_transition(
                referral=referral,
                to_status=form.cleaned_data["to_status"],
                actor=request.user,
                note=form.cleaned_data["note"],
                decline_reason=form.cleaned_data["decline_reason"],
                appointment_at=form.cleaned_data["appointment_at"],
            )
        except ValidationError as exc:
            error = " ".join(exc.messages)
        else:
            if not request.htmx:
                messages.success(request, f"Referral is now {referral.get_status_display()}.")
                return redirect(referral)
    else:
        error = " ".join(f"{', '.join(errors)}" for errors in form.errors.values())
    if error and not request.htmx:
        messages.error(request, error)
        return redirect(referral)
    referral.refresh_from_db()
    return render_page(
        request,
        "referrals/referral_detail.html",
        _workflow_context(request, referral, error=error),
        # 200 even for a refused move: htmx swaps only successful responses, and the
        # partial itself shows the message.
        partial="workflow",
    )


@login_required
@require_POST
@permission_required("referrals.delete_referral", raise_exception=True)
def referral_delete(request: HttpRequest, pk: int) -> HttpResponse:
    referral = get_referral_for_user(request.user, pk, write=True)
    number = referral.pk
    referral.delete()
    messages.success(request, f"Referral #{number} was deleted.")
    return redirect("referrals:list")


# Spreadsheet programs run a cell that starts with one of these as a formula.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
EXPORT_COLUMNS = [
    ("pk", "Referral #"),
    ("received_at", "Received"),
    ("direction", "Direction"),
    ("status", "Status"),
    ("urgency", "Urgency"),
    ("channel", "Channel"),
    ("provider__npi", "Partner NPI"),
    ("provider__last_name", "Partner last name"),
    ("provider__first_name", "Partner first name"),
    ("patient_last_name", "Patient last name"),
    ("patient_first_name", "Patient first name"),
    ("patient_dob", "Patient date of birth"),
    ("patient_phone", "Patient phone"),
    ("reason", "Reason"),
]
EXPORT_CHUNK = 2000


def _csv_cell(value: Any) -> str:
    text = "" if value is None else str(value)
    # A leading apostrophe keeps hostile text ("=HYPERLINK(...)") from running as a formula.
    return "'" + text if text.startswith(FORMULA_STARTS) else text


class _Echo:
    def write(self, value: str) -> str:
        return value


@login_required
@permission_required("referrals.view_patient_details", raise_exception=True)
def referral_export(request: HttpRequest) -> StreamingHttpResponse:
    """The work queue, as filtered, as CSV with patient details. Streamed in chunks, and
    each chunk is written to the audit trail as it is sent, so the trail names exactly
    the referrals that left the building."""
    filterset = ReferralFilter(
        request.GET or {"open": True},
        queryset=Referral.objects.for_user(request.user),
        request=request,
    )
    rows = filterset.qs.values_list(*(name for name, _ in EXPORT_COLUMNS))
    writer = csv.writer(_Echo())
    user = request.user

    def lines() -> Iterator[str]:
        yield writer.writerow([label for _, label in EXPORT_COLUMNS])
        chunk: list[tuple[Any, ...]] = []
        for row in rows.iterator(chunk_size=EXPORT_CHUNK):
            chunk.append(row)
            if len(chunk) == EXPORT_CHUNK:
                yield from _sent(chunk)
                chunk = []
        yield from _sent(chunk)

    def _sent(chunk: list[tuple[Any, ...]]) -> Iterator[str]:
        if not chunk:
            return
        audit_record(
            action=PatientDataAccess.Action.EXPORT,
            referral_ids=[row[0] for row in chunk],
            user=user,
            request=request,
        )
        for row in chunk:
            yield writer.writerow([_csv_cell(value) for value in row])

    filename = f"referrals-{timezone.localdate():%Y-%m-%d}.csv"
    return StreamingHttpResponse(
        lines(),
        content_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
