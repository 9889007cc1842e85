"""Referral reports: leakage, reciprocity (with its CSV), conversion by source,
turnaround (SLA targets met and loops closed) and who refers (with its CSV)."""

from __future__ import annotations

from itertools import chain
from typing import Any, cast
from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required, permission_required
from django.core.paginator import Paginator
from django.db.models import Count, F, Q
from django.http import HttpResponse, QueryDict, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import render

from core.csv_cells import (
    Table,
    download_format,
    download_query,
    rounded,
    safe_cell,
    table_download,
)
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


def _drill(period: PeriodForm, direction: str, **more: str) -> dict[str, str]:
    """The work queue's filters for the referrals a report counted in its period, open or
    not, for the report's figures to link to the rows behind them."""
    return {
        "direction": direction,
        "received_after": period.cleaned_data["since"].isoformat(),
        "received_before": period.cleaned_data["until"].isoformat(),
        "open": "",
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
    sent = Referral.objects.outbound().filter(received_at__gte=start, received_at__lt=end)
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
        return _leakage_download(leaked, totals, period, file_format)
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


def _leakage_download(
    leaked: Any, totals: dict[str, Any], period: PeriodForm, file_format: str
) -> HttpResponse | StreamingHttpResponse:
    """Every specialist patients left the network for in the period, busiest first, with
    the reasons given for each; then the page's totals and every reason given."""
    counts = list(
        leaked.values("provider", "out_of_network_reason")
        .annotate(n=Count("pk"))
        .order_by("provider", "-n", "out_of_network_reason")
    )
    by_provider: dict[int, dict[str, Any]] = {}
    by_reason: dict[str, int] = {}
    for row in counts:
        into = by_provider.setdefault(row["provider"], {"n": 0, "reasons": []})
        into["n"] += row["n"]
        reason = row["out_of_network_reason"]
        into["reasons"].append(f"{reason or 'No reason given'} ({row['n']})")
        by_reason[reason] = by_reason.get(reason, 0) + row["n"]
    ranked = sorted(by_provider.items(), key=lambda item: (-item[1]["n"], item[0]))

    def rows() -> Any:
        yield ["npi", "specialist", "specialty", "referrals out of network", "reasons given"]
        for first in range(0, len(ranked), 2000):
            chunk = ranked[first : first + 2000]
            names = Provider.objects.in_bulk([pk for pk, _ in chunk])
            for pk, found in chunk:
                if pk in names:  # not one deleted since the counts were read
                    specialist = names[pk]
                    yield [
                        specialist.npi,
                        safe_cell(specialist.display_name),
                        safe_cell(specialist.specialty),
                        found["n"],
                        safe_cell("; ".join(found["reasons"])),
                    ]

    summary = [
        ["figure", "value"],
        ["sent out", totals["total"]],
        ["in network", totals["sent_in"]],
        ["out of network", totals["sent_out"]],
        ["leakage %", rounded(totals["leakage"])],
        ["in or out of network (the share's denominator)", totals["known"]],
        ["declined by the specialist or cancelled (in neither share)", totals["dropped"]],
        ["sent before the network was recorded (in neither share)", totals["unknown"]],
    ]
    reasons = [["reason", "referrals out of network"]] + [
        [safe_cell(reason or "No reason given"), n]
        # Ordered as the page lists them.
        for reason, n in sorted(by_reason.items(), key=lambda item: (-item[1], item[0]))
    ]
    return table_download(
        period.file_stem("leakage"),
        rows(),
        file_format=file_format,
        sheet="Leakage",
        more=[Table("Totals", summary), Table("Reasons given", reasons)],
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
        totals = Referral.objects.filter(received_at__gte=start, received_at__lt=end).aggregate(
            received=Count("received_at", filter=Q(direction=Referral.Direction.INBOUND)),
            sent=Count("received_at", filter=Q(direction=Referral.Direction.OUTBOUND)),
        )
    file_format = download_format(request)
    if file_format:
        return _reciprocity_download(
            partners, period, file_format, totals=totals, kind=kind, flow=flow
        )
    over_time = _reciprocity_over_time(period, kind, flow)
    return render(
        request,
        "referrals/reciprocity_report.html",
        {
            "period": period,
            "page": paginate(request, partners),
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


def _reciprocity_download(
    partners: Any,
    period: ReciprocityForm,
    file_format: str,
    *,
    totals: dict[str, int],
    kind: str,
    flow: list[dict[str, Any]],
) -> HttpResponse | StreamingHttpResponse:
    """Every partner, busiest first; then the totals and the flow over time, for the partner
    the page follows when it follows one."""
    header = ["npi", "partner", "received", "sent", "balance (sent - received)"]
    rows = (
        [p.npi, safe_cell(p.display_name), p.received, p.sent, p.balance]
        for p in partners.iterator()
    )
    summary: list[list[Any]] = [
        ["figure", "value"],
        ["received", totals["received"]],
        ["sent", totals["sent"]],
    ]
    partner = period.cleaned_data["provider"]
    over_time = [
        [kind, "days covered, if not all", "received", "sent", "balance (sent - received)"]
    ]
    over_time += [
        [row["label"], row["part"], row["received"], row["sent"], row["balance"]] for row in flow
    ]
    title = f"Per {kind}" + (f", {partner.display_name}" if partner else "")
    return table_download(
        period.file_stem("reciprocity"),
        chain([header], rows),
        file_format=file_format,
        sheet="Reciprocity",
        more=[Table("Totals", summary), Table(title, over_time)],
    )


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
        return _conversion_download(rows, period, file_format)
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


def _conversion_download(
    rows: list[dict[str, Any]], period: PeriodForm, file_format: str
) -> HttpResponse | StreamingHttpResponse:
    """Each source's funnel, then why partner referrals were lost: every reason given."""
    header = ["source", "inquiries", "scheduled", "seen as new patient", "lost"]
    header += ["scheduled %", "seen as new patient %"]
    lines = (
        [
            row["label"],
            row["inquiries"],
            row["scheduled"],
            row["seen"],
            row["lost"],
            rounded(row["scheduled_rate"]),
            rounded(row["conversion_rate"]),
        ]
        for row in rows
    )
    start, end = period.bounds()
    lost = [["outcome", "reason", "referrals"]] + [
        [safe_cell(row["outcome"]), safe_cell(row["why"]), row["n"]]
        for row in Referral.objects.lost_reasons(since=start, until=end, limit=None)
    ]
    return table_download(
        period.file_stem("conversion"),
        chain([header], lines),
        file_format=file_format,
        sheet="Conversion",
        more=[Table("Why partner referrals were lost", lost)],
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
        return _turnaround_download(report, period, file_format)
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


def _hours_as_shown(hours: float | None) -> float | None:
    """A median wait in hours as the page shows it: two days or more in whole hours."""
    return rounded(hours, 1 if hours is None or hours < 48 else 0)


def _turnaround_download(
    report: dict[str, Any], period: PeriodForm, file_format: str
) -> HttpResponse | StreamingHttpResponse:
    """A row per urgency, then the patients sent out and their consult reports."""
    header = [
        "urgency",
        "first contact target (hours)",
        "appointment target (days)",
        "received",
        "first contact on time",
        "first contact late",
        "first contact overdue now",
        "first contact on time %",
        "median hours to first contact",
        "appointment by target day",
        "appointment after it",
        "appointment overdue now",
        "appointment by target day %",
        "median days to appointment",
        "seen",
        "report sent to the referring office",
        "loop closed %",
        "seen, report not sent yet",
    ]
    lines = (
        [
            row["label"],
            row["target"].first_contact_hours,
            row["target"].appointment_days,
            row["received"],
            row["contact_on_time"],
            row["contact_late"],
            row["contact_overdue"],
            rounded(row["contact_rate"]),
            _hours_as_shown(row["contact_hours"]),
            row["booked_on_time"],
            row["booked_late"],
            row["appointment_overdue"],
            rounded(row["booked_rate"]),
            rounded(row["appointment_days"]),
            row["seen"],
            row["loop_closed"],
            rounded(row["loop_rate"]),
            row["report_waiting"],
        ]
        for row in report["rows"]
    )
    outbound = report["outbound"]
    sent_out = [
        ["figure", "value"],
        ["sent", outbound["sent"]],
        ["seen by the specialist", outbound["seen"]],
        ["consult report back", outbound["report_back"]],
        ["consult report back % (of those seen)", rounded(outbound["report_rate"])],
        ["seen, report still missing", outbound["report_missing"]],
    ]
    return table_download(
        period.file_stem("turnaround"),
        chain([header], lines),
        file_format=file_format,
        sheet="Turnaround",
        more=[Table("Patients we sent out", sent_out)],
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
        return _referrers_download(found, period, file_format, period_days=period_days)
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


def _referrers_download(
    found: dict[str, Any], period: PeriodForm, file_format: str, *, period_days: int
) -> HttpResponse | StreamingHttpResponse:
    """The ranking of every referring partner, then the page's totals and the referrals by
    specialty and by office: every one of them, where the page lists the busiest."""
    header = [
        "rank",
        "npi",
        "partner",
        "specialty",
        "office",
        "referrals",
        "share %",
        "cumulative share %",
    ]

    def rows() -> Any:
        # The partners' names a chunk at a time: a year can have thousands of referrers.
        counts, cumulative = found["counts"], 0
        for first in range(0, len(counts), 2000):
            chunk = counts[first : first + 2000]
            for row in referrer_rows(
                chunk, total=found["total"], first_rank=first + 1, cumulative=cumulative
            ):
                partner = row["partner"]
                office = partner.organization.name if partner.organization else ""
                yield [
                    row["rank"],
                    partner.npi,
                    safe_cell(partner.display_name),
                    safe_cell(partner.specialty),
                    safe_cell(office),
                    row["n"],
                    rounded(row["share"]),
                    rounded(row["cumulative"]),
                ]
            cumulative += sum(n for _, n in chunk)

    days = f"{period_days} day{'' if period_days == 1 else 's'}"
    summary = [
        ["figure", "value"],
        ["referrals received", found["total"]],
        [f"referrals in the {days} before", found["previous_total"]],
        ["change against the period before %", rounded(found["change"])],
        ["referring partners", found["partners"]],
        [
            f"partners who sent {round(PARETO_SHARE * 100)}% of referrals",
            found["pareto_partners"],
        ],
        ["those partners as % of those who referred", rounded(found["pareto_share"], 0)],
    ]
    breakdown = referrals_by_specialty_and_office(found["counts"], limit=None)
    by_specialty = [["specialty", "partners", "referrals"]] + [
        [safe_cell(row["specialty"] or "Not recorded"), row["partners"], row["n"]]
        for row in breakdown["by_specialty"]
    ]
    by_office = [["office", "partners", "referrals"]] + [
        [
            safe_cell(row["name"] if row["office"] else "No office recorded"),
            row["partners"],
            row["n"],
        ]
        for row in breakdown["by_office"]
    ]
    return table_download(
        period.file_stem("referrers"),
        chain([header], rows()),
        file_format=file_format,
        sheet="Who refers",
        more=[
            Table("Totals", summary),
            Table("By specialty", by_specialty),
            Table("By office", by_office),
        ],
    )
