from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from itertools import chain
from operator import attrgetter
from typing import Any, NamedTuple, cast

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Case, Q, Subquery, Value, When
from django.http import HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from audit.services import audit_names_listed
from core.dates import twelve_months_start
from core.htmx import render_page
from core.pagination import paginate
from core.sparkline import sparkline
from core.types import AuthedRequest
from outreach.meetings import annual_meeting_status
from outreach.models import Activity, Letter, PlannedVisit, PlannedVisitEvent, Task
from outreach.models.tasks import patient_referral_ids
from outreach.rekindle import can_write_note
from outreach.services.tasks import owner_tasks_hand_over
from partners.forms import (
    MergeConfirmForm,
    MergeSearchForm,
    OrganizationFilter,
    OrganizationForm,
    ProviderFilter,
    ProviderForm,
    StaffMemberForm,
    TierForm,
    VersionedModelForm,
)
from partners.models import Organization, Provider
from partners.selectors import (
    can_change_provider,
    get_organization_for_user,
    get_provider_for_user,
    get_staff_member_for_user,
    removed_staff,
)
from partners.services.merges import partner_merge, partner_merge_preview
from partners.services.offices import organization_set_letters_opt_out
from partners.services.tiers import provider_set_tier
from partners.services.tiers import provider_unpin_tier as provider_unpin_tier_service
from referrals.models import Referral
from registry.selectors import shared_patients_of

TIMELINE_LENGTH = 30
SPARKLINE_MONTHS = 12


class TimelineEntry(NamedTuple):
    kind: str
    at: datetime
    obj: Any


@login_required
@permission_required("partners.view_provider", raise_exception=True)
def provider_list(request: AuthedRequest) -> HttpResponse:
    filterset = ProviderFilter(
        request.GET, queryset=Provider.objects.for_user(request.user).for_list()
    )
    page = paginate(request, filterset.qs)
    return render_page(
        request,
        "partners/provider_list.html",
        {"filter": filterset, "page": page},
        partial="partners/provider_results.html",
    )


@login_required
@permission_required("partners.view_provider", raise_exception=True)
def provider_shared_patients(request: AuthedRequest, pk: int) -> HttpResponse:
    """The partner page's shared-patients card (CMS Medicare data), asked for by the page
    once it has loaded: nothing at all when no such data is loaded."""
    provider = get_provider_for_user(request.user, pk)
    return render(
        request,
        "partners/includes/shared_patients.html",
        {"provider": provider, "shared": shared_patients_of(provider.npi)},
    )


@login_required
@permission_required("partners.add_provider", raise_exception=True)
def provider_create(request: AuthedRequest) -> HttpResponse:
    initial = {"owner": request.user.pk, "organization": request.GET.get("organization")}
    form = ProviderForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        provider = form.save()
        messages.success(request, f"{provider.display_name} was added.")
        return redirect(provider)
    return render(request, "partners/provider_form.html", {"form": form})


def _changed_since_opened(form: VersionedModelForm, what: str) -> bool:
    """Whether someone saved the record after this form was opened (its hidden version is
    older than the row). Call it in the save's transaction: the row stays locked until the
    save. If they did, nothing is to be saved: the form gets the reason, keeps what was
    typed, and is measured against the current row when sent again."""
    current = (
        type(form.instance)
        .objects.select_for_update()
        .filter(pk=form.instance.pk)
        .values_list("updated_at", flat=True)
        .get()
    )
    version = form.cleaned_data["version"]
    if version is None or version == current:
        return False
    form.data = data = cast(QueryDict, form.data).copy()  # bound to request.POST
    data["version"] = current.isoformat()
    form.add_error(
        None,
        f"Someone changed this {what} after you opened it, so nothing was saved. Your values "
        f"are below: check them against the {what}'s page and save again to keep them.",
    )
    return True


@login_required
def provider_update(request: AuthedRequest, pk: int) -> HttpResponse:
    provider = get_provider_for_user(request.user, pk, write=True)
    form = ProviderForm(request.POST or None, instance=provider)
    if request.method == "POST" and form.is_valid():
        with transaction.atomic():
            stale = _changed_since_opened(form, "partner")
            if not stale:
                form.save()
                if "owner" in form.changed_data and provider.owner_id is not None:
                    owner_tasks_hand_over(provider_id=provider.pk, owner_id=provider.owner_id)
        if not stale:
            messages.success(request, "Changes saved.")
            return redirect(provider)
    return render(request, "partners/provider_form.html", {"form": form, "provider": provider})


@login_required
def provider_detail(
    request: AuthedRequest, pk: int, *, tier_form: TierForm | None = None
) -> HttpResponse:
    """The partner 360 page; `tier_form` is a refused tier change, shown again as typed."""
    provider = get_provider_for_user(request.user, pk)
    referrals = Referral.objects.for_user(request.user).filter(provider=provider)
    can_see_referrals = request.user.has_perm("referrals.view_referral")
    activities = list(
        provider.activities.select_related("logged_by").order_by("-occurred_at")[:TIMELINE_LENGTH]
    )
    # The open tasks and the latest ones for the timeline, in one query.
    partner_tasks = Task.objects.for_user(request.user).filter(provider=provider)
    latest = partner_tasks.order_by("-created_at").values("pk")[:TIMELINE_LENGTH]
    tasks = list(
        partner_tasks.filter(
            Q(status=Task.Status.OPEN) | Q(pk__in=Subquery(latest))
        ).select_related("assignee", "provider")
    )
    open_tasks = [task for task in tasks if task.status == Task.Status.OPEN]
    for task in open_tasks:
        task.can_write_note = can_write_note(request.user, task)
    letters = list(
        Letter.objects.filter(provider=provider).order_by("-created_at")[:TIMELINE_LENGTH]
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
            (TimelineEntry("letter", letter.created_at, letter) for letter in letters),
            (
                TimelineEntry("task", task.created_at, task)
                for task in sorted(tasks, key=attrgetter("created_at"), reverse=True)[
                    :TIMELINE_LENGTH
                ]
            ),
            (
                TimelineEntry("tier", change.changed_at, change)
                for change in provider.tier_changes.select_related("changed_by")[:TIMELINE_LENGTH]
            ),
            (
                TimelineEntry("health", change.changed_at, change)
                for change in provider.health_changes.all()[:TIMELINE_LENGTH]
            ),
            (
                TimelineEntry("merge", merge.merged_at, merge)
                for merge in provider.merges.select_related("merged_by")[:TIMELINE_LENGTH]
            ),
            (
                TimelineEntry("skipped_visit", skip.at, skip)
                for skip in PlannedVisitEvent.objects.filter(
                    visit__organization_id=provider.organization_id,
                    to_status=PlannedVisit.Status.SKIPPED,
                )
                .select_related("actor", "visit")
                .order_by("-at")[:TIMELINE_LENGTH]
            )
            if provider.organization_id
            else (),
        ),
        key=attrgetter("at"),
        reverse=True,
    )[:TIMELINE_LENGTH]
    last_activity = activities[0] if activities else None
    # A touch logged after the nightly assessment last started (whatever day it happened
    # on: a visit logged days late counts too) is not in the health shown yet.
    assessed = provider.health_assessed_at
    touched_since = next(
        (a for a in activities if assessed is not None and a.created_at > assessed), None
    )
    # Where we left off: the last activity that noted something; a later one logged with
    # nothing to say is mentioned, not shown instead of it.
    left_off = next((a for a in activities if a.notes or a.next_step), None)
    # The next step: the open follow-up due first, else what the last activity left.
    follow_ups = [task for task in open_tasks if task.kind == Task.Kind.FOLLOW_UP]
    volume = provider.monthly_inbound(months=SPARKLINE_MONTHS)
    figures = provider.referral_figures(since=twelve_months_start())
    # Every letter to the partner is in its history; linked for those who may open it.
    can_open_letter = Letter.objects.filter(pk__in=[letter.pk for letter in letters]).openable_by(
        request.user
    )
    # The timeline shows these patients' names to roles that may see them: its referrals',
    # and the patients named (initials) in the subjects of the letters it shows and in the
    # titles of the tasks it and the open tasks show.
    shown_tasks = [*open_tasks, *(entry.obj for entry in timeline if entry.kind == "task")]
    audit_names_listed(
        request,
        sorted(
            set(patient_referral_ids(shown_tasks))
            | {entry.obj.pk for entry in timeline if entry.kind == "referral"}
            | {
                entry.obj.referral_id
                for entry in timeline
                if entry.kind == "letter" and entry.obj.referral_id and can_open_letter(entry.obj)
            }
        ),
    )
    context = {
        "provider": provider,
        "timeline": timeline,
        "can_open_letter": can_open_letter,
        "open_tasks": open_tasks,
        "next_task": follow_ups[0] if follow_ups else None,
        "last_activity": last_activity,
        "touched_since": touched_since,
        "left_off": left_off,
        "figures": figures,
        "reciprocity_gap": abs(figures.balance),
        "sparkline": sparkline([(f"{month:%b %Y}", count) for month, count in volume]),
        "can_see_referrals": can_see_referrals,
        "tier_form": tier_form or TierForm(initial={"tier": provider.tier}),
        "can_edit": can_change_provider(request.user, provider),
        "can_log_activity": request.user.has_perm("outreach.add_activity"),
        "annual_meeting": annual_meeting_status(provider),
    }
    return render(request, "partners/provider_detail.html", context)


@login_required
@require_POST
@permission_required("partners.change_tier", raise_exception=True)
def provider_tier(request: AuthedRequest, pk: int) -> HttpResponse:
    provider = get_provider_for_user(request.user, pk)
    form = TierForm(request.POST)
    if form.is_valid():
        change = provider_set_tier(
            provider=provider,
            tier=form.cleaned_data["tier"],
            reason=form.cleaned_data["reason"],
            actor=request.user,
            pinned_until=form.cleaned_data["pinned_until"],
        )
        if change:
            messages.success(request, f"Tier set to {provider.tier or 'none'}.")
        else:
            messages.info(request, "The tier was already set to that.")
    else:
        problems = " ".join(str(e) for errors in form.errors.values() for e in errors)
        messages.error(request, f"The tier was not changed: {problems}")
        # The page again with the form as typed (the reason too), each error by its field.
        return provider_detail(request, pk, tier_form=form)
    return redirect(provider)


@login_required
@require_POST
@permission_required("partners.change_tier", raise_exception=True)
def provider_unpin_tier(request: AuthedRequest, pk: int) -> HttpResponse:
    provider = get_provider_for_user(request.user, pk)
    if provider_unpin_tier_service(provider=provider, actor=request.user):
        messages.success(request, "Nightly tiering will set this partner's tier from tonight.")
    else:
        messages.info(
            request, "Nothing changed: this partner's tier was already set by nightly tiering."
        )
    return redirect(provider)


@login_required
@permission_required("partners.view_organization", raise_exception=True)
def organization_list(request: AuthedRequest) -> HttpResponse:
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
def organization_create(request: AuthedRequest) -> HttpResponse:
    form = OrganizationForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        with transaction.atomic():
            organization = form.save()
            organization_set_letters_opt_out(
                organization=organization,
                opted_out=form.cleaned_data["letters_opt_out"],
                actor=request.user,
            )
        messages.success(request, f"{organization.name} was added.")
        return redirect(organization)
    return render(request, "partners/organization_form.html", {"form": form})


@login_required
def organization_update(request: AuthedRequest, pk: int) -> HttpResponse:
    organization = get_organization_for_user(request.user, pk, write=True)
    form = OrganizationForm(request.POST or None, instance=organization)
    if request.method == "POST" and form.is_valid():
        with transaction.atomic():
            stale = _changed_since_opened(form, "office")
            if not stale:
                form.save()
                organization_set_letters_opt_out(
                    organization=organization,
                    opted_out=form.cleaned_data["letters_opt_out"],
                    actor=request.user,
                )
        if not stale:
            messages.success(request, "Changes saved.")
            return redirect(organization)
    return render(
        request,
        "partners/organization_form.html",
        {"form": form, "organization": organization},
    )


@login_required
def organization_detail(request: AuthedRequest, pk: int) -> HttpResponse:
    organization = get_organization_for_user(request.user, pk)
    context = {
        "organization": organization,
        "providers": Provider.objects.filter(organization=organization).for_list(),
        "staff": organization.staff.all(),
        "removed_staff": removed_staff(organization),
        "activities": Activity.objects.filter(organization=organization)
        .select_related("logged_by")
        .prefetch_related("providers", "staff")[:TIMELINE_LENGTH],
        "opt_out_changes": organization.opt_out_changes.select_related("changed_by")[
            :TIMELINE_LENGTH
        ],
    }
    return render(request, "partners/organization_detail.html", context)


@login_required
def staff_create(request: AuthedRequest, organization_pk: int) -> HttpResponse:
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
def staff_update(request: AuthedRequest, pk: int) -> HttpResponse:
    staff = get_staff_member_for_user(request.user, pk, write=True)
    form = StaffMemberForm(request.POST or None, instance=staff)
    if request.method == "POST" and form.is_valid():
        with transaction.atomic():
            stale = _changed_since_opened(form, "staff member")
            if not stale:
                form.save()
        if not stale:
            messages.success(request, "Changes saved.")
            return redirect(staff.organization)
    return render(
        request,
        "partners/staffmember_form.html",
        {"form": form, "organization": staff.organization, "staff": staff},
    )


@login_required
@permission_required("partners.view_provider", raise_exception=True)
def provider_typeahead(request: AuthedRequest) -> HttpResponse:
    """Matches for the provider picker: at most ten, by name, NPI, specialty or office."""
    field = request.GET.get("field", "provider")
    text = request.GET.get(f"{field}_search", request.GET.get("q", "")).strip()[:100]
    # Postgres refuses NUL in text parameters; nobody searches for one.
    text = text.replace("\x00", "")
    # The provider whose own name (or NPI) was typed comes first, however many colleagues of
    # a matching office there are; then preferred (in-network) partners, so a referral out
    # goes to them by default.
    own_name = Q(npi=text)
    for word in text.split():
        own_name |= Q(last_name__istartswith=word) | Q(first_name__istartswith=word)
    providers = (
        Provider.objects.for_user(request.user)
        .search(text)
        .select_related("organization")
        .alias(named=Case(When(own_name, then=Value(0)), default=Value(1)))
        .order_by("named", "-in_network", "last_name", "first_name")[:10]
        if len(text) >= 2
        else Provider.objects.none()
    )
    return render(
        request,
        "widgets/provider_options.html",
        {"providers": providers, "text": text},
    )


MERGE_MATCHES = 10


def _merge_page(
    request: AuthedRequest,
    *,
    survivor: Provider | Organization,
    candidates: Any,
    lookup: Callable[[int], Provider | Organization],
) -> HttpResponse:
    """The one flow for providers and offices: search for the duplicate, preview the
    merge side by side, confirm."""
    search = MergeSearchForm(request.GET or None)
    duplicate = None
    matches: list[Any] = []
    if search.is_valid():
        if search.cleaned_data["duplicate"]:
            duplicate = lookup(search.cleaned_data["duplicate"])
        elif search.cleaned_data["q"]:
            matches = list(
                candidates(search.cleaned_data["q"]).exclude(pk=survivor.pk)[:MERGE_MATCHES]
            )
    confirm = MergeConfirmForm(
        request.POST if request.method == "POST" else None,
        initial={"duplicate": duplicate.pk if duplicate else None},
    )
    if confirm.is_bound and not confirm.is_valid() and confirm.cleaned_data.get("duplicate"):
        # Unconfirmed: show the same preview again, with the form's message.
        duplicate = lookup(confirm.cleaned_data["duplicate"])
    if request.method == "POST" and confirm.is_valid():
        duplicate = lookup(confirm.cleaned_data["duplicate"])
        try:
            merge = partner_merge(survivor=survivor, duplicate=duplicate, actor=request.user)
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
        else:
            moved = sum(merge.moved.values())
            messages.success(
                request,
                f"Merged “{merge.duplicate_name}” into this record; {moved} related "
                f"record{'s' if moved != 1 else ''} moved with it.",
            )
            return redirect(survivor)
    preview = partner_merge_preview(survivor=survivor, duplicate=duplicate) if duplicate else None
    return render(
        request,
        "partners/merge.html",
        {
            "survivor": survivor,
            "duplicate": duplicate,
            "matches": matches,
            "search": search,
            "confirm": confirm,
            "preview": preview,
            "is_provider": isinstance(survivor, Provider),
        },
    )


@login_required
@permission_required("partners.merge_partners", raise_exception=True)
def provider_merge(request: AuthedRequest, pk: int) -> HttpResponse:
    return _merge_page(
        request,
        survivor=get_provider_for_user(request.user, pk, write=True),
        candidates=lambda text: (
            Provider.objects.for_user(request.user, write=True)
            .search(text)
            .select_related("organization")
        ),
        lookup=lambda other: get_provider_for_user(request.user, other, write=True),
    )


@login_required
@permission_required("partners.merge_partners", raise_exception=True)
def organization_merge(request: AuthedRequest, pk: int) -> HttpResponse:
    return _merge_page(
        request,
        survivor=get_organization_for_user(request.user, pk, write=True),
        candidates=lambda text: (
            OrganizationFilter({"q": text}, queryset=Organization.objects.all()).qs
        ),
        lookup=lambda other: get_organization_for_user(request.user, other, write=True),
    )
