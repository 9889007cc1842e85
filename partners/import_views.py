"""Partner spreadsheets: export the (filtered) partner list, and import one through
upload → column mapping → preview → confirm."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from core.csv_cells import csv_download, download_format, safe_cell, table_download
from core.htmx import render_page
from core.types import AuthedRequest
from partners.forms import (
    ColumnMappingForm,
    ImportConfirmForm,
    PartnerUploadForm,
    ProviderFilter,
    liaison_choices,
)
from partners.models import PartnerImport, Provider
from partners.services.imports import partner_import_start
from partners.spreadsheets.columns import guess_mapping
from partners.spreadsheets.export import export_rows
from partners.spreadsheets.planning import plan_import
from partners.spreadsheets.reading import ENCODINGS, UnreadableFile, read_table

PREVIEW_ROWS = 50
CONFIRMED_MEANWHILE = "This import was confirmed meanwhile: its columns were not changed."
# Named in a line above the tables; the count covers the rest.
NEW_OFFICES_SHOWN = 20


def get_partner_import_for_user(user: Any, pk: int) -> PartnerImport:
    queryset = (
        PartnerImport.objects.all()
        if user.has_perm("partners.import_partners")
        else PartnerImport.objects.none()
    )
    return get_object_or_404(queryset, pk=pk)


@login_required
@permission_required("partners.export_partners", raise_exception=True)
def provider_export(request: AuthedRequest) -> HttpResponseBase:
    """The partner list as filtered on screen, as CSV (streamed) or XLSX."""
    filterset = ProviderFilter(
        request.GET,
        queryset=Provider.objects.for_user(request.user).select_related("organization", "owner"),
    )
    providers = filterset.qs.iterator(chunk_size=2000)
    stamp = timezone.localdate().isoformat()
    return table_download(
        f"partners-{stamp}",
        export_rows(providers),
        file_format=download_format(request) or "csv",
        sheet="Partners",
    )


@login_required
@permission_required("partners.import_partners", raise_exception=True)
def import_upload(request: AuthedRequest) -> HttpResponse:
    form = PartnerUploadForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["file"]
        try:
            table = read_table(upload, upload.name, encoding=form.cleaned_data["encoding"])
        except UnreadableFile as error:
            form.add_error("file", str(error))
        else:
            if not table.rows:
                form.add_error("file", "The file has a header row but no partners under it.")
            else:
                partner_import = PartnerImport.objects.create(
                    uploaded_by=request.user,
                    file_name=upload.name[:200],
                    headers=table.headers,
                    rows=table.rows,
                    row_numbers=table.numbers,
                    encoding=table.encoding,
                    mapping=guess_mapping(table.headers),
                    total_rows=len(table.rows),
                )
                return redirect("partners:import_mapping", pk=partner_import.pk)
    recent = PartnerImport.objects.select_related("uploaded_by").defer("rows")[:10]
    return render(request, "partners/partnerimport_form.html", {"form": form, "recent": recent})


@login_required
@permission_required("partners.import_partners", raise_exception=True)
def import_mapping(request: AuthedRequest, pk: int) -> HttpResponse:
    partner_import = get_partner_import_for_user(request.user, pk)
    if partner_import.status != PartnerImport.Status.UPLOADED:
        if request.method == "POST":
            messages.error(request, CONFIRMED_MEANWHILE)
        return redirect(partner_import)
    headers = partner_import.headers
    first = partner_import.rows[0] if partner_import.rows else []
    samples = [first[index] if index < len(first) else "" for index in range(len(headers))]
    initial: dict[str, Any] = {
        f"column_{index}": target for index, target in partner_import.mapping.items()
    }
    # The one importing owns what they add, when they own partners at all.
    initial["new_owner"] = partner_import.new_owner_id or (
        request.user.pk if liaison_choices().filter(pk=request.user.pk).exists() else None
    )
    form = ColumnMappingForm(
        request.POST or None, headers=headers, samples=samples, initial=initial
    )
    if request.method == "POST" and form.is_valid():
        # Only while it waits: a page opened before a colleague confirmed the import must
        # not change the mapping its worker is applying.
        saved = PartnerImport.objects.filter(
            pk=partner_import.pk, status=PartnerImport.Status.UPLOADED
        ).update(mapping=form.mapping(), new_owner=form.cleaned_data["new_owner"])
        if not saved:
            messages.error(request, CONFIRMED_MEANWHILE)
        return redirect(partner_import)
    return render(
        request,
        "partners/partnerimport_mapping.html",
        {"form": form, "partner_import": partner_import},
    )


@login_required
@permission_required("partners.import_partners", raise_exception=True)
def import_detail(request: AuthedRequest, pk: int) -> HttpResponse:
    """Before confirming: the preview of every row's fate. While a worker applies it: its
    progress (htmx polls the `progress` partial). Afterwards: what happened."""
    partner_import = get_partner_import_for_user(request.user, pk)
    context: dict[str, Any] = {
        "partner_import": partner_import,
        "encoding": ENCODINGS.get(partner_import.encoding, ""),
    }
    if partner_import.status == PartnerImport.Status.UPLOADED:
        plan = plan_import(
            partner_import.rows, partner_import.mapping, numbers=partner_import.row_numbers
        )
        context.update(
            plan=plan,
            counts=plan.counts,
            creates=plan.of("create")[:PREVIEW_ROWS],
            updates=plan.of("update")[:PREVIEW_ROWS],
            rejects=plan.of("reject")[:PREVIEW_ROWS],
            new_offices=plan.new_offices[:NEW_OFFICES_SHOWN],
            skipped=plan.with_skipped_values[:PREVIEW_ROWS],
            office_counts=plan.office_counts,
            office_updates=plan.office_updates[:PREVIEW_ROWS],
            preview_rows=PREVIEW_ROWS,
        )
    return render_page(request, "partners/partnerimport_detail.html", context, partial="progress")


@login_required
@require_POST
@permission_required("partners.import_partners", raise_exception=True)
def import_apply(request: AuthedRequest, pk: int) -> HttpResponse:
    partner_import = get_partner_import_for_user(request.user, pk)
    form = ImportConfirmForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Nothing was imported: confirm the import from its preview.")
        return redirect(partner_import)
    try:
        applied = partner_import_start(
            partner_import=partner_import, previewed=form.cleaned_data["previewed"]
        )
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        if applied:
            partner_import.refresh_from_db()
            if partner_import.status == PartnerImport.Status.APPLIED:
                messages.success(request, "The partners were imported.")
        else:
            messages.info(request, "Importing in the background; this page shows progress.")
    return redirect(partner_import)


@login_required
@permission_required("partners.import_partners", raise_exception=True)
def import_rejects(request: AuthedRequest, pk: int) -> HttpResponseBase:
    """The rejected rows as they were in the file, with a Reasons column, to fix and
    upload again: those the import refused when it ran, once applied (the partner list
    has changed since: planned again, it would name other rows); before, the preview's."""
    partner_import = get_partner_import_for_user(request.user, pk)
    rejected: list[list[Any]] | None = partner_import.rejected_rows
    if rejected is None:
        plan = plan_import(
            partner_import.rows, partner_import.mapping, numbers=partner_import.row_numbers
        )
        rejected = [[row.number, row.cells, " ".join(row.reasons)] for row in plan.of("reject")]

    def lines() -> Iterator[list[Any]]:
        yield ["Row", *(safe_cell(name) for name in partner_import.headers), "Reasons"]
        for number, cells, reasons in rejected:
            yield [number, *(safe_cell(cell) for cell in cells), reasons]

    return csv_download(f"rejected-rows-{partner_import.pk}.csv", lines())
