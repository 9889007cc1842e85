"""The files the referral reports download: each page's main table first, then its
totals and its other tables (core.csv_cells.table_download), with the figures as the page
shows them."""

from __future__ import annotations

from itertools import chain
from typing import Any

from django.db.models import Count
from django.http import HttpResponse, StreamingHttpResponse

from core.csv_cells import Table, rounded, safe_cell, table_download
from partners.models import Provider
from referrals.forms import PeriodForm, ReciprocityForm
from referrals.models import Referral
from referrals.selectors import PARETO_SHARE, referrals_by_specialty_and_office, referrer_rows


def leakage_download(
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


def reciprocity_download(
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


def conversion_download(
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


def _hours_as_shown(hours: float | None) -> float | None:
    """A median wait in hours as the page shows it: two days or more in whole hours."""
    return rounded(hours, 1 if hours is None or hours < 48 else 0)


def turnaround_download(
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
        "appointment day passed, never contacted",
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
            row["unanswered_past_day"],
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


def referrers_download(
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
