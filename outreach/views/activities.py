"""Activity pages: logging a touch with a partner (and its cost) and the list of them."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone

from core.htmx import render_page
from core.pagination import paginate
from core.types import AuthedRequest
from outreach import ledger
from outreach.forms import ActivityForm, PartnerContextForm
from outreach.models import Activity, ActivityShare, ComplianceLimit
from outreach.services.activities import activity_log
from outreach.services.compliance import ComplianceLimitExceeded
from partners.selectors import get_organization_for_user, get_provider_for_user


@login_required
@permission_required("outreach.add_activity", raise_exception=True)
def activity_create(request: AuthedRequest) -> HttpResponse:
    provider = organization = None
    context = PartnerContextForm(request.POST if request.method == "POST" else request.GET)
    if provider_pk := context.value("provider"):
        provider = get_provider_for_user(request.user, provider_pk)
        organization = provider.organization
    elif organization_pk := context.value("organization"):
        organization = get_organization_for_user(request.user, organization_pk)
    partner = provider or organization
    if partner is None:
        messages.info(request, "Choose the partner you met, then log the activity from there.")
        return redirect("partners:provider_list")
    initial: dict[str, Any] = {"occurred_at": timezone.localtime().replace(second=0, microsecond=0)}
    if provider is not None:
        initial["providers"] = [provider.pk]
    form = ActivityForm(
        request.POST or None,
        initial=initial,
        organization=organization,
        provider=provider,
        user=request.user,
    )
    if request.method == "POST" and form.is_valid():
        activity = form.save(commit=False)
        activity.organization = organization
        # The form posted again after its answer was lost gets back the activity it logged.
        logged = _log_or_explain(
            form,
            lambda: activity_log(
                activity=activity,
                providers=form.cleaned_data["providers"],
                staff=form.cleaned_data["staff"],
                actor=request.user,
                partner=provider,
            ),
        )
        if logged is not None:
            messages.success(request, f"{logged.get_kind_display()} logged.")
            _warn_near_limit(request, logged)
            target = partner.get_absolute_url()
            if request.htmx:
                # Saved: the page's script drops the draft kept on the device.
                return HttpResponse(status=204, headers={"HX-Redirect": target})
            return redirect(target)
    return render(
        request,
        "outreach/activity_form.html",
        {"form": form, "provider": provider, "organization": organization},
    )


@login_required
@permission_required("outreach.view_activity", raise_exception=True)
def activity_list(request: AuthedRequest) -> HttpResponse:
    activities = (
        Activity.objects.select_related("logged_by", "organization")
        .prefetch_related("providers", "staff")
        .order_by("-occurred_at", "-pk")
    )
    if request.GET.get("mine"):
        activities = activities.filter(logged_by=request.user)
    page = paginate(request, activities)
    return render_page(request, "outreach/activity_list.html", {"page": page}, partial="results")


def _log_or_explain(form: ActivityForm, log: Callable[[], Activity]) -> Activity | None:
    """Run the log service and return the activity it logged (for a retried post, the one
    logged the first time); a refusal (over the yearly limit) becomes a field error so the
    form re-renders with everything typed, and None is returned."""
    try:
        return log()
    except ComplianceLimitExceeded as error:
        form.add_error("cost", error)
    except PermissionDenied as error:
        form.add_error("cost", str(error))
    return None


def _warn_near_limit(request: AuthedRequest, *activities: Activity) -> None:
    """After costs are logged (a lunch, or an event's activity per office), say once which
    physicians are at 80% of the limit or more: a fixed number of queries however many
    offices and physicians there are."""
    costed = [activity for activity in activities if activity.cost]
    years = sorted({timezone.localtime(activity.occurred_at).year for activity in costed})
    for year in years:
        limit, set_for = ComplianceLimit.applying_to(year)
        if not limit:
            messages.info(
                request, f"No gifts and meals limit is set for {year}; a manager can set it."
            )
            continue
        if set_for != year:
            messages.info(
                request,
                f"No gifts and meals limit is set for {year} yet: the {set_for} limit "
                f"(${limit}) applies until a manager sets it.",
            )
        shares = (
            ActivityShare.objects.filter(activity__in=costed, year=year)
            .select_related("provider")
            .order_by("provider__last_name", "provider__first_name", "provider_id")
        )
        providers = {share.provider_id: share.provider for share in shares}
        spent = ledger.spent_by_provider(providers, year=year)
        for provider_id, provider in providers.items():
            total = spent.get(provider_id, Decimal("0.00"))
            if total >= limit * ledger.WARN_AT:
                messages.warning(
                    request,
                    f"{provider.display_name} is at ${total} of the ${limit} limit "
                    f"for {year} ({int(total / limit * 100)}%).",
                )
