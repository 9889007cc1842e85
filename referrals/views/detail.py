"""One referral's page and its actions: edit, move, consult report, delete."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from audit.models import PatientDataAccess
from audit.services import PATIENT_FIELDS, audit_record
from core.htmx import render_page
from core.types import AuthedRequest
from outreach.models import Task
from referrals.forms import AssignForm, DuplicateForm, ReferralForm, TransitionForm
from referrals.models import REASON_SUGGESTIONS, Referral, Status
from referrals.selectors import alike_referrals, get_referral_for_user
from referrals.services.consult_reports import referral_record_consult_report
from referrals.services.deletion import referrals_delete
from referrals.services.duplicates import (
    confirmed_distinct,
    referral_confirm_not_duplicate,
    referral_mark_duplicate,
    referral_unmark_duplicate,
)
from referrals.services.edit import referral_edit
from referrals.services.workflow import referral_transition, referral_transition_not_yet

# Actions that need more than a click, and the field each one asks for.
ACTION_FIELDS: dict[str, str] = {
    Status.DECLINED: "decline_reason",
    Status.SCHEDULED: "appointment_at",
    Status.ON_HOLD: "hold_reason",
    Status.CANCELLED: "cancel_reason",
}

# Steps whose button waits for the appointment time; until then the page says why.
OFFERED_ONCE_DUE: tuple[str, ...] = (Status.SEEN, Status.NO_SHOW)

# Steps that send the referring office a letter on one click: asked once more first.
ACTION_CONFIRMATIONS: dict[str, str] = {
    Status.NO_SHOW: "Mark the patient as a no-show? The referring office is sent a letter "
    "saying the appointment was missed.",
}


@login_required
@require_POST
def referral_consult_report(request: AuthedRequest, pk: int) -> HttpResponse:
    referral = get_referral_for_user(request.user, pk, write=True)
    try:
        recorded = referral_record_consult_report(referral=referral, actor=request.user)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        if recorded:
            messages.success(request, "The consult report is recorded as received.")
        else:
            messages.info(request, "The consult report was already recorded.")
    return redirect(referral)


@login_required
def referral_update(request: AuthedRequest, pk: int) -> HttpResponse:
    referral = get_referral_for_user(request.user, pk, write=True)
    form = ReferralForm(request.POST or None, instance=referral)
    if request.method == "POST" and form.is_valid():
        try:
            with transaction.atomic():
                referral_edit(
                    referral=form.save(commit=False),
                    fields=form.Meta.fields,
                    actor=request.user,
                    version=form.cleaned_data["version"],
                )
                changed = [name for name in form.changed_data if name in PATIENT_FIELDS]
                if changed:
                    audit_record(
                        action=PatientDataAccess.Action.CHANGE,
                        referral_ids=[referral.pk],
                        user=request.user,
                        fields=changed,
                        request=request,
                    )
        except ValidationError as error:
            if error.code != "stale":
                raise
            # The user's values stay; the next save is measured against the current row.
            form.data = data = cast(QueryDict, form.data).copy()  # bound to request.POST
            data["version"] = (
                Referral.objects.filter(pk=referral.pk).values_list("updated_at", flat=True).get()
            ).isoformat()
            form.add_error(None, error)
        else:
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


def _workflow_context(
    request: AuthedRequest,
    referral: Referral,
    *,
    step_form: TransitionForm | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """The workflow region's context. `step_form` is a step sent back with errors: its step
    is drawn open with what was typed and each error next to its field."""
    can_change = request.user.has_perm("referrals.change_referral")
    actions = []
    not_yet = []
    refused_step = step_form.data.get("to_status") if step_form is not None else None
    for status in referral.allowed_transitions() if can_change else ():
        if status in OFFERED_ONCE_DUE:
            why = referral_transition_not_yet(referral=referral, to_status=status)
            if why:
                not_yet.append(why)
                continue
        actions.append(
            {
                "status": status,
                "label": referral.action_label(status),
                "field": ACTION_FIELDS.get(status),
                "suggestions": REASON_SUGGESTIONS.get(status, ()),
                "confirm": ACTION_CONFIRMATIONS.get(status, ""),
                "form": step_form if status == refused_step else None,
            }
        )
    return {
        "referral": referral,
        "actions": actions,
        "not_yet": not_yet,
        "events": referral.events.for_timeline(),
        "assign_form": AssignForm(
            holder=referral.assigned_to_id,
            initial={
                "assignee": referral.assigned_to_id,
                "version": referral.updated_at.isoformat(),
            },
        )
        if can_change
        else None,
        **extra,
    }


def _detail_context(request: AuthedRequest, referral: Referral, **workflow: Any) -> dict[str, Any]:
    context = _workflow_context(request, referral, **workflow)
    context["tasks"] = referral.tasks.select_related("assignee")
    context["letters"] = referral.letters.all()
    # Listed for everyone who sees the referral; linked for those who may open them.
    context["can_open_task"] = Task.objects.openable_by(request.user)
    context["can_open_letter"] = referral.letters.openable_by(request.user)
    context["submission"] = getattr(referral, "intake_submission", None)
    if request.user.has_perm("referrals.view_patient_details"):
        audit_record(
            action=PatientDataAccess.Action.VIEW,
            referral_ids=[referral.pk],
            user=request.user,
            request=request,
        )
        context["attachments"] = referral.attachments.all()
        context["duplicate_window_days"] = settings.DUPLICATE_WINDOW_DAYS
        alike = alike_referrals(referral)
        # Those already marked as copies are settled: of this one, they are listed as its
        # duplicates; of another, not at all.
        candidates = [] if referral.duplicate_of_id is not None else alike.candidates
        # Those a coordinator found distinct are listed quietly, still markable.
        context["duplicates"] = [
            other for other in candidates if not confirmed_distinct(referral, other)
        ]
        context["not_duplicates"] = [
            other for other in candidates if confirmed_distinct(referral, other)
        ]
        context["copies"] = alike.copies
        # Beyond the first few of each, a link to all of them in the work queue.
        context["copies_more"] = alike.copies_total - len(alike.copies)
        context["candidates_more"] = (
            alike.candidates_total - len(alike.candidates) if candidates else 0
        )
        markable = (
            referral.duplicate_of_id is None
            and not context["copies"]
            and Status.CANCELLED in referral.allowed_transitions()
            and request.user.has_perm("referrals.change_referral")
        )
        # A booked referral is the one to keep (check_duplicate): the page says so.
        context["booked_keeps"] = markable and referral.status == Status.SCHEDULED
        context["can_mark_duplicate"] = markable and not context["booked_keeps"]
    return context


@login_required
def referral_detail(request: AuthedRequest, pk: int) -> HttpResponse:
    # The office-link submission it came from, if any, in the same query.
    referral = get_referral_for_user(
        request.user, pk, related=("intake_submission",), with_sla=True
    )
    return render(request, "referrals/referral_detail.html", _detail_context(request, referral))


@login_required
@require_POST
def referral_transition_view(request: AuthedRequest, pk: int) -> HttpResponse:
    referral = get_referral_for_user(request.user, pk, write=True)
    form = TransitionForm(request.POST)
    if form.is_valid():
        try:
            referral = referral_transition(
                referral=referral,
                to_status=form.cleaned_data["to_status"],
                actor=request.user,
                note=form.cleaned_data["note"],
                decline_reason=form.cleaned_data["decline_reason"],
                appointment_at=form.cleaned_data["appointment_at"],
                hold_reason=form.cleaned_data["hold_reason"],
                cancel_reason=form.cleaned_data["cancel_reason"],
                version=form.cleaned_data["version"],
            )
        except ValidationError as exc:
            # A refusal naming a field ("appointment_at") is shown next to that field.
            form.add_error(None, exc)
        else:
            if not request.htmx:
                messages.success(request, f"Referral is now {referral.status_label}.")
                return redirect(referral)
    step_form = form if form.errors else None
    # Errors on fields the step does not show (or on none) go in the alert above the steps.
    shown = {"note", ACTION_FIELDS.get(request.POST.get("to_status", ""))}
    error = " ".join(
        str(message)
        for name, found in form.errors.items()
        if name not in shown
        for message in found
    )
    # Read again with its SLA state, which the move may have changed.
    referral = get_referral_for_user(
        request.user, pk, related=("intake_submission",), with_sla=True
    )
    # Without htmx only a refusal gets here: the whole page again, the step open with what
    # was typed.
    build = _workflow_context if request.htmx else _detail_context
    return render_page(
        request,
        "referrals/referral_detail.html",
        build(request, referral, step_form=step_form, error=error),
        # 200 even for a refused move: htmx swaps only successful responses, and the
        # partial itself shows the errors.
        partial="referrals/referral_workflow.html",
    )


@login_required
@require_POST
@permission_required("referrals.view_patient_details", raise_exception=True)
def referral_mark_duplicate_view(request: AuthedRequest, pk: int) -> HttpResponse:
    """The detail page's "this is a duplicate of #N" (among the possible duplicates it
    lists): answered with the page again and a message saying what was done or why not."""
    referral = get_referral_for_user(request.user, pk, write=True)
    form = DuplicateForm(request.POST)
    if form.is_valid():
        number = form.cleaned_data["original"]
        original = Referral.objects.for_user(request.user).filter(pk=number).first()
        if original is None:
            form.add_error("original", f"There is no referral #{number} that you can open.")
        else:
            try:
                referral_mark_duplicate(
                    referral=referral,
                    original=original,
                    actor=request.user,
                    version=form.cleaned_data["version"],
                    request=request,
                )
            except ValidationError as error:
                form.add_error(None, error)
            else:
                told = (
                    "the specialist is sent nothing (they have the original)"
                    if referral.direction == Referral.Direction.OUTBOUND
                    else "the referring office is told nothing (it hears about the original)"
                )
                messages.success(
                    request,
                    f"Referral #{referral.pk} is marked as a duplicate of #{original.pk}: "
                    f"cancelled, counted in no figure, and {told}. Any documents it had are "
                    f"now on #{original.pk}.",
                )
                return redirect(referral)
    return _back_with_errors(request, referral, form, "Not marked as a duplicate")


@login_required
@require_POST
@permission_required("referrals.view_patient_details", raise_exception=True)
def referral_unmark_duplicate_view(request: AuthedRequest, pk: int) -> HttpResponse:
    """ "Not a copy": a referral marked as a duplicate by mistake goes back to work."""
    return _settle_duplicate(
        request,
        pk,
        referral_unmark_duplicate,
        lambda referral: (
            f"Referral #{referral.pk} is no longer a duplicate: it is "
            f"{referral.status_label.lower()} again and counts in every figure."
        ),
    )


@login_required
@require_POST
@permission_required("referrals.view_patient_details", raise_exception=True)
def referral_not_duplicate_view(request: AuthedRequest, pk: int) -> HttpResponse:
    """ "Not a copy": the coordinator found a possible duplicate a referral of its own."""
    return _settle_duplicate(
        request,
        pk,
        referral_confirm_not_duplicate,
        lambda referral: (
            f"Referral #{referral.pk} is kept as a referral of its own: the "
            "queue no longer flags it as a possible duplicate."
        ),
    )


def _settle_duplicate(
    request: AuthedRequest,
    pk: int,
    settle: Callable[..., Referral],
    said: Callable[[Referral], str],
) -> HttpResponse:
    """A button of the referral's page that asks only its version (the page's updated_at):
    `settle` the referral's duplicate question, and say what it did, or why not."""
    referral = get_referral_for_user(request.user, pk, write=True)
    form = DuplicateForm(request.POST)
    form.fields["original"].required = False
    if form.is_valid():
        try:
            referral = settle(
                referral=referral, actor=request.user, version=form.cleaned_data["version"]
            )
        except ValidationError as error:
            form.add_error(None, error)
        else:
            messages.success(request, said(referral))
            return redirect(referral)
    return _back_with_errors(request, referral, form, "Not changed")


def _back_with_errors(
    request: AuthedRequest, referral: Referral, form: forms.Form, outcome: str
) -> HttpResponse:
    """Back to the referral's page, each of the form's errors said as a message there (the
    buttons post from the page, which has no form of its own to show them in)."""
    for problems in form.errors.values():
        for problem in problems:
            messages.error(request, f"{outcome}: {problem}")
    return redirect(referral)


@login_required
@require_POST
@permission_required("referrals.delete_referral", raise_exception=True)
def referral_delete(request: AuthedRequest, pk: int) -> HttpResponse:
    referral = get_referral_for_user(request.user, pk, write=True)
    number = referral.pk
    try:
        referrals_delete(referrals=[referral], actor=request.user, request=request)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
        return redirect(referral)
    messages.success(request, f"Referral #{number} was deleted.")
    return redirect("referrals:list")
