"""Pages of the liaison's field work added after the day plan: annual meetings due with
key partners, editing an event, and the office type-ahead of the day plan."""

from __future__ import annotations

from typing import cast

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.db import transaction
from django.db.models import Q, QuerySet
from django.http import HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.utils import timezone

from core.htmx import render_page
from core.pagination import paginate
from core.types import AuthedRequest
from outreach import meetings
from outreach.forms import AnnualMeetingFilterForm, EventForm, plannable_offices
from outreach.models import Event
from outreach.selectors import get_event_for_user
from partners.models import Organization, Provider

OFFICE_MATCHES = 10


@login_required
@permission_required("outreach.view_event", raise_exception=True)
def annual_meeting_list(request: AuthedRequest) -> HttpResponse:
    """Key partners (tier A, then B) whose annual meeting is due: a liaison's own
    partners; a manager may see everyone's."""
    form = AnnualMeetingFilterForm(request.GET or None)
    sees_all = request.user.has_perm("outreach.view_all_tasks")
    # A manager owns few partners, if any: they start from everyone's.
    scope, tier = ("all" if sees_all else "mine"), ""
    if form.is_valid():
        scope = form.cleaned_data["scope"] or scope
        tier = form.cleaned_data["tier"]
    if not sees_all:
        scope = "mine"
    providers = Provider.objects.for_user(request.user).select_related("organization", "owner")
    if scope == "mine":
        providers = providers.filter(owner=request.user)
    if tier:
        providers = providers.filter(tier=tier)
    today = timezone.localdate()
    page = paginate(request, meetings.annual_meetings_due(providers, today=today))
    return render_page(
        request,
        "outreach/annual_meeting_list.html",
        {"page": page, "form": form, "scope": scope, "tier": tier, "sees_all": sees_all},
        partial="results",
    )


@login_required
@permission_required("outreach.add_plannedvisit", raise_exception=True)
def day_plan_office_typeahead(request: AuthedRequest) -> HttpResponse:
    """Matches for the day plan's office picker: the user's plannable offices by name,
    city or ZIP, at most ten."""
    return _office_matches(request, plannable_offices(request.user), nothing="No office of yours")


@login_required
@permission_required("outreach.change_event", raise_exception=True)
def event_office_typeahead(request: AuthedRequest) -> HttpResponse:
    """Matches for the office an event's invitations go to: any office, by name, city or
    ZIP, at most ten (a select of every office would weigh megabytes on a large network)."""
    return _office_matches(request, Organization.objects.all(), nothing="No office")


def _office_matches(
    request: AuthedRequest, offices: QuerySet[Organization], *, nothing: str
) -> HttpResponse:
    text = request.GET.get("organization_search", request.GET.get("q", ""))
    # Postgres refuses NUL in text parameters; nobody searches for one.
    text = text.replace("\x00", "").strip()[:100]
    matches = offices.none()
    if len(text) >= 2:
        matches = offices
        for word in text.split()[:5]:
            matches = matches.filter(
                Q(name__icontains=word) | Q(city__icontains=word) | Q(zip_code__startswith=word)
            )
        matches = matches.order_by("name", "pk")[:OFFICE_MATCHES]
    return render(
        request,
        "widgets/office_options.html",
        {"offices": matches, "text": text, "nothing": nothing},
    )


@login_required
def event_update(request: AuthedRequest, pk: int) -> HttpResponse:
    """Edit an event, typically to enter its cost once the catering bill is in; the
    ledger follows when attendance is recorded (again)."""
    event = get_event_for_user(request, pk, details=True)
    form = EventForm(request.POST or None, instance=event)
    if request.method == "POST" and form.is_valid():
        with transaction.atomic():
            # Locked until the save: a colleague's save waits, then finds this one.
            current = (
                Event.objects.select_for_update()
                .filter(pk=event.pk)
                .values_list("updated_at", flat=True)
                .get()
            )
            version = form.cleaned_data["version"]
            stale = version is not None and version != current
            if not stale:
                meetings.event_save(event=form.save(commit=False), changed=form.changed_data)
                form.save_m2m()
        if stale:
            # Nothing saved: what was typed comes back, measured against the event as it
            # is now when sent again.
            form.data = data = cast(QueryDict, form.data).copy()  # bound to request.POST
            data["version"] = current.isoformat()
            form.add_error(
                None,
                "Someone changed this event after you opened it, so nothing was saved. Your "
                "values are below: check them against the event's page and save again to "
                "keep them.",
            )
        elif event.activities.exists():
            messages.info(
                request,
                "Saved. Press “Update the attendance record” to carry a new cost or date "
                "into the activities and the gifts and meals ledger.",
            )
            return redirect(event)
        else:
            messages.success(request, "Saved.")
            return redirect(event)
    return render(
        request,
        "outreach/event_form.html",
        {"form": form, "event": event, "cancel_url": event.get_absolute_url()},
    )
