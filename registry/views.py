from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.contrib.auth.mixins import LoginRequiredMixin, PermissionRequiredMixin
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import QuerySet
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse_lazy
from django.views.decorators.http import require_POST
from django.views.generic import CreateView, DeleteView, ListView, UpdateView

from core.enqueue import enqueue_on_commit
from core.htmx import render_page
from core.pagination import paginate
from core.roles import is_liaison
from core.types import AuthedRequest
from partners.models import Provider
from registry.forms import (
    AddProspectForm,
    FinderForm,
    ImportUploadForm,
    PracticeLocationForm,
    SharedPatientUploadForm,
    liaison_queryset,
    search_specialties,
)
from registry.geo import haversine_miles
from registry.models import (
    ImportJob,
    PracticeLocation,
    RegistryProvider,
    SharedPatientPair,
    Taxonomy,
)
from registry.selectors import (
    PartnerSummary,
    partner_summaries,
    patients_to_us,
    patients_to_us_by_npi,
)
from registry.services import registry_provider_add_as_prospect
from registry.tasks import import_nppes_file

DEFAULT_MILES = 25


@dataclass
class FinderRow:
    record: RegistryProvider
    specialty: str
    miles: float | None
    partner: PartnerSummary | None
    # Medicare patients they sent on to our clinicians (CMS), when that data is read.
    to_us: int | None = None


def _finder_queryset(form: FinderForm, to_us: QuerySet[SharedPatientPair] | None) -> Any:
    data = form.cleaned_data
    queryset = RegistryProvider.objects.active()
    if data["sends_to_us"] and to_us is not None:
        queryset = queryset.filter(npi__in=to_us.values("npi_from"))
    if data["specialty"]:
        # A subquery, so a whole grouping costs no extra round trip.
        codes = Taxonomy.objects.matching(data["specialty"]).values("code")
        queryset = queryset.filter(primary_taxonomy_code__in=codes)
    if data["name"]:
        queryset = queryset.search_name(data["name"])
    if data["city"]:
        queryset = queryset.filter(city=data["city"].strip().upper())
    if data["state"]:
        queryset = queryset.filter(state=data["state"])
    if data["hide_partners"]:
        queryset = queryset.exclude(npi__in=Provider.objects.values("npi"))
    centre = form.centre()
    if centre is not None:
        return queryset.near(*centre, data["miles"] or DEFAULT_MILES)
    return queryset.order_by("last_name", "first_name", "npi")


def _has_criteria(form: FinderForm) -> bool:
    data = form.cleaned_data
    return any(
        data.get(f)
        for f in ("specialty", "location", "zip_code", "name", "city", "state", "sends_to_us")
    )


@login_required
@permission_required("registry.view_registryprovider", raise_exception=True)
def finder(request: AuthedRequest) -> HttpResponse:
    """Search the public registry for providers worth a visit: specialty, distance from one
    of our locations, place and name; with who is already a partner and what they send."""
    form = FinderForm(request.GET or None)
    page = None
    rows: list[FinderRow] = []
    to_us = patients_to_us()
    if form.is_bound and form.is_valid() and form.cleaned_data["sends_to_us"] and to_us is None:
        form.add_error(
            "sends_to_us",
            "No CMS shared patient patterns are loaded, or our clinicians' NPIs are not set "
            "(PRACTICE_NPIS): ask your administrator.",
        )
    if form.is_bound and form.is_valid() and _has_criteria(form):
        # Page through ids only (index-only scans), then read the page's rows by key.
        page = paginate(request, _finder_queryset(form, to_us).values_list("pk", flat=True))
        by_pk = RegistryProvider.objects.in_bulk(list(page.object_list))
        records = [by_pk[pk] for pk in page.object_list if pk in by_pk]
        summaries = partner_summaries(r.npi for r in records)
        sent_to_us = (
            patients_to_us_by_npi(to_us, (r.npi for r in records)) if to_us is not None else {}
        )
        labels = dict(
            Taxonomy.objects.filter(
                code__in={r.primary_taxonomy_code for r in records}
            ).values_list("code", "display_name")
        )
        centre = form.centre()
        for record in records:
            miles = None
            if centre is not None and record.latitude is not None and record.longitude is not None:
                miles = haversine_miles(*centre, record.latitude, record.longitude)
            rows.append(
                FinderRow(
                    record,
                    labels.get(record.primary_taxonomy_code, record.primary_taxonomy_code),
                    miles,
                    summaries.get(record.npi),
                    sent_to_us.get(record.npi, 0) if to_us is not None else None,
                )
            )
    can_add = request.user.has_perm("partners.add_provider")
    context = {
        # An empty registry explains an empty search better than "try a wider distance"
        # (asked only when nothing was found).
        "registry_empty": not rows and not RegistryProvider.objects.exists(),
        "form": form,
        "page": page,
        "rows": rows,
        "can_add": can_add,
        "shared_patients": to_us is not None,
        # A liaison adds prospects to their own list (finder_add): offered no one else.
        "liaisons": (
            ([request.user] if _adds_for_self_only(request.user) else list(liaison_queryset()))
            if can_add and rows
            else []
        ),
    }
    return render_page(request, "registry/finder.html", context, partial="results")


class SpecialtySearchForm(forms.Form):
    specialty_search = forms.CharField(required=False, max_length=100)


@login_required
@permission_required("registry.view_registryprovider", raise_exception=True)
def specialty_typeahead(request: AuthedRequest) -> HttpResponse:
    form = SpecialtySearchForm(request.GET)
    text = form.cleaned_data["specialty_search"] if form.is_valid() else ""
    return render(
        request,
        "registry/finder.html#specialty_options",
        {"options": search_specialties(text) if len(text) >= 2 else [], "text": text},
    )


def _adds_for_self_only(user: Any) -> bool:
    """A liaison (not a manager) adds registry prospects to their own list only."""
    return (
        not user.is_superuser and is_liaison(user) and not user.has_perm("partners.delete_provider")
    )


@login_required
@require_POST
def finder_add(request: AuthedRequest) -> HttpResponse:
    """Make a registry provider a partner prospect, owned by the chosen liaison."""
    user = request.user
    if not (
        user.has_perm("registry.view_registryprovider") and user.has_perm("partners.add_provider")
    ):
        raise PermissionDenied
    form = AddProspectForm(request.POST)
    error = ""
    provider = None
    record = None
    if form.is_valid():
        record = RegistryProvider.objects.by_npi(form.cleaned_data["npi"])
        if record is None:
            raise Http404("No such NPI in the registry.")
        owner = form.cleaned_data["owner"]
        if _adds_for_self_only(user) and owner != user:
            error = "Liaisons add prospects to their own list."
        else:
            try:
                provider = registry_provider_add_as_prospect(record=record, owner=owner)
            except ValidationError as problem:
                error = " ".join(problem.messages)
    else:
        error = " ".join(str(e) for errors in form.errors.values() for e in errors)
    if request.htmx:
        return render(
            request,
            "registry/finder.html#added",
            {"provider": provider, "error": error, "npi": request.POST.get("npi", "")[:10]},
        )
    if provider is not None:
        messages.success(request, f"{provider.display_name} is now a prospect.")
        return redirect(provider)
    messages.error(request, error or "That provider could not be added.")
    return redirect("registry:finder")


# --- Our locations --------------------------------------------------------------------------
# Without raise_exception, AccessMixin still answers 403 to a signed-in user without the
# permission, and sends a signed-out one (an idle logoff) to sign in instead.


class LocationList(LoginRequiredMixin, PermissionRequiredMixin, ListView):
    permission_required = "registry.view_practicelocation"
    model = PracticeLocation
    template_name = "registry/practicelocation_list.html"


class LocationCreate(LoginRequiredMixin, PermissionRequiredMixin, CreateView):
    permission_required = "registry.add_practicelocation"
    model = PracticeLocation
    form_class = PracticeLocationForm
    template_name = "registry/practicelocation_form.html"
    success_url = reverse_lazy("registry:location_list")


class LocationUpdate(LoginRequiredMixin, PermissionRequiredMixin, UpdateView):
    permission_required = "registry.change_practicelocation"
    model = PracticeLocation
    form_class = PracticeLocationForm
    template_name = "registry/practicelocation_form.html"
    success_url = reverse_lazy("registry:location_list")


class LocationDelete(LoginRequiredMixin, PermissionRequiredMixin, DeleteView):
    permission_required = "registry.delete_practicelocation"
    model = PracticeLocation
    template_name = "registry/practicelocation_confirm_delete.html"
    success_url = reverse_lazy("registry:location_list")


# --- Uploading an NPPES or a CMS shared patient patterns file ---------------------------------


def _queue_import(job: ImportJob) -> HttpResponse:
    with transaction.atomic():
        job.save()
        # The worker must find the row and the stored file: enqueue after commit.
        enqueue_on_commit(import_nppes_file, job.pk)
    return redirect("registry:import_detail", pk=job.pk)


def _recent_jobs() -> list[ImportJob]:
    return list(ImportJob.objects.select_related("created_by")[:10])


@login_required
@permission_required("registry.import_nppes", raise_exception=True)
def import_upload(request: AuthedRequest) -> HttpResponse:
    form = ImportUploadForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["file"]
        job = ImportJob(file=upload, original_name=upload.name[:255], created_by=request.user)
        return _queue_import(job)
    return render(request, "registry/importjob_form.html", {"form": form, "jobs": _recent_jobs()})


# The same permission as NPPES uploads: both load public reference data for the whole
# practice, and the role that may do one is the role that may do the other.
@login_required
@permission_required("registry.import_nppes", raise_exception=True)
def import_shared_patients_upload(request: AuthedRequest) -> HttpResponse:
    # Bound on any post, an empty one too: it is answered with the form's errors.
    posted = request.method == "POST"
    form = SharedPatientUploadForm(
        request.POST if posted else None, request.FILES if posted else None, user=request.user
    )
    if posted and form.is_valid():
        data = form.cleaned_data
        job = ImportJob(
            kind=ImportJob.Kind.SHARED_PATIENTS,
            file=form.stored_file,
            original_name=form.original_name,
            year=data["year"],
            window_days=data["window_days"],
            created_by=request.user,
        )
        return _queue_import(job)
    if posted:
        form.keep_upload()
    return render(
        request,
        "registry/importjob_shared_patients_form.html",
        {"form": form, "jobs": _recent_jobs()},
    )


@login_required
@permission_required("registry.import_nppes", raise_exception=True)
def import_detail(request: AuthedRequest, pk: int) -> HttpResponse:
    job = get_object_or_404(ImportJob, pk=pk)
    return render_page(request, "registry/importjob_detail.html", {"job": job}, partial="progress")
