from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from core.htmx import render_page
from core.pagination import paginate
from referrals.forms import ReferralFilter, ReferralForm, TransitionForm
from referrals.models import ACTION_LABELS, Referral, Status
from referrals.selectors import get_referral_for_user
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
    return render_page(
        request,
        "referrals/referral_list.html",
        {"filter": filterset, "page": page},
        partial="results",
    )


@login_required
@permission_required("referrals.add_referral", raise_exception=True)
def referral_create(request: HttpRequest) -> HttpResponse:
    initial = {"provider": request.GET.get("provider"), "assigned_to": request.user.pk}
    form = ReferralForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            referral = referral_log(referral=form.instance, actor=request.user)
        except ValidationError as error:
            form.add_error(None, error)
        else:
            messages.success(request, f"Referral #{referral.pk} was logged.")
            return redirect(referral)
    return render(request, "referrals/referral_form.html", {"form": form})


@login_required
def referral_update(request: HttpRequest, pk: int) -> HttpResponse:
    referral = get_referral_for_user(request.user, pk, write=True)
    form = ReferralForm(request.POST or None, instance=referral)
    if request.method == "POST" and form.is_valid():
        form.save()
        messages.success(request, "Changes saved.")
        return redirect(referral)
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
