"""The history of a partner's or office's record: who changed what, when (partners/history.py)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.db import models
from django.http import HttpResponse
from django.shortcuts import render

from core.pagination import paginate
from core.types import AuthedRequest
from partners.history import KeptApart, record_changes, tier_and_health_changes
from partners.models import Organization, Provider, StaffMember
from partners.selectors import (
    get_organization_for_user,
    get_provider_for_user,
    get_removed_staff_member_for_user,
    get_staff_member_for_user,
)


@login_required
def provider_history(request: AuthedRequest, pk: int) -> HttpResponse:
    provider = get_provider_for_user(request.user, pk)
    return _history_page(
        request,
        provider,
        Provider.history.filter(id=provider.pk),
        elsewhere="With its tier and health: set by the nightly tiering and health check, or "
        "a manager's tier, with the reason given.",
        kept_apart=tier_and_health_changes(provider.pk),
    )


@login_required
def organization_history(request: AuthedRequest, pk: int) -> HttpResponse:
    organization = get_organization_for_user(request.user, pk)
    return _history_page(request, organization, Organization.history.filter(id=organization.pk))


@login_required
def staff_history(request: AuthedRequest, pk: int) -> HttpResponse:
    """A staff member has no page of their own: the way back is to their office."""
    staff = get_staff_member_for_user(request.user, pk)
    return _history_page(
        request,
        staff,
        StaffMember.history.filter(id=staff.pk),
        parent=staff.organization,
    )


@login_required
def removed_staff_history(request: AuthedRequest, organization_pk: int, pk: int) -> HttpResponse:
    """A staff member removed in the admin has no page and no record left, but their
    history stays: reached from the office they were removed from (removed_staff)."""
    organization, removal = get_removed_staff_member_for_user(request.user, organization_pk, pk)
    return _history_page(
        request,
        # The person as they stood when removed, for the page's title.
        removal.instance,
        StaffMember.history.filter(id=pk),
        # Not the office on their last row: that one may have been merged into this one.
        parent=organization,
    )


def _history_page(
    request: AuthedRequest,
    record: models.Model,
    history: models.QuerySet[Any],
    *,
    elsewhere: str = "",
    parent: models.Model | None = None,
    kept_apart: KeptApart | None = None,
) -> HttpResponse:
    history = history.select_related("history_user").order_by("-history_date", "-history_id")
    page = paginate(request, history)
    return render(
        request,
        "partners/record_history.html",
        {
            "record": record,
            "page": page,
            "changes": record_changes(page, history, kept_apart=kept_apart),
            "elsewhere": elsewhere,
            "parent": parent,
        },
    )
