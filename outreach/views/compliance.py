"""The gifts and meals report, its CSV export and the yearly limit."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.db.models import Q, Sum
from django.http import HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from core.csv_cells import csv_download, safe_cell
from core.htmx import render_page
from core.ids import parse_id
from core.pagination import paginate
from core.types import AuthedRequest
from outreach import ledger
from outreach.forms import ComplianceLimitForm, ComplianceReportForm
from outreach.models import ComplianceLimit
from partners.models import Provider


@login_required
@permission_required("outreach.view_compliance_report", raise_exception=True)
def compliance_report(request: AuthedRequest) -> HttpResponse | StreamingHttpResponse:
    return _report_page(request)


def _report_page(
    request: AuthedRequest, limit_form: ComplianceLimitForm | None = None
) -> HttpResponse | StreamingHttpResponse:
    """The report; `limit_form` is a limit just refused, shown with what was typed."""
    form = ComplianceReportForm(request.GET or None)
    # A value that cannot be read (a hand-edited address) falls back to its default and is
    # said on the page; the others are kept.
    form.is_valid()
    chosen = getattr(form, "cleaned_data", {})
    year = chosen.get("year") or timezone.localdate().year
    sort = chosen.get("sort") or "-total"
    limit, limit_year = ComplianceLimit.applying_to(year)
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
        return _compliance_csv(rows, year=year, limit=limit, limit_year=limit_year)
    page = paginate(request, rows)
    for provider in page:
        provider.percent = int(provider.total / limit * 100) if limit else None
    if limit_form is None and request.user.has_perm("outreach.change_compliancelimit"):
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
            "limit_year": limit_year,
            "warn_percent": int(ledger.WARN_AT * 100),
            "limit_form": limit_form,
            "limits": ComplianceLimit.objects.all()[:10],
        },
        partial="results",
    )


def _compliance_csv(
    rows: Any, *, year: int, limit: Decimal | None, limit_year: int | None
) -> StreamingHttpResponse:
    """A row per physician; "Limit set for" names the year whose limit applies, which is
    another year's when none was set for this one (as the page says)."""

    def lines() -> Iterator[list[Any]]:
        yield [
            "NPI",
            "Provider",
            "Office",
            "Year",
            "Total",
            "Limit",
            "Limit set for",
            "Percent of limit",
        ]
        for provider in rows.iterator(chunk_size=2000):
            yield [
                provider.npi,
                safe_cell(provider.display_name),
                safe_cell(provider.organization.name if provider.organization else ""),
                year,
                Decimal(provider.total).quantize(ledger.CENT),
                limit or "",
                limit_year or "",
                int(provider.total / limit * 100) if limit else "",
            ]

    return csv_download(f"gifts-and-meals-{year}.csv", lines())


@login_required
@permission_required("outreach.change_compliancelimit", raise_exception=True)
@require_POST
def compliance_limit_save(request: AuthedRequest) -> HttpResponse | StreamingHttpResponse:
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
    # Back in its form, with what was typed and why (the report shows this year).
    return _report_page(request, limit_form=form)
