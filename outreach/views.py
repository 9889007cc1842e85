from __future__ import annotations

import csv
from collections.abc import Iterable
from datetime import date
from decimal import Decimal
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count, Q, Sum
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from core.htmx import render_page
from core.ids import parse_id
from core.pagination import paginate
from core.types import AuthedRequest
from outreach import calendar_feed, ledger, rekindle
from outreach.forms import (
    ActivityForm,
    ComplianceLimitForm,
    ComplianceReportForm,
    DayForm,
    EventAttendanceForm,
    EventForm,
    InvitationForm,
    InviteForm,
    LetterTemplateForm,
    PartnerContextForm,
    PlanAddForm,
    PlannedVisitLogForm,
    PlannedVisitSkipForm,
    RouteForm,
    TaskFilterForm,
    TaskForm,
)
from outreach.models import (
    Activity,
    ActivityShare,
    CalendarFeed,
    ComplianceLimit,
    Event,
    Invitation,
    Letter,
    LetterTemplate,
    Task,
)
from outreach.models.merge_fields import merge_fields_for, render_merge_fields
from outreach.pdf import letter_pdf
from outreach.routing import zip_centroid
from outreach.selectors import (
    day_plan_cards,
    get_event_for_user,
    get_planned_visit_for_user,
    plan_suggestions,
)
from outreach.services.activities import activity_log
from outreach.services.compliance import ComplianceLimitExceeded
from outreach.services.day_plan import (
    calendar_feed_regenerate,
    calendar_feed_revoke,
    planned_visit_add,
    planned_visit_log,
    planned_visit_skip,
    planned_visits_route,
)
from outreach.services.delivery import letter_mark_printed
from outreach.services.events import event_invite, event_record_attendance
from outreach.services.letters import SAMPLE_MERGE_VALUES, letter_template_for
from outreach.services.tasks import task_complete
from partners.models import Provider
from partners.selectors import get_organization_for_user, get_provider_for_user
from referrals.models import Referral


def get_task_for_user(request: AuthedRequest, pk: int, *, write: bool = False) -> Task:
    queryset = Task.objects.for_user(request.user, write=write).select_related(
        "assignee", "provider", "referral"
    )
    return get_object_or_404(queryset, pk=pk)


def get_letter_for_user(request: AuthedRequest, pk: int, *, write: bool = False) -> Letter:
    if not request.user.has_perm("outreach.change_letter" if write else "outreach.view_letter"):
        raise PermissionDenied
    letters = Letter.objects.for_user(request.user, write=write).select_related(
        "provider", "provider__organization", "referral"
    )
    return get_object_or_404(letters, pk=pk)


@login_required
@permission_required("outreach.view_task", raise_exception=True)
def task_list(request: AuthedRequest) -> HttpResponse:
    form = TaskFilterForm(request.GET or None)
    scope, state = "mine", "open"
    if form.is_valid():
        scope = form.cleaned_data["scope"] or scope
        state = form.cleaned_data["state"] or state
    tasks = Task.objects.for_user(request.user).select_related("assignee", "provider", "referral")
    if scope == "mine" or not request.user.has_perm("outreach.view_all_tasks"):
        scope = "mine"
        tasks = tasks.filter(assignee=request.user)
    elif scope == "unassigned":
        tasks = tasks.filter(assignee__isnull=True)
    if state == "overdue":
        tasks = tasks.overdue()
    elif state == "done":
        tasks = tasks.filter(status=Task.Status.DONE).order_by("-completed_at")
    else:
        tasks = tasks.open()
    page = paginate(request, tasks)
    for task in page:
        task.can_write_note = rekindle.can_write_note(request.user, task)
    return render_page(
        request,
        "outreach/task_list.html",
        {"page": page, "form": form, "scope": scope, "state": state, "today": timezone.localdate()},
        partial="results",
    )


@login_required
def task_detail(request: AuthedRequest, pk: int) -> HttpResponse:
    task = get_task_for_user(request, pk)
    context: dict[str, Any] = {
        "task": task,
        "note": None,
        "can_open_note": False,
        "can_write_note": False,
    }
    if task.kind == Task.Kind.REKINDLE:
        note = context["note"] = task.letters.first()
        if note is None:
            context["can_write_note"] = rekindle.can_write_note(request.user, task)
        else:
            # What was done shows to whoever sees the task; the letter opens for its readers.
            context["can_open_note"] = (
                Letter.objects.for_user(request.user).filter(pk=note.pk).exists()
            )
    if task.referral is not None:
        # The referral and its letters, linked for those who may open them (a partner that
        # changed hands keeps its old tasks with the liaison who had it).
        context["can_open_referral"] = (
            Referral.objects.for_user(request.user).filter(pk=task.referral.pk).exists()
        )
        letters = task.referral.letters.all()
        can_open = letters.openable_by(request.user)
        context["referral_letters"] = [(letter, can_open(letter)) for letter in letters]
    return render(request, "outreach/task_detail.html", context)


@login_required
@require_POST
def task_complete_view(request: AuthedRequest, pk: int) -> HttpResponse:
    task = task_complete(task=get_task_for_user(request, pk, write=True))
    if request.htmx:
        return render(
            request,
            "outreach/task_list.html#task-row",
            {"task": task, "today": timezone.localdate()},
        )
    messages.success(request, f"Done: {task.title}")
    return redirect("outreach:task_list")


@login_required
@permission_required("outreach.add_task", raise_exception=True)
def task_create(request: AuthedRequest) -> HttpResponse:
    context = PartnerContextForm(request.GET)
    provider_pk = context.value("provider")
    provider = get_provider_for_user(request.user, provider_pk) if provider_pk else None
    form = TaskForm(request.POST or None, initial={"assignee": request.user.pk})
    if request.method == "POST" and form.is_valid():
        task = form.save(commit=False)
        task.kind = Task.Kind.FOLLOW_UP
        task.provider = provider
        task.save()
        messages.success(request, f"Task added: {task.title}")
        return redirect(provider or "outreach:task_list")
    return render(request, "outreach/task_form.html", {"form": form, "provider": provider})


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
        if _log_or_explain(
            form,
            lambda: activity_log(
                activity=activity,
                providers=form.cleaned_data["providers"],
                staff=form.cleaned_data["staff"],
                actor=request.user,
            ),
        ):
            messages.success(request, f"{activity.get_kind_display()} logged.")
            _warn_near_limit(request, activity)
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


@login_required
def letter_detail(request: AuthedRequest, pk: int) -> HttpResponse:
    letter = get_letter_for_user(request, pk)
    return render(request, "outreach/letter_detail.html", {"letter": letter})


@login_required
@permission_required("outreach.change_lettertemplate", raise_exception=True)
def template_list(request: AuthedRequest) -> HttpResponse:
    for kind in LetterTemplate.Kind.values:
        letter_template_for(kind)
    return render(
        request,
        "outreach/lettertemplate_list.html",
        {"templates": LetterTemplate.objects.all()},
    )


@login_required
@permission_required("outreach.change_lettertemplate", raise_exception=True)
def template_update(request: AuthedRequest, pk: int) -> HttpResponse:
    template = get_object_or_404(LetterTemplate, pk=pk)
    form = LetterTemplateForm(request.POST or None, instance=template)
    if request.method == "POST" and form.is_valid():
        form.save()
        messages.success(request, "Template saved. New letters use it from now on.")
        return redirect("outreach:template_list")
    return render(
        request,
        "outreach/lettertemplate_form.html",
        {
            "form": form,
            "template": template,
            "merge_fields": merge_fields_for(template.kind),
            "preview": _preview(form, template),
        },
    )


# --- Logging with a cost --------------------------------------------------------------------


def _log_or_explain(form: ActivityForm, log: Any) -> bool:
    """Run the log service; a refusal (over the yearly limit) becomes a field error so the
    form re-renders with everything typed."""
    try:
        log()
    except ComplianceLimitExceeded as error:
        form.add_error("cost", error)
        return False
    except PermissionDenied as error:
        form.add_error("cost", str(error))
        return False
    return True


def _warn_near_limit(request: AuthedRequest, activity: Activity) -> None:
    """After a cost is logged, say which physicians are at 80% of the limit or more."""
    if not activity.cost:
        return
    year = timezone.localtime(activity.occurred_at).year
    limit = ComplianceLimit.for_year(year)
    if not limit:
        messages.info(request, f"No gifts and meals limit is set for {year}; a manager can set it.")
        return
    for share in activity.shares.select_related("provider"):
        spent = ledger.spent_by_provider([share.provider_id], year=year)[share.provider_id]
        if spent >= limit * ledger.WARN_AT:
            messages.warning(
                request,
                f"{share.provider.display_name} is at ${spent} of the ${limit} limit "
                f"for {year} ({int(spent / limit * 100)}%).",
            )


# --- The liaison's day ----------------------------------------------------------------------


def _plan_url(day: date) -> str:
    return f"{reverse('outreach:day_plan')}?day={day.isoformat()}"


@login_required
@permission_required("outreach.view_plannedvisit", raise_exception=True)
def day_plan(request: AuthedRequest) -> HttpResponse:
    form = DayForm(request.GET or None)
    day = timezone.localdate()
    if form.is_valid() and form.cleaned_data["day"]:
        day = form.cleaned_data["day"]
    cards = day_plan_cards(request.user, day)
    planned = {card.visit.organization_id for card in cards}
    unlocated = [c.organization for c in cards if zip_centroid(c.organization.zip_code) is None]
    context = {
        "day": day,
        "today": timezone.localdate(),
        "form": form,
        "cards": cards,
        "unlocated": unlocated,
        "suggestions": plan_suggestions(request.user, day, exclude=planned),
        "add_form": PlanAddForm(initial={"day": day}, user=request.user),
        "route_form": RouteForm(
            initial={"day": day, "start_zip": request.session.get("route_start_zip", "")}
        ),
    }
    return render(request, "outreach/day_plan.html", context)


@login_required
@permission_required("outreach.add_plannedvisit", raise_exception=True)
@require_POST
def day_plan_add(request: AuthedRequest) -> HttpResponse:
    form = PlanAddForm(request.POST, user=request.user)
    if not form.is_valid():
        messages.error(request, "Choose one of your offices to add to the plan.")
        return redirect("outreach:day_plan")
    day = form.cleaned_data["day"]
    office = form.cleaned_data["organization"]
    planned_visit_add(liaison=request.user, organization=office, day=day)
    messages.success(request, f"{office.name} is on the plan.")
    return redirect(_plan_url(day))


@login_required
@permission_required("outreach.change_plannedvisit", raise_exception=True)
@require_POST
def day_plan_route(request: AuthedRequest) -> HttpResponse:
    form = RouteForm(request.POST)
    if not form.is_valid():
        for errors in form.errors.values():
            messages.error(request, " ".join(map(str, errors)))
        day = form.cleaned_data.get("day") or timezone.localdate()
        return redirect(_plan_url(day))
    day, start_zip = form.cleaned_data["day"], form.cleaned_data["start_zip"]
    if zip_centroid(start_zip) is None:
        messages.error(request, f"ZIP {start_zip} is not in the ZIP-code list; try another.")
        return redirect(_plan_url(day))
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
        activity = form.save(commit=False)
        logged = _log_or_explain(
            form,
            lambda: planned_visit_log(
                visit=visit,
                activity=activity,
                providers=form.cleaned_data["providers"],
                staff=form.cleaned_data["staff"],
                actor=request.user,
            ),
        )
        if logged:
            messages.success(request, f"{activity.get_kind_display()} at {office.name} logged.")
            _warn_near_limit(request, activity)
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


def _preview(form: LetterTemplateForm, template: LetterTemplate) -> dict[str, str]:
    # The text being typed when there is any, else the saved template.
    subject = form.data.get("subject", template.subject) if form.is_bound else template.subject
    body = form.data.get("body", template.body) if form.is_bound else template.body
    return {
        "subject": render_merge_fields(str(subject), SAMPLE_MERGE_VALUES),
        "body": render_merge_fields(str(body), SAMPLE_MERGE_VALUES),
    }


@login_required
@permission_required("outreach.change_lettertemplate", raise_exception=True)
@require_POST
def template_preview(request: AuthedRequest, pk: int) -> HttpResponse:
    """The live preview beside the editor: the unsaved text rendered for a sample
    referral. Nothing is saved."""
    template = get_object_or_404(LetterTemplate, pk=pk)
    form = LetterTemplateForm(request.POST, instance=template)
    return render(
        request,
        "outreach/lettertemplate_form.html#preview",
        {"template": template, "preview": _preview(form, template)},
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


# --- Gifts and meals report -----------------------------------------------------------------


@login_required
@permission_required("outreach.view_compliance_report", raise_exception=True)
def compliance_report(request: AuthedRequest) -> HttpResponse:
    form = ComplianceReportForm(request.GET or None)
    year, sort = timezone.localdate().year, "-total"
    if form.is_valid():
        year = form.cleaned_data["year"] or year
        sort = form.cleaned_data["sort"] or sort
    limit = ComplianceLimit.for_year(year)
    rows = (
        Provider.objects.filter(gift_shares__year=year)
        .select_related("organization", "owner")
        .annotate(total=Sum("gift_shares__amount", filter=Q(gift_shares__year=year)))
    )
    order = {
        "-total": ["-total", "last_name", "first_name"],
        "total": ["total", "last_name", "first_name"],
        "name": ["last_name", "first_name"],
    }[sort]
    rows = rows.order_by(*order, "pk")
    if request.GET.get("export") == "csv":
        return _compliance_csv(rows, year=year, limit=limit)
    page = paginate(request, rows)
    for provider in page:
        provider.percent = int(provider.total / limit * 100) if limit else None
    limit_form = None
    if request.user.has_perm("outreach.change_compliancelimit"):
        existing = ComplianceLimit.objects.filter(year=year).first()
        limit_form = ComplianceLimitForm(instance=existing, initial={"year": year})
    return render_page(
        request,
        "outreach/compliance_report.html",
        {
            "form": form,
            "page": page,
            "year": year,
            "sort": sort,
            "limit": limit,
            "warn_percent": int(ledger.WARN_AT * 100),
            "limit_form": limit_form,
            "limits": ComplianceLimit.objects.all()[:10],
        },
        partial="results",
    )


def _compliance_csv(rows: Any, *, year: int, limit: Decimal | None) -> HttpResponse:
    response = HttpResponse(content_type="text/csv")
    response["Content-Disposition"] = f'attachment; filename="gifts-and-meals-{year}.csv"'
    writer = csv.writer(response)
    writer.writerow(["NPI", "Provider", "Office", "Year", "Total", "Limit", "Percent of limit"])
    for provider in rows.iterator(chunk_size=2000):
        writer.writerow(
            [
                provider.npi,
                provider.display_name,
                provider.organization.name if provider.organization else "",
                year,
                Decimal(provider.total).quantize(ledger.CENT),
                limit or "",
                int(provider.total / limit * 100) if limit else "",
            ]
        )
    return response


@login_required
@permission_required("outreach.change_letter", raise_exception=True)
def print_queue(request: AuthedRequest) -> HttpResponse:
    page = paginate(request, Letter.objects.print_queue())
    return render_page(request, "outreach/print_queue.html", {"page": page}, partial="results")


@login_required
def letter_pdf_download(request: AuthedRequest, pk: int) -> HttpResponse:
    letter = get_letter_for_user(request, pk)
    response = HttpResponse(letter_pdf(letter), content_type="application/pdf")
    # The file name carries the letter number only, never a name.
    response["Content-Disposition"] = f'attachment; filename="letter-{letter.pk}.pdf"'
    return response


@login_required
@permission_required("outreach.change_compliancelimit", raise_exception=True)
@require_POST
def compliance_limit_save(request: AuthedRequest) -> HttpResponse:
    year = parse_id(request.POST.get("year", ""))
    # A year a form can hold; anything else is the form's to refuse, with its message.
    existing = ComplianceLimit.objects.filter(year=year).first() if year and year < 10_000 else None
    form = ComplianceLimitForm(request.POST, instance=existing)
    if form.is_valid():
        limit = form.save(commit=False)
        limit.updated_by = request.user
        limit.save()
        messages.success(request, f"The {limit.year} limit is now ${limit.amount} per physician.")
        return redirect(f"{reverse('outreach:compliance_report')}?year={limit.year}")
    for field, errors in form.errors.items():
        messages.error(request, f"{field}: {' '.join(map(str, errors))}")
    return redirect("outreach:compliance_report")


# --- Calendar feed --------------------------------------------------------------------------


@login_required
def calendar_settings(request: AuthedRequest) -> HttpResponse:
    """Where a user makes, copies or revokes their private calendar URL. The token is
    stored hashed, so its URL is shown once, right after it is made."""
    feed_url = None
    if request.method == "POST":
        if request.POST.get("action") == "revoke":
            calendar_feed_revoke(user=request.user)
            messages.info(request, "Your calendar URL no longer works.")
            return redirect("outreach:calendar_settings")
        token = calendar_feed_regenerate(user=request.user)
        feed_url = request.build_absolute_uri(reverse("outreach:calendar_feed", args=[token]))
    feed = CalendarFeed.objects.filter(user=request.user).first()
    return render(request, "outreach/calendar_settings.html", {"feed": feed, "feed_url": feed_url})


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
    body = calendar_feed.build(feed.user, host=request.get_host())
    response = HttpResponse(body, content_type="text/calendar; charset=utf-8")
    response["Content-Disposition"] = 'inline; filename="referral-crm.ics"'
    return response


# --- Events ---------------------------------------------------------------------------------


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
        event = form.save(commit=False)
        event.organizer = request.user
        event.save()
        messages.success(request, f"{event.name} created. Now invite people.")
        return redirect(event)
    return render(
        request,
        "outreach/event_form.html",
        {"form": form, "cancel_url": reverse("outreach:event_list")},
    )


@login_required
def event_detail(request: AuthedRequest, pk: int) -> HttpResponse:
    return _event_page(request, get_event_for_user(request, pk))


def _event_page(
    request: AuthedRequest, event: Event, attendance_form: EventAttendanceForm | None = None
) -> HttpResponse:
    invitations = event.invitations.select_related("provider", "staff__organization").order_by("pk")
    return render(
        request,
        "outreach/event_detail.html",
        {
            "event": event,
            "invitations": invitations,
            **_rsvp_counts(invitations),
            "invite_form": InviteForm(),
            "rsvp_choices": Invitation.Rsvp.choices,
            "attendance_form": attendance_form or EventAttendanceForm(),
            "can_override": request.user.has_perm("outreach.override_compliance_limit"),
            "activities": event.activities.select_related("organization").order_by(
                "organization__name", "pk"
            ),
            "shares": ActivityShare.objects.filter(activity__event=event)
            .select_related("provider")
            .order_by("provider__last_name", "provider__first_name", "pk"),
        },
    )


def _rsvp_counts(invitations: Iterable[Invitation]) -> dict[str, Any]:
    """The RSVP tally and head count shown above the invitation list."""
    counts = dict.fromkeys(Invitation.Rsvp.values, 0)
    attended = 0
    for invitation in invitations:
        counts[invitation.rsvp] += 1
        attended += invitation.attended
    return {
        "counts": {Invitation.Rsvp(k).label: v for k, v in counts.items()},
        "attended": attended,
    }


def _rsvp_tally(event: Event) -> dict[str, Any]:
    """`_rsvp_counts` in one aggregate, for a reply that does not list the invitations."""
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
        added = event_invite(
            event=event, providers=office.providers.all(), staff=office.staff.all()
        )
        messages.success(request, f"Invited {added} people from {office.name}.")
    else:
        messages.error(request, "Choose an office to invite.")
    return redirect(event)


@login_required
@require_POST
def invitation_update(request: AuthedRequest, pk: int) -> HttpResponse:
    invitation = get_object_or_404(Invitation.objects.select_related("event"), pk=pk)
    event = get_event_for_user(request, invitation.event_id, write=True)
    form = InvitationForm(request.POST, instance=invitation)
    if form.is_valid():
        form.save()
    else:
        messages.error(request, "That RSVP is not one of the choices.")
    if request.htmx and form.is_valid():
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
        for activity in result.activities:
            _warn_near_limit(request, activity)
    return redirect(event)


@login_required
@require_POST
def letter_printed(request: AuthedRequest, pk: int) -> HttpResponse:
    letter = letter_mark_printed(
        letter=get_letter_for_user(request, pk, write=True), actor=request.user
    )
    if request.htmx:
        return render(request, "outreach/print_queue.html#letter-row", {"letter": letter})
    messages.success(request, f"Marked as {'faxed' if letter.channel == 'fax' else 'printed'}.")
    return redirect("outreach:print_queue")
