"""Outreach against referrals: the liaisons' activity beside their partners' referrals."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required, permission_required
from django.http import HttpResponse
from django.shortcuts import render

from core.types import AuthedRequest
from outreach.reports import LIFT_BASE, outreach_lift
from referrals.forms import PeriodForm


@login_required
@permission_required("referrals.view_referral_reports", raise_exception=True)
def lift_report(request: AuthedRequest) -> HttpResponse:
    """Per liaison: activities logged, partners reached, and whether referrals grew faster
    from the partners reached than from the others, against the period before."""
    period = PeriodForm(request.GET)
    if not period.is_valid():
        return render(request, "outreach/lift_report.html", {"period": period})
    start, end = period.bounds()
    days = (period.cleaned_data["until"] - period.cleaned_data["since"]).days + 1
    return render(
        request,
        "outreach/lift_report.html",
        {
            "period": period,
            "period_days": days,
            "lift_base": LIFT_BASE,
            **outreach_lift(start=start, end=end),
        },
    )
