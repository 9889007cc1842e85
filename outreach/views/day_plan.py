"""The liaison's day: the plan, its route, logging or skipping a visit, the calendar feed."""

from __future__ import annotations

from datetime import date

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from audit.services import audit_names_listed
from core.htmx import render_page
from core.types import AuthedRequest
from outreach import calendar_feed, ledger
from outreach.forms import (
    CalendarFeedEventsForm,
    DayForm,
    PlanAddForm,
    PlannedVisitLogForm,
    PlannedVisitSkipForm,
    RouteForm,
)
from outreach.models import CalendarFeed, PlannedVisit
from outreach.models.tasks import patient_referral_ids
from outreach.routing import zip_centroid
from outreach.selectors import day_plan_cards, get_planned_visit_for_user, plan_suggestions
from outreach.services.day_plan import (
    calendar_feed_regenerate,
    calendar_feed_revoke,
    planned_visit_add,
    planned_visit_log,
    planned_visit_skip,
    planned_visits_route,
)
from outreach.views.activities import _log_or_explain, _warn_near_limit


def _plan_url(day: date) -> str:
    return f"{reverse('outreach:day_plan')}?day={day.isoformat()}"


@login_required
@permission_required("outreach.view_plannedvisit", raise_exception=True)
def day_plan(request: AuthedRequest) -> HttpResponse:
    form = DayForm(request.GET or None)
    day = timezone.localdate()
    if form.is_valid() and form.cleaned_data["day"]:
        day = form.cleaned_data["day"]
    route_form = RouteForm(
        initial={"day": day, "start_zip": request.session.get("route_start_zip", "")}
    )
    return _day_plan_page(request, day, form=form, route_form=route_form)


def _day_plan_page(
    request: AuthedRequest, day: date, *, form: DayForm, route_form: RouteForm
) -> HttpResponse:
    cards = day_plan_cards(request.user, day)
    planned = {card.visit.organization_id for card in cards}
    suggestions = plan_suggestions(request.user, day, exclude=planned)
    # The titles of the tasks on the cards and in the suggestions name the patients of
    # their referrals (initials).
    audit_names_listed(
        request,
        sorted(
            {pk for card in cards for pk in patient_referral_ids(card.open_tasks)}
            | {s.referral_id for s in suggestions if s.referral_id is not None}
        ),
    )
    unlocated = [c.organization for c in cards if zip_centroid(c.organization.zip_code) is None]
    context = {
        "day": day,
        "today": timezone.localdate(),
        "form": form,
        "cards": cards,
        "unlocated": unlocated,
        "suggestions": suggestions,
        "add_form": PlanAddForm(initial={"day": day}, user=request.user),
        "route_form": route_form,
    }
    return render(request, "outreach/day_plan.html", context)


@login_required
@permission_required("outreach.add_plannedvisit", raise_exception=True)
@require_POST
def day_plan_add(request: AuthedRequest) -> HttpResponse:
    form = PlanAddForm(request.POST, user=request.user)
    if not form.is_valid():
        messages.error(request, "Choose one of your offices to add to the plan.")
        # Back to the day being planned, not today's.
        day = form.cleaned_data.get("day")
        return redirect(_plan_url(day) if day else "outreach:day_plan")
    day = form.cleaned_data["day"]
    office = form.cleaned_data["organization"]
    visit = planned_visit_add(liaison=request.user, organization=office, day=day)
    if visit.status == PlannedVisit.Status.DONE:
        messages.info(request, f"{office.name} was visited that day already (its log is below).")
    else:
        messages.success(request, f"{office.name} is on the plan.")
    return redirect(_plan_url(day))


@login_required
@permission_required("outreach.change_plannedvisit", raise_exception=True)
@require_POST
def day_plan_route(request: AuthedRequest) -> HttpResponse:
    form = RouteForm(request.POST)
    if form.is_valid() and zip_centroid(form.cleaned_data["start_zip"]) is None:
        form.add_error(
            "start_zip",
            f"ZIP {form.cleaned_data['start_zip']} is not in the ZIP-code list; try another.",
        )
    if not form.is_valid():
        # The plan again with the ZIP as typed and what is wrong with it beside it, so the
        # liaison corrects it rather than types it all again.
        day = form.cleaned_data.get("day") or timezone.localdate()
        return _day_plan_page(request, day, form=DayForm(), route_form=form)
    day, start_zip = form.cleaned_data["day"], form.cleaned_data["start_zip"]
    request.session["route_start_zip"] = start_zip
    route = planned_visits_route(liaison=request.user, day=day, start_zip=start_zip)
    miles = sum(stop.miles_from_previous or 0 for stop in route)
    messages.success(request, f"Route ordered from {start_zip}: about {miles:.0f} miles.")
    unlocated = [stop.item.organization.name for stop in route if stop.miles_from_previous is None]
    if unlocated:
        messages.warning(
            request, "Without a usable ZIP code, so placed last: " + ", ".join(unlocated) + "."
        )
    return redirect(_plan_url(day))


@login_required
@permission_required("outreach.add_activity", raise_exception=True)
def planned_visit_log_view(request: AuthedRequest, pk: int) -> HttpResponse:
    visit = get_planned_visit_for_user(request, pk, write=True)
    office = visit.organization
    form = PlannedVisitLogForm(
        request.POST or None,
        initial={"occurred_at": timezone.localtime().replace(second=0, microsecond=0)},
        organization=office,
        provider=None,
        user=request.user,
    )
    if request.method == "POST" and form.is_valid():
        # A retried post (the first response lost on a flaky connection) gets back the
        # activity logged the first time, not this unsaved one.
        logged = _log_or_explain(
            form,
            lambda: planned_visit_log(
                visit=visit,
                activity=form.save(commit=False),
                providers=form.cleaned_data["providers"],
                staff=form.cleaned_data["staff"],
                actor=request.user,
            ),
        )
        if logged is not None:
            messages.success(request, f"{logged.get_kind_display()} at {office.name} logged.")
            _warn_near_limit(request, logged)
            if request.htmx:
                response = HttpResponse(status=204)
                response["HX-Redirect"] = _plan_url(visit.planned_on)
                return response
            return redirect(_plan_url(visit.planned_on))
    return render_page(
        request,
        "outreach/plannedvisit_form.html",
        {"form": form, "visit": visit, "organization": office},
        partial="log-form",
    )


@login_required
@permission_required("outreach.add_activity", raise_exception=True)
def planned_visit_ledger(request: AuthedRequest, pk: int) -> HttpResponse:
    """What the cost being typed would do to each ticked physician's yearly total: the
    warning at 80% and the stop at the limit, shown before the liaison saves."""
    visit = get_planned_visit_for_user(request, pk, write=True)
    form = PlannedVisitLogForm(
        request.GET, organization=visit.organization, provider=None, user=request.user
    )
    form.full_clean()
    cost = form.cleaned_data.get("cost")
    providers = list(form.cleaned_data.get("providers") or [])
    staff = list(form.cleaned_data.get("staff") or [])
    allowances = []
    if cost and providers:
        when = form.cleaned_data.get("occurred_at") or timezone.now()
        share = ledger.share_per_head(cost=cost, headcount=len(providers) + len(staff))
        allowances = ledger.allowances(providers, year=timezone.localtime(when).year, share=share)
    return render(
        request,
        "outreach/plannedvisit_form.html#ledger-preview",
        {"visit": visit, "allowances": allowances, "cost": cost},
    )


@login_required
@permission_required("outreach.change_plannedvisit", raise_exception=True)
def planned_visit_skip_view(request: AuthedRequest, pk: int) -> HttpResponse:
    """Skip a planned visit with a reason: the day plan's card posts here; without a
    reason (or on GET) the small form page asks for one."""
    visit = get_planned_visit_for_user(request, pk, write=True)
    form = PlannedVisitSkipForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        visit = planned_visit_skip(
            visit=visit, actor=request.user, reason=form.cleaned_data["reason"]
        )
        messages.info(request, f"Skipped {visit.organization.name}.")
        return redirect(_plan_url(visit.planned_on))
    return render(
        request,
        "outreach/plannedvisit_skip.html",
        {"form": form, "visit": visit, "plan_url": _plan_url(visit.planned_on)},
    )


@login_required
def calendar_settings(request: AuthedRequest) -> HttpResponse:
    """Where a user makes, copies or revokes their private calendar URL. The token is
    stored hashed, so its URL is shown once, right after it is made."""
    feed_url = None
    feed = CalendarFeed.objects.filter(user=request.user).first()
    events_form = CalendarFeedEventsForm(instance=feed) if feed else None
    if request.method == "POST":
        action = request.POST.get("action")
        if action == "revoke":
            calendar_feed_revoke(user=request.user)
            messages.info(request, "Your calendar URL no longer works.")
            return redirect("outreach:calendar_settings")
        if action == "events":
            if feed is None:
                messages.info(request, "Make your calendar URL first, then choose its events.")
                return redirect("outreach:calendar_settings")
            events_form = CalendarFeedEventsForm(request.POST, instance=feed)
            if events_form.is_valid():
                events_form.save()
                carries = (
                    "only the events you organize or your partners are invited to"
                    if feed.events == CalendarFeed.Events.MINE
                    else "all practice events"
                )
                messages.success(
                    request,
                    f"Saved: your feed now carries {carries}. Your calendar app shows it at "
                    "its next refresh; the URL stays the same.",
                )
                return redirect("outreach:calendar_settings")
        else:
            token = calendar_feed_regenerate(user=request.user)
            feed_url = request.build_absolute_uri(reverse("outreach:calendar_feed", args=[token]))
            feed = CalendarFeed.objects.get(user=request.user)
            events_form = CalendarFeedEventsForm(instance=feed)
    return render(
        request,
        "outreach/calendar_settings.html",
        {
            "feed": feed,
            "feed_url": feed_url,
            # Only those who see events choose which (a coordinator's feed carries none).
            "events_form": events_form if request.user.has_perm("outreach.view_event") else None,
        },
    )


def calendar_feed_view(request: HttpRequest, token: str) -> HttpResponse:
    """The iCal feed, read by calendar apps without a session: the token is the key."""
    feed = (
        CalendarFeed.objects.select_related("user")
        .filter(token_hash=CalendarFeed.hash_token(token), user__is_active=True)
        .first()
    )
    if feed is None:
        raise Http404("No such calendar.")
    CalendarFeed.objects.filter(pk=feed.pk).update(last_read_at=timezone.now())
    body = calendar_feed.build(
        feed.user, host=request.get_host(), only_mine=feed.events == CalendarFeed.Events.MINE
    )
    response = HttpResponse(body, content_type="text/calendar; charset=utf-8")
    response["Content-Disposition"] = 'inline; filename="referral-crm.ics"'
    return response
