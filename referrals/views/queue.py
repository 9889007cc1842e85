"""The work queue: its list, bulk actions, and claiming or assigning a row."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from audit.services import audit_names_listed
from core.forms import share_choices
from core.htmx import render_page
from core.pagination import paginate_capped
from core.types import AuthedRequest
from referrals.bulk import bulk_summary
from referrals.forms import AssignForm, BulkActionForm, ReferralFilter
from referrals.models import Referral
from referrals.selectors import get_referral_for_user
from referrals.services.assignment import referral_assign, referral_claim
from referrals.services.bulk import referral_bulk_apply


@login_required
@permission_required("referrals.view_referral", raise_exception=True)
def referral_list(request: AuthedRequest) -> HttpResponse:
    """The work queue: every referral the user may see, filtered and paginated."""
    filterset = ReferralFilter.for_queue(
        request.GET,
        queryset=Referral.objects.for_user(request.user)
        .for_queue()
        .with_sla()
        .with_duplicate_flag(),
        request=request,
    )
    page = paginate_capped(request, filterset.qs)
    bulk_form = None
    if request.user.has_perm("referrals.change_referral"):
        bulk_form = BulkActionForm()
        share_choices(filterset.form.fields["assigned_to"], bulk_form.fields["assign_to"])
    audit_names_listed(request, [referral.pk for referral in page])
    return render_page(
        request,
        "referrals/referral_list.html",
        {
            "filter": filterset,
            "page": page,
            "bulk_form": bulk_form,
            "back": request.get_full_path(),
        },
        partial="referrals/queue_results.html",
    )


def _queue_return_url(request: HttpRequest) -> str:
    """The queue page the action came from (its filters and page), never an address
    outside this site."""
    target = request.POST.get("next", "")
    # A path on this site only; `redirect()` would take anything else for a URL name.
    if target.startswith("/") and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return reverse("referrals:list")


def _back_to_queue(request: HttpRequest) -> HttpResponse:
    return HttpResponseRedirect(_queue_return_url(request))


@login_required
@require_POST
@permission_required("referrals.change_referral", raise_exception=True)
def referral_bulk(request: AuthedRequest) -> HttpResponse:
    """Assign or move the selected rows together; rows changed since the page loaded are
    skipped and listed, so nobody's change is overwritten silently."""
    form = BulkActionForm(request.POST)
    if not form.is_valid():
        return _bulk_refused(
            request, [" ".join(map(str, errors)) for errors in form.errors.values()]
        )
    try:
        result = referral_bulk_apply(
            queryset=Referral.objects.for_user(request.user, write=True),
            versions=form.cleaned_data["rows"],
            actor=request.user,
            assign_to=form.cleaned_data["assign_to"],
            unassign=form.cleaned_data["unassign"],
            to_status=form.cleaned_data["to_status"],
            reason=form.cleaned_data["reason"],
        )
    except ValidationError as error:
        return _bulk_refused(request, [" ".join(error.messages)])
    done, skipped = bulk_summary(result, form.cleaned_data)
    if done:
        messages.success(request, done)
    for line in skipped:
        messages.warning(request, line)
    if request.htmx:
        # The rows changed: the whole queue page again, with the messages.
        return HttpResponse(status=204, headers={"HX-Redirect": _queue_return_url(request)})
    return _back_to_queue(request)


def _bulk_refused(request: AuthedRequest, problems: list[str]) -> HttpResponse:
    """Nothing was applied. Sent by htmx, only the message is drawn, above the bulk form,
    so the selected rows and the chosen action stay as they were; without JavaScript, back
    to the queue with the message."""
    if request.htmx:
        return render(request, "referrals/bulk_refused.html", {"problems": problems})
    for problem in problems:
        messages.error(request, problem)
    return _back_to_queue(request)


@login_required
@require_POST
def referral_claim_view(request: AuthedRequest, pk: int) -> HttpResponse:
    referral = get_referral_for_user(request.user, pk, write=True)
    if referral_claim(referral_id=referral.pk, user=request.user):
        messages.success(request, f"Referral #{referral.pk} is yours.")
    else:
        # Read again: a double click finds it claimed, by this same user.
        holder = Referral.objects.filter(pk=referral.pk).values_list("assigned_to", flat=True)
        if holder.first() == request.user.pk:
            messages.info(request, f"Referral #{referral.pk} is already yours.")
        else:
            messages.warning(request, f"Referral #{referral.pk} was already taken by someone else.")
    return _back_to_queue(request)


@login_required
@require_POST
def referral_assign_view(request: AuthedRequest, pk: int) -> HttpResponse:
    referral = get_referral_for_user(request.user, pk, write=True)
    form = AssignForm(request.POST, holder=referral.assigned_to_id)
    if not form.is_valid():
        messages.error(
            request,
            " ".join(map(str, form.non_field_errors())) or "Choose a coordinator from the list.",
        )
    elif referral_assign(
        referral=referral,
        assignee=form.cleaned_data["assignee"],
        actor=request.user,
        version=form.cleaned_data["version"],
    ):
        who = form.cleaned_data["assignee"]
        messages.success(
            request,
            f"Referral #{referral.pk} is now with {who.get_full_name() or who}."
            if who
            else f"Referral #{referral.pk} is unassigned.",
        )
    else:
        messages.warning(
            request,
            f"Referral #{referral.pk} was changed by someone else meanwhile; "
            "nothing was overwritten. Check it and try again.",
        )
    return _back_to_queue(request) if request.POST.get("next") else redirect(referral)
