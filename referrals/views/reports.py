"""Referral reports: leakage, reciprocity, conversion by source, turnaround (SLA targets
met and loops closed) and who refers; each downloads as CSV or XLSX (report_downloads)."""

from __future__ import annotations

from typing import Any, cast
from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required, permission_required
from django.core.paginator import Paginator
from django.db.models import Count, F, Q
from django.http import QueryDict
from django.http.response import HttpResponseBase
from django.shortcuts import render

from core.csv_cells import download_format, download_query
from core.pagination import PAGE_SIZE, paginate
from core.types import AuthedRequest
from partners.models import Provider
from referrals.charts import bar_chart
from referrals.forms import PeriodForm, ReciprocityForm
from referrals.models import WENT_AHEAD, Inquiry, Referral
from referrals.selectors import (
    PARETO_SHARE,
    reciprocity_over_time,
    referrals_by_specialty_and_office,
    referrer_rows,
    referrers,
    turnaround,
)
from referrals.views.report_downloads import (
    conversion_download,
    leakage_download,
    reciprocity_download,
    referrers_download,
    turnaround_download,
)


def _drill(period: PeriodForm, direction: str, **more: str) -> dict[str, str]:
    """The work queue's filters for the referrals a report counted in its period, open or
    not, for the report's figures to link to the rows behind them."""
    return {
        "direction": direction,
        "received_after": period.cleaned_data["since"].isoformat(),
        "received_before": period.cleaned_data["until"].isoformat(),
        "open": "",
        # The reports count no copy cancelled as a duplicate; neither do their rows.
        "counted": "true",
        **more,
    }


def _counted(provider: Provider, n: int) -> Provider:
    provider.n = n  # type: ignore[attr-defined]
    return provider


@login_required
@permission_required("referrals.view_referral_reports", raise_exception=True)
def leakage_report(request: AuthedRequest) -> HttpResponseBase:
    """Outbound referrals in a period: how many left the preferred network, to whom and
    why, each figure linking to the rows behind it."""
    period = PeriodForm(request.GET)
    if not period.is_valid():
        return render(request, "referrals/leakage_report.html", {"period": period})
    start, end = period.bounds()
    # A patient sent twice and the copy marked as a duplicate is one referral sent, not
    # one sent and one cancelled.
    sent = Referral.objects.counted().outbound().filter(received_at__gte=start, received_at__lt=end)
    totals = sent.aggregate(
        total=Count("pk"),
        dropped=Count("pk", filter=~WENT_AHEAD),
        sent_in=Count("pk", filter=WENT_AHEAD & Q(in_network=True)),
        sent_out=Count("pk", filter=WENT_AHEAD & Q(in_network=False)),
    )
    # Declined or cancelled, the patient did not go: neither share counts them. Nor does
    # it count referrals sent before the network was recorded.
    known = totals["sent_in"] + totals["sent_out"]
    totals["unknown"] = totals["total"] - totals["dropped"] - known
    totals["known"] = known
    totals["leakage"] = totals["sent_out"] / known * 100 if known else None
    leaked = sent.went_ahead().filter(in_network=False)
    # Counted from the period's leaked referrals alone (a join from the partners read every
    # referral ever made: half a second at a million), then this page's specialists by id.
    by_specialist = paginate(
        request, leaked.values("provider").annotate(n=Count("pk")).order_by("-n", "provider")
    )
    names = Provider.objects.only("pk", "first_name", "last_name", "credential").in_bulk(
        [row["provider"] for row in by_specialist]
    )
    by_specialist.object_list = [
        _counted(names[row["provider"]], row["n"])
        for row in by_specialist
        if row["provider"] in names  # not one deleted since the counts were read
    ]
    file_format = download_format(request)
    if file_format:
        return leakage_download(leaked, totals, period, file_format)
    reasons = (
        leaked.values("out_of_network_reason")
        .annotate(n=Count("pk"))
        .order_by("-n", "out_of_network_reason")[:10]
    )
    drill = urlencode(_drill(period, "outbound", network="false"))
    return render(
        request,
        "referrals/leakage_report.html",
        {
            "period": period,
            "totals": totals,
            "page": by_specialist,
            "reasons": reasons,
            "drill": drill,
            "download_query": download_query(request),
        },
    )


@login_required
@permission_required("referrals.view_referral_reports", raise_exception=True)
def reciprocity_report(request: AuthedRequest) -> HttpResponseBase:
    """Referrals received from and sent to each partner over a period, busiest first, with
    the totals and the flow per month (or year); ?format=csv or xlsx downloads them all."""
    period = ReciprocityForm(request.GET)
    if not period.is_valid():
        return render(request, "referrals/reciprocity_report.html", {"period": period})
    start, end = period.bounds()
    partners = (
        Provider.objects.with_reciprocity(since=start, until=end)
        .annotate(volume=F("sent") + F("received"))
        .order_by("-volume", "last_name", "pk")
        .only("pk", "first_name", "last_name", "credential", "npi")
    )
    partner = period.cleaned_data["provider"]
    kind, flow = reciprocity_over_time(
        since=period.cleaned_data["since"], until=period.cleaned_data["until"], provider=partner
    )
    if partner is None:
        # The months cover the same period for every partner: their sums are the totals
        # (a year at a million referrals is 100 ms to count again).
        totals = {
            "received": sum(row["received"] for row in flow),
            "sent": sum(row["sent"] for row in flow),
        }
    else:
        totals = (
            Referral.objects.counted()
            .filter(received_at__gte=start, received_at__lt=end)
            .aggregate(
                received=Count("received_at", filter=Q(direction=Referral.Direction.INBOUND)),
                sent=Count("received_at", filter=Q(direction=Referral.Direction.OUTBOUND)),
            )
        )
    file_format = download_format(request)
    if file_format:
        return reciprocity_download(
            partners, period, file_format, totals=totals, kind=kind, flow=flow
        )
    over_time = _reciprocity_over_time(period, kind, flow)
    return render(
        request,
        "referrals/reciprocity_report.html",
        {
            "period": period,
            # The partners listed are those with a referral of the period: counted from
            # the referrals alone, not through the join above, which read a year of a
            # million referrals again (0.45 to 0.33 s).
            "page": paginate(
                request,
                partners,
                count=Referral.objects.counted()
                .filter(received_at__gte=start, received_at__lt=end)
                .order_by()
                .values("provider")
                .distinct()
                .count(),
            ),
            "totals": totals,
            # Each figure links to the rows behind it in the work queue.
            "drill_received": urlencode(_drill(period, "inbound")),
            "drill_sent": urlencode(_drill(period, "outbound")),
            "download_query": download_query(request),
            **over_time,
        },
    )


def _reciprocity_over_time(
    period: ReciprocityForm, kind: str, rows: list[dict[str, Any]]
) -> dict[str, Any]:
    """Received vs sent per month (or year), overall or for the chosen partner, as a chart
    and the table beside it."""
    partner = period.cleaned_data["provider"]
    who = "this partner" if partner else "all partners"
    chart = bar_chart(
        title=f"Received vs sent per {kind}",
        description=(
            f"Referrals received from and sent to {who}, per {kind}: "
            + "; ".join(f"{r['label']}: {r['received']} received, {r['sent']} sent" for r in rows)
        ),
        # A period that covers part of a month marks it (the table says which days).
        labels=[row["label"] + ("*" if row["part"] else "") for row in rows],
        series=[
            ("Received", [row["received"] for row in rows]),
            ("Sent", [row["sent"] for row in rows]),
        ],
    )
    query = cast(QueryDict, period.data).copy()  # bound to request.GET
    query.pop("page", None)
    query.pop("provider", None)
    return {
        "flow_kind": kind,
        "flow": rows,
        "flow_chart": chart,
        "flow_partner": partner,
        "period_query": query.urlencode(),
    }


@login_required
@permission_required("referrals.view_referral_reports", raise_exception=True)
def conversion_report(request: AuthedRequest) -> HttpResponseBase:
    """Conversion by source from the practice's own inquiries, with the denominators."""
    period = PeriodForm(request.GET)
    if not period.is_valid():
        return render(request, "referrals/conversion_report.html", {"period": period})
    start, end = period.bounds()
    rows = Inquiry.objects.conversion_by_source(since=start, until=end)
    file_format = download_format(request)
    if file_format:
        return conversion_download(rows, period, file_format)
    return render(
        request,
        "referrals/conversion_report.html",
        {
            "period": period,
            "rows": rows,
            "funnel_chart": _conversion_chart(rows),
            "lost_reasons": Referral.objects.lost_reasons(since=start, until=end),
            "open_inquiries": paginate(
                request,
                Inquiry.objects.front_desk().open(),
            ),
            "download_query": download_query(request),
        },
    )


def _conversion_chart(rows: list[dict[str, Any]]) -> str:
    """The funnel of each source as shares of its inquiries, so sources of very different
    size compare; the counts behind each share are in the table beside it."""
    return bar_chart(
        title="Funnel by source (% of inquiries)",
        description="Share of each source's inquiries that were scheduled and seen as new "
        "patients: "
        + "; ".join(
            f"{row['label']}: "
            + (
                f"{row['scheduled_rate']:.0f}% scheduled, {row['conversion_rate']:.0f}% seen "
                f"of {row['inquiries']} inquiries"
                if row["inquiries"]
                else "no inquiries"
            )
            for row in rows
        ),
        labels=[f"{row['label'].split(' (')[0]} (n={row['inquiries']})" for row in rows],
        series=[
            ("Scheduled", [row["scheduled_rate"] for row in rows]),
            ("Seen as new patient", [row["conversion_rate"] for row in rows]),
        ],
        horizontal=True,
        percent=True,
        height=420,
    )


@login_required
@permission_required("referrals.view_referral_reports", raise_exception=True)
def turnaround_report(request: AuthedRequest) -> HttpResponseBase:
    """Inbound referrals of a period against the SLA targets (first contact, appointment)
    and the loop closed with each referring office; consult reports back from specialists."""
    period = PeriodForm(request.GET)
    if not period.is_valid():
        return render(request, "referrals/turnaround_report.html", {"period": period})
    start, end = period.bounds()
    drill = _drill(period, "inbound")
    report = turnaround(start=start, end=end)
    file_format = download_format(request)
    if file_format:
        return turnaround_download(report, period, file_format)
    for row in report["rows"]:
        row["drill"] = urlencode({**drill, "urgency": row["urgency"]})
    return render(
        request,
        "referrals/turnaround_report.html",
        {
            "period": period,
            **report,
            "drill": urlencode(drill),
            "download_query": download_query(request),
        },
    )


# Specialties and offices listed beside the ranking.
BUSIEST = 15


@login_required
@permission_required("referrals.view_referral_reports", raise_exception=True)
def referrers_report(request: AuthedRequest) -> HttpResponseBase:
    """Who sends the practice its patients: every referring partner of a period ranked by
    referrals with the running share (the 80/20 of referrers), growth against the period
    before, and the referrals by specialty and by office; ?format=csv or xlsx downloads
    them all."""
    period = PeriodForm(request.GET)
    if not period.is_valid():
        return render(request, "referrals/referrers_report.html", {"period": period})
    start, end = period.bounds()
    found = referrers(start=start, end=end)
    period_days = (period.cleaned_data["until"] - period.cleaned_data["since"]).days + 1
    file_format = download_format(request)
    if file_format:
        return referrers_download(found, period, file_format, period_days=period_days)
    page = Paginator(found["counts"], PAGE_SIZE).get_page(request.GET.get("page"))
    above = sum(n for _, n in found["counts"][: page.start_index() - 1])
    page.object_list = referrer_rows(
        list(page.object_list),
        total=found["total"],
        first_rank=page.start_index(),
        cumulative=above,
    )
    return render(
        request,
        "referrals/referrers_report.html",
        {
            "period": period,
            **found,
            "pareto_percent": round(PARETO_SHARE * 100),
            "period_days": period_days,
            "busiest": BUSIEST,
            "page": page,
            "drill": urlencode(_drill(period, "inbound")),
            "download_query": download_query(request),
            **referrals_by_specialty_and_office(found["counts"], limit=BUSIEST),
        },
    )
