from __future__ import annotations

from datetime import datetime
from itertools import chain
from operator import attrgetter
from typing import Any, NamedTuple

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from core.htmx import render_page
from core.pagination import paginate
from outreach.models import Activity, Letter, Task
from partners.forms import (
    OrganizationFilter,
    OrganizationForm,
    ProviderFilter,
    ProviderForm,
    StaffMemberForm,
    TierForm,
)
from partners.models import Organization, Provider
from partners.selectors import (
    get_organization_for_user,
    get_provider_for_user,
    get_staff_member_for_user,
)
from partners.services import provider_set_tier
from referrals.models import Referral

TIMELINE_LENGTH = 30


class TimelineEntry(NamedTuple):
    kind: str
    at: datetime
    obj: Any


@login_required
@permission_required("partners.view_provider", raise_exception=True)
def provider_list(request: HttpRequest) -> HttpResponse:
    filterset = ProviderFilter(
        request.GET, queryset=Provider.objects.for_user(request.user).for_list()
    )
    page = paginate(request, filterset.qs)
    return render_page(
        request,
        "partners/provider_list.html",
        {"filter": filterset, "page": page},
        partial="results",
    )


@login_required
@permission_required("partners.add_provider", raise_exception=True)
def provider_create(request: HttpRequest) -> HttpResponse:
    initial = {"owner": request.user.pk, "organization": request.GET.get("organization")}
    form = ProviderForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        provider = form.save()
        messages.success(request, f"{provider.display_name} was added.")
        return redirect(provider)
    return render(request, "partners/provider_form.html", {"form": form})


@login_required
def provider_update(request: HttpRequest, pk: int) -> HttpResponse:
    provider = get_provider_for_user(request.user, pk, write=True)
    form = ProviderForm(request.POST or None, instance=provider)
    if request.method == "POST" and form.is_valid():
        form.save()
        messages.success(request, "Changes saved.")
        return redirect(provider)
    return render(request, "partners/provider_form.html", {"form": form, "provider": provider})


@login_required
def provider_detail(request: HttpRequest, pk: int) -> HttpResponse:
    provider = get_provider_for_user(request.user, pk)
    referrals = Referral.objects.for_user(request.user).filter(provider=provider)
    can_see_referrals = request.user.has_perm("referrals.view_referral")
    activities = list(
        provider.activities.select_related("logged_by").order_by("-occurred_at")[:TIMELINE_LENGTH]
    )
    timeline = sorted(
        chain(
            (
                TimelineEntry("referral", r.received_at, r)
                for r in referrals.order_by("-received_at")[:TIMELINE_LENGTH]
            )
            if can_see_referrals
            else (),
            (TimelineEntry("activity", a.occurred_at, a) for a in activities),
            (
                TimelineEntry("letter", letter.created_at, letter)
                for letter in Letter.objects.filter(provider=provider).order_by("-created_at")[
                    :TIMELINE_LENGTH
                ]
            ),
            (
                TimelineEntry("tier", change.changed_at, change)
                for change in provider.tier_changes.select_related("changed_by")[:TIMELINE_LENGTH]
            ),
        ),
        key=attrgetter("at"),
        reverse=True,
    )[:TIMELINE_LENGTH]
    context = {
        "provider": provider,
        "timeline": timeline,
        "open_tasks": Task.objects.for_user(request.user)
        .open()
        .filter(provider=provider)
        .select_related("assignee"),
        "last_activity": activities[0] if activities else None,
        "stats": Provider.objects.with_referral_stats().get(pk=provider.pk),
        "counts": referrals.aggregate(
            inbound=Count("pk", filter=Q(direction=Referral.Direction.INBOUND)),
            outbound=Count("pk", filter=Q(direction=Referral.Direction.OUTBOUND)),
        )
        if can_see_referrals
        else None,
        "tier_form": TierForm(initial={"tier": provider.tier}),
        "can_edit": Provider.objects.for_user(request.user, write=True)
        .filter(pk=provider.pk)
        .exists(),
        "can_log_activity": request.user.has_perm("outreach.add_activity"),
    }
    return render(request, "partners/provider_detail.html", context)


@login_required
@require_POST
@permission_required("partners.change_tier", raise_exception=True)
def provider_tier(request: HttpRequest, pk: int) -> HttpResponse:
    provider = get_provider_for_user(request.user, pk)
    form = TierForm(request.POST)
    if form.is_valid():
        change = provider_set_tier(
            provider=provider,
            tier=form.cleaned_data["tier"],
            reason=form.cleaned_data["reason"],
            actor=request.user,
        )
        if change:
            messages.success(request, f"Tier changed to {provider.tier or 'none'}.")
        else:
            messages.info(request, "The tier was already set to that.")
    else:
        messages.error(request, "To change a tier, give a reason.")
    return redirect(provider)


@login_required
@permission_required("partners.view_organization", raise_exception=True)
def organization_list(request: HttpRequest) -> HttpResponse:
    filterset = OrganizationFilter(request.GET, queryset=Organization.objects.all())
    page = paginate(request, filterset.qs)
    return render_page(
        request,
        "partners/organization_list.html",
        {"filter": filterset, "page": page},
        partial="results",
    )


@login_required
@permission_required("partners.add_organization", raise_exception=True)
def organization_create(request: HttpRequest) -> HttpResponse:
    form = OrganizationForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        organization = form.save()
        messages.success(request, f"{organization.name} was added.")
        return redirect(organization)
    return render(request, "partners/organization_form.html", {"form": form})


@login_required
def organization_update(request: HttpRequest, pk: int) -> HttpResponse:
    organization = get_organization_for_user(request.user, pk, write=True)
    form = OrganizationForm(request.POST or None, instance=organization)
    if request.method == "POST" and form.is_valid():
        form.save()
        messages.success(request, "Changes saved.")
        return redirect(organization)
    return render(
        request,
        "partners/organization_form.html",
        {"form": form, "organization": organization},
    )


@login_required
def organization_detail(request: HttpRequest, pk: int) -> HttpResponse:
    organization = get_organization_for_user(request.user, pk)
    context = {
        "organization": organization,
        "providers": Provider.objects.filter(organization=organization).for_list(),
        "staff": organization.staff.all(),
        "activities": Activity.objects.filter(organization=organization)
        .select_related("logged_by")
        .prefetch_related("providers", "staff")[:TIMELINE_LENGTH],
    }
    return render(request, "partners/organization_detail.html", context)


@login_required
def staff_create(request: HttpRequest, organization_pk: int) -> HttpResponse:
    organization = get_organization_for_user(request.user, organization_pk)
    if not request.user.has_perm("partners.add_staffmember"):
        raise PermissionDenied
    form = StaffMemberForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        staff = form.save(commit=False)
        staff.organization = organization
        staff.save()
        messages.success(request, f"{staff.display_name} was added to {organization.name}.")
        return redirect(organization)
    return render(
        request, "partners/staffmember_form.html", {"form": form, "organization": organization}
    )


@login_required
def staff_update(request: HttpRequest, pk: int) -> HttpResponse:
    staff = get_staff_member_for_user(request.user, pk, write=True)
    form = StaffMemberForm(request.POST or None, instance=staff)
    if request.method == "POST" and form.is_valid():
        form.save()
        messages.success(request, "Changes saved.")
        return redirect(staff.organization)
    return render(
        request,
        "partners/staffmember_form.html",
        {"form": form, "organization": staff.organization, "staff": staff},
    )


@login_required
@permission_required("partners.view_provider", raise_exception=True)
def provider_typeahead(request: HttpRequest) -> HttpResponse:
    """Matches for the provider picker: at most ten, by name, NPI, specialty or office."""
    field = request.GET.get("field", "provider")
    text = request.GET.get(f"{field}_search", request.GET.get("q", "")).strip()[:100]
    # Postgres refuses NUL in text parameters (a 500); nobody types one into a search box.
    text = text.replace("\x00", "")
    providers = (
        Provider.objects.for_user(request.user).search(text).select_related("organization")[:10]
        if len(text) >= 2
        else Provider.objects.none()
    )
    return render(
        request,
        "widgets/provider_picker.html#options",
        {"providers": providers, "text": text},
    )
