"""Outreach against referrals: the liaisons' activity beside their partners' referrals."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required, permission_required
from django.http import HttpResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import render

from core.csv_cells import download_format, download_query, rounded, safe_cell, table_download
from core.templatetags.people import person as person_name
from core.types import AuthedRequest
from outreach.reports import LIFT_BASE, outreach_lift
from referrals.forms import PeriodForm


@login_required
@permission_required("referrals.view_referral_reports", raise_exception=True)
def lift_report(request: AuthedRequest) -> HttpResponseBase:
    """Per liaison: activities logged, partners reached, and whether referrals grew faster
    from the partners reached than from the others, against the period before."""
    period = PeriodForm(request.GET)
    if not period.is_valid():
        return render(request, "outreach/lift_report.html", {"period": period})
    start, end = period.bounds()
    days = (period.cleaned_data["until"] - period.cleaned_data["since"]).days + 1
    report = outreach_lift(start=start, end=end)
    file_format = download_format(request)
    if file_format:
        return _lift_download(report, period, file_format)
    return render(
        request,
        "outreach/lift_report.html",
        {
            "period": period,
            "period_days": days,
            "lift_base": LIFT_BASE,
            "download_query": download_query(request),
            **report,
        },
    )


def _lift_download(
    report: dict[str, Any], period: PeriodForm, file_format: str
) -> HttpResponse | StreamingHttpResponse:
    header = [
        "owner",
        "partners",
        "partners reached",
        "activities",
        "referrals before",
        "referrals in the period",
        "from partners reached, before",
        "from partners reached, in the period",
        "from the others, before",
        "from the others, in the period",
        "lift (percentage points)",
        "referrals, change %",
        "from partners reached, change %",
        "from the others, change %",
    ]

    def line(row: dict[str, Any], owner: str) -> list[Any]:
        return [
            safe_cell(owner),
            row["partners"],
            row["reached_partners"],
            row["activities"],
            row["all"]["before"],
            row["all"]["now"],
            row["reached"]["before"],
            row["reached"]["now"],
            row["others"]["before"],
            row["others"]["now"],
            # Whole points and percentages, as the page shows them.
            rounded(row["lift"], 0),
            rounded(row["all"]["change"], 0),
            rounded(row["reached"]["change"], 0),
            rounded(row["others"]["change"], 0),
        ]

    lines = [
        line(row, person_name(row["person"]) if row["person"] else "Partners with no owner")
        for row in report["rows"]
    ]
    lines.append(line(report["total"], "Everyone"))
    return table_download(
        period.file_stem("outreach-and-referrals"),
        [header, *lines],
        file_format=file_format,
        sheet="Outreach and referrals",
    )
