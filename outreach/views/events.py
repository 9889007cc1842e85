"""Event pages: the list, creating one, its invitations, RSVPs and attendance."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count, Q
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from core.htmx import render_page
from core.pagination import paginate
from core.templatetags.people import person
from core.types import AuthedRequest
from outreach.forms import (
    EventAttendanceForm,
    EventCancelForm,
    EventForm,
    InvitationForm,
    InviteForm,
)
from outreach.models import ActivityShare, Event, Invitation
from outreach.selectors import get_event_for_user, may_change_event_details
from outreach.services.compliance import ComplianceLimitExceeded
from outreach.services.events import (
    event_cancel,
    event_check_cancel,
    event_invite,
    event_record_attendance,
    invitation_save,
)
from outreach.services.events import event_create as event_create_service
from outreach.views.activities import _warn_near_limit


@login_required
@permission_required("outreach.view_event", raise_exception=True)
def event_list(request: AuthedRequest) -> HttpResponse:
    events = Event.objects.select_related("organizer").order_by("-starts_at", "-pk")
    return render_page(
        request, "outreach/event_list.html", {"page": paginate(request, events)}, partial="results"
    )


@login_required
@permission_required("outreach.add_event", raise_exception=True)
def event_create(request: AuthedRequest) -> HttpResponse:
    initial = {}
    # "Plan an annual meeting" links here with the kind chosen.
    if request.GET.get("kind") in Event.Kind.values:
        initial["kind"] = request.GET["kind"]
    form = EventForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        result = event_create_service(event=form.save(commit=False), actor=request.user)
        if result.created:
            messages.success(request, f"{result.event.name} created. Now invite people.")
        else:
            messages.info(
                request, f"{result.event.name} was created a moment ago: it is not made again."
            )
        return redirect(result.event)
    return render(
        request,
        "outreach/event_form.html",
        {"form": form, "cancel_url": reverse("outreach:event_list")},
    )


@login_required
def event_detail(request: AuthedRequest, pk: int) -> HttpResponse:
    return _event_page(request, get_event_for_user(request, pk))


INVITATIONS_PER_PAGE = 50


def _event_page(
    request: AuthedRequest, event: Event, attendance_form: EventAttendanceForm | None = None
) -> HttpResponse:
    invitations = event.invitations.select_related("provider", "staff__organization").order_by("pk")
    return render(
        request,
        "outreach/event_detail.html",
        {
            "event": event,
            "can_change": may_change_event_details(request.user, event),
            "can_cancel": event.cancelled_at is None and event.starts_at > timezone.now(),
            # A dinner for the whole network invites hundreds: a page at a time, with the
            # tally of them all above.
            "page": paginate(request, invitations, per_page=INVITATIONS_PER_PAGE),
            **_rsvp_tally(event),
            "invite_form": InviteForm(),
            "rsvp_choices": Invitation.Rsvp.choices,
            "attendance_form": attendance_form or _attendance_form(event),
            "can_override": request.user.has_perm("outreach.override_compliance_limit"),
            "activities": event.activities.select_related("organization").order_by(
                "organization__name", "pk"
            ),
            "shares": ActivityShare.objects.filter(activity__event=event)
            .select_related("provider")
            .order_by("provider__last_name", "provider__first_name", "pk"),
        },
    )


def _attendance_form(event: Event) -> EventAttendanceForm:
    """The reason a manager gave when recording it over the limit, offered again: a
    correction recorded now needs it confirmed (or changed) for the new amounts."""
    reason = (
        event.activities.exclude(limit_override_reason="")
        .order_by("pk")
        .values_list("limit_override_reason", flat=True)
        .first()
    )
    return EventAttendanceForm(initial={"limit_override_reason": reason or ""})


def _rsvp_tally(event: Event) -> dict[str, Any]:
    """The RSVP tally and head count shown above the invitation list, in one aggregate."""
    totals = event.invitations.aggregate(
        attended=Count("pk", filter=Q(attended=True)),
        **{rsvp: Count("pk", filter=Q(rsvp=rsvp)) for rsvp in Invitation.Rsvp.values},
    )
    return {
        "counts": {Invitation.Rsvp(k).label: totals[k] for k in Invitation.Rsvp.values},
        "attended": totals["attended"],
    }


@login_required
@require_POST
def event_invite_view(request: AuthedRequest, pk: int) -> HttpResponse:
    event = get_event_for_user(request, pk, write=True)
    form = InviteForm(request.POST)
    if form.is_valid():
        office = form.cleaned_data["organization"]
        # A partner whose NPI the registry lists as deactivated has retired, moved away or
        # died: an invitation to them is not sent in their office's name.
        providers = list(office.providers.npi_deactivated(False))
        gone = list(office.providers.npi_deactivated(True).order_by("last_name", "first_name"))
        staff = list(office.staff.all())
        try:
            added = event_invite(event=event, providers=providers, staff=staff)
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
            return redirect(event)
        if not (providers or staff or gone):
            messages.warning(
                request,
                f"Nobody at {office.name} to invite: add its providers and staff to the "
                "office first.",
            )
        elif not added:
            messages.info(request, f"Everyone at {office.name} is already invited.")
        else:
            people = "person" if added == 1 else "people"
            messages.success(request, f"Invited {added} {people} from {office.name}.")
        if gone:
            names = ", ".join(provider.display_name for provider in gone)
            messages.warning(
                request,
                f"Not invited: {names}. The NPPES registry lists "
                f"{'their NPIs' if len(gone) > 1 else 'the NPI'} as deactivated; "
                "check before inviting by hand.",
            )
    else:
        messages.error(request, " ".join(str(error) for error in form.errors["organization"]))
    return redirect(event)


@login_required
@require_POST
def invitation_update(request: AuthedRequest, pk: int) -> HttpResponse:
    invitation = get_object_or_404(Invitation.objects.select_related("event"), pk=pk)
    event = get_event_for_user(request, invitation.event_id, write=True)
    form = InvitationForm(request.POST, instance=invitation)
    saved = False
    if form.is_valid():
        try:
            invitation_save(invitation=form.save(commit=False))
            saved = True
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
    else:
        messages.error(request, "That RSVP is not one of the choices.")
    if request.htmx and saved:
        invitation = Invitation.objects.select_related("provider", "staff__organization").get(
            pk=invitation.pk
        )
        row = render_to_string(
            "outreach/event_detail.html#invitation-row",
            {"invitation": invitation, "event": event, "rsvp_choices": Invitation.Rsvp.choices},
            request=request,
        )
        # The tally above the list changes with the row: swapped in beside it.
        tally = render_to_string(
            "outreach/event_detail.html#rsvp-counts",
            {**_rsvp_tally(event), "out_of_band": True},
            request=request,
        )
        return HttpResponse(row + tally)
    return redirect(event)


@login_required
@require_POST
def event_attendance(request: AuthedRequest, pk: int) -> HttpResponse:
    event = get_event_for_user(request, pk, write=True)
    if not request.user.has_perm("outreach.add_activity"):
        raise PermissionDenied
    form = EventAttendanceForm(request.POST)
    if not form.is_valid():
        return _event_page(request, event, form)
    try:
        result = event_record_attendance(
            event=event,
            actor=request.user,
            override_reason=form.cleaned_data["limit_override_reason"],
        )
    except ComplianceLimitExceeded as error:
        form.add_error("limit_override_reason", error)
        return _event_page(request, event, form)
    except PermissionDenied as error:
        form.add_error("limit_override_reason", str(error))
        return _event_page(request, event, form)
    except ValidationError as error:
        form.add_error(None, error)
        return _event_page(request, event, form)
    if not result.activities:
        messages.warning(request, "Nobody is marked as attended yet.")
    else:
        people = "person" if result.attendees == 1 else "people"
        offices = len(result.activities)
        messages.success(
            request,
            f"Attendance recorded: {result.attendees} {people} came, "
            f"from {offices} office{'s' if offices != 1 else ''}.",
        )
        _warn_near_limit(request, *result.activities)
    return redirect(event)


@login_required
def event_cancel_view(request: AuthedRequest, pk: int) -> HttpResponse:
    """Call off an event that is still to come, with a reason: the event's page links
    here; this page asks for the reason and confirms."""
    event = get_event_for_user(request, pk, details=True)
    form = EventCancelForm(request.POST or None)
    refusal = ""
    try:
        event_check_cancel(event, now=timezone.now())
    except ValidationError as error:
        refusal = " ".join(error.messages)
    if request.method == "POST" and refusal:
        messages.error(request, refusal)
        return redirect(event)
    if request.method == "POST" and form.is_valid():
        try:
            cancelled = event_cancel(
                event=event, actor=request.user, reason=form.cleaned_data["cancel_reason"]
            )
        except ValidationError as error:
            # Cancelled or started since the page was opened (a second press, a colleague).
            messages.error(request, " ".join(error.messages))
            return redirect(event)
        event, task = cancelled.event, cancelled.staff_task
        staff = "."
        if task is not None:
            who = "you" if task.assignee_id == request.user.pk else person(task.assignee)
            staff = f"; the office staff invited are listed in a task for {who} to tell them."
        messages.success(
            request,
            f"{event.name} is cancelled: its invitees get no more reminders, and those who "
            f"had not declined are sent a cancellation notice{staff}",
        )
        return redirect(event)
    return render(
        request, "outreach/event_cancel.html", {"form": form, "event": event, "refusal": refusal}
    )
