"""Every manager's report downloads as CSV and as an Excel workbook holding the figures the
page shows, its free text defused, for those who may see reports only."""

from __future__ import annotations

import csv
import html
import io
import re
from datetime import timedelta
from itertools import zip_longest
from typing import Any

import pytest
from django.urls import reverse
from django.utils import timezone
from openpyxl import load_workbook

from partners.factories import OrganizationFactory, ProviderFactory
from referrals.factories import ReferralFactory
from referrals.models import Inquiry, Referral, SlaTarget, Status
from referrals.services.workflow import referral_log, referral_transition

pytestmark = pytest.mark.django_db

REPORTS = [
    "referrals:leakage",
    "referrals:reciprocity",
    "referrals:conversion",
    "referrals:turnaround",
    "referrals:referrers",
    "outreach:lift",
]


def _csv(response) -> list[list[str]]:
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].endswith('.csv"')
    body = b"".join(response.streaming_content).decode("utf-8-sig")
    return list(csv.reader(io.StringIO(body)))


def _xlsx(response) -> list[list[object]]:
    assert response.status_code == 200
    assert response["Content-Type"].endswith("spreadsheetml.sheet")
    assert response["Content-Disposition"].endswith('.xlsx"')
    sheet = load_workbook(io.BytesIO(response.content), read_only=True).active
    return [list(row) for row in sheet.iter_rows(values_only=True)]


def _csv_tables(response) -> tuple[list[list[str]], dict[str, list[list[str]]]]:
    """The CSV's main table, and each further table (after a blank row) by its title."""
    sections: list[list[list[str]]] = [[]]
    for row in _csv(response):
        if row:
            sections[-1].append(row)
        else:
            sections.append([])
    main, *more = sections
    return main, {table[0][0]: table[1:] for table in more}


def _xlsx_sheets(response) -> dict[str, list[list[object]]]:
    """Every sheet of the workbook by its name, in the workbook's order."""
    assert response.status_code == 200
    assert response["Content-Disposition"].endswith('.xlsx"')
    workbook = load_workbook(io.BytesIO(response.content), read_only=True)
    return {
        name: [list(row) for row in workbook[name].iter_rows(values_only=True)]
        for name in workbook.sheetnames
    }


def _figures(table: list[list[Any]]) -> dict[str, Any]:
    """A two-column table of figures (the header first) as {figure: value}; an empty cell,
    or one a workbook did not store, is None."""
    assert table[0] == ["figure", "value"]
    return {row[0]: row[1] if len(row) > 1 and row[1] != "" else None for row in table[1:]}


def _csv_figures(table: list[list[str]]) -> dict[str, float | None]:
    """A CSV's table of figures with its numbers read as numbers."""
    return {
        name: None if value is None else float(value) for name, value in _figures(table).items()
    }


def _found(pattern: str, text: str, flags: int = 0) -> re.Match[str]:
    found = re.search(pattern, text, flags)
    assert found is not None, pattern
    return found


def _number(text: str) -> float | None:
    """A figure as the page prints it ("1,234", "66.7%", "+25.0%", "101 h", "2.5 days") as
    a number; the dash a page shows for a share of nothing is None."""
    if text.strip() == "\u2013":
        return None
    return float(_found(r"[-+]?[\d,]*\.?\d+", text).group().replace(",", ""))


def _page_text(markup: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", markup).split())


def _downloads(client, url: str, page: str) -> tuple:
    """The page's own download links followed: the CSV and the workbook of what it shows,
    with the period it shows."""
    files = []
    for file_format in ("csv", "xlsx"):
        link = re.search(rf'href="([^"]+)" data-testid="download-{file_format}"', page)
        assert link is not None, f"no {file_format} download on the page"
        files.append(client.get(url + link.group(1).replace("&amp;", "&")))
    return tuple(files)


def _sent_out(specialist, reason, *, days_ago=3):
    return referral_log(
        referral=ReferralFactory.build(
            provider=specialist,
            direction="outbound",
            received_at=timezone.now() - timedelta(days=days_ago),
            out_of_network_reason=reason,
        ),
        actor=None,
    )


def test_leakage_downloads_every_specialist_with_the_reasons_given(client_for, manager):
    far = ProviderFactory(in_network=False, first_name="=cmd|' /C calc'!A0", last_name="Far")
    near = ProviderFactory(in_network=False, last_name="Nearby")
    for _ in range(2):
        _sent_out(far, "Patient asked")
    _sent_out(far, "Insurance")
    _sent_out(near, "Insurance")
    _sent_out(ProviderFactory(in_network=True), "")
    client = client_for(manager)
    page = client.get(reverse("referrals:leakage")).content.decode()
    assert 'data-testid="download-csv"' in page and "format=xlsx" in page
    rows, _ = _csv_tables(client.get(reverse("referrals:leakage"), {"format": "csv"}))
    assert rows[0] == [
        "npi",
        "specialist",
        "specialty",
        "referrals out of network",
        "reasons given",
    ]
    assert [row[0] for row in rows[1:]] == [far.npi, near.npi]  # busiest first
    assert rows[1][1].startswith("'=cmd")  # a formula is defused
    assert rows[1][3:] == ["3", "Patient asked (2); Insurance (1)"]
    assert rows[2][3:] == ["1", "Insurance (1)"]
    workbook = _xlsx(client.get(reverse("referrals:leakage"), {"format": "xlsx"}))
    assert workbook[1][0] == far.npi and workbook[1][3] == 3  # a number, not text
    assert workbook[1][1].startswith("'=cmd")


def test_the_leakage_download_holds_the_pages_totals_and_reasons(client_for, manager):
    far = ProviderFactory(in_network=False, last_name="Far")
    near = ProviderFactory(in_network=True, last_name="Near")
    _sent_out(far, "Patient asked", days_ago=5)
    _sent_out(far, "", days_ago=5)
    for _ in range(4):
        _sent_out(near, "", days_ago=5)
    declined = _sent_out(far, "Insurance", days_ago=5)
    Referral.objects.filter(pk=declined.pk).update(
        status=Status.CLOSED, decline_reason="Not taking new patients"
    )
    legacy = _sent_out(near, "", days_ago=5)
    Referral.objects.filter(pk=legacy.pk).update(in_network=None)
    _sent_out(far, "Before the period", days_ago=40)
    period = {
        "since": (timezone.localdate() - timedelta(days=30)).isoformat(),
        "until": timezone.localdate().isoformat(),
    }
    client = client_for(manager)
    url = reverse("referrals:leakage")
    response = client.get(url, period)
    page = response.content.decode()
    totals = response.context["totals"]
    shown = _found(r'data-testid="leakage">([^<]*)<', page).group(1)
    assert shown == "33.3%"  # 2 of the 6 that went where the network was known
    listed = re.findall(r"<span>([^<]*)</span><span class=\"badge[^>]*>(\d+)<", page)
    assert listed == [("No reason given", "1"), ("Patient asked", "1")]

    shows = {
        "sent out": totals["total"],
        "in network": totals["sent_in"],
        "out of network": totals["sent_out"],
        "leakage %": _number(shown),
        "in or out of network (the share's denominator)": totals["known"],
        "declined by the specialist or cancelled (in neither share)": totals["dropped"],
        "sent before the network was recorded (in neither share)": totals["unknown"],
    }
    assert list(shows.values()) == [8, 4, 2, 33.3, 6, 1, 1]

    csv_file, xlsx_file = _downloads(client, url, page)
    assert csv_file["Content-Disposition"].endswith(
        f'leakage-{period["since"]}-{period["until"]}.csv"'
    )
    main, more = _csv_tables(csv_file)
    assert [row[0] for row in main[1:]] == [far.npi]  # the main table comes first, as before
    assert list(more) == ["Totals", "Reasons given"]
    assert _csv_figures(more["Totals"]) == shows
    sheets = _xlsx_sheets(xlsx_file)
    assert list(sheets) == ["Leakage", "Totals", "Reasons given"]
    assert sheets["Leakage"][1][0] == far.npi and sheets["Leakage"][1][3] == 2
    assert _figures(sheets["Totals"]) == shows
    reasons = [["reason", "referrals out of network"]] + [[r, int(n)] for r, n in listed]
    assert sheets["Reasons given"] == reasons
    assert more["Reasons given"] == [[str(cell) for cell in row] for row in reasons]


def test_leakage_with_nobody_sent_out_of_the_network_still_downloads_its_totals(
    client_for, manager
):
    _sent_out(ProviderFactory(in_network=True), "")
    client = client_for(manager)
    url = reverse("referrals:leakage")
    page = client.get(url).content.decode()
    assert 'data-testid="leakage">0.0%<' in page
    csv_file, xlsx_file = _downloads(client, url, page)
    main, more = _csv_tables(csv_file)
    assert len(main) == 1  # the header: no specialist to list
    assert _csv_figures(more["Totals"])["leakage %"] == 0.0
    assert more["Reasons given"] == [["reason", "referrals out of network"]]
    sheets = _xlsx_sheets(xlsx_file)
    assert _figures(sheets["Totals"])["leakage %"] == 0.0
    assert _figures(sheets["Totals"])["sent out"] == 1


def test_conversion_downloads_each_source_with_its_denominator(client_for, manager):
    Inquiry.objects.create(source=Inquiry.Source.WEB, status=Inquiry.Status.SCHEDULED)
    Inquiry.objects.create(source=Inquiry.Source.WEB)
    rows = _csv(client_for(manager).get(reverse("referrals:conversion"), {"format": "csv"}))
    assert rows[0][:5] == ["source", "inquiries", "scheduled", "seen as new patient", "lost"]
    web = next(row for row in rows[1:] if row[1] == "2")
    assert web[2:] == ["1", "0", "0", "50.0", "0.0"]


def _conversion_shown(page: str) -> list[dict[str, Any]]:
    """Each source's row of the conversion page, by the download's names."""
    shown = []
    for row in re.findall(r'<tr data-source="\w+">(.*?)</tr>', page, re.S):
        label = _found(r'<td class="q-patient">([^<]*)</td>', row).group(1)
        cells = {
            name: _page_text(markup)
            for name, markup in re.findall(r'<td[^>]*data-label="([^"]+)"[^>]*>(.*?)</td>', row)
        }
        scheduled_rate = re.search(r"\(([\d.]+)%\)", cells["Scheduled"])
        shown.append(
            {
                "source": html.unescape(label),
                "inquiries": _number(cells["Inquiries"]),
                "scheduled": _number(cells["Scheduled"]),
                "seen as new patient": _number(cells["Seen as new patients"]),
                "lost": _number(cells["Lost"]),
                "scheduled %": _number(scheduled_rate.group(1)) if scheduled_rate else None,
                "seen as new patient %": _number(cells["Conversion"]),
            }
        )
    return shown


def _lost_shown(page: str) -> list[list[object]]:
    """The conversion page's table of why partner referrals were lost."""
    table = page.split('data-testid="lost-reasons"')[1].split("</table>")[0]
    return [
        [html.unescape(outcome), html.unescape(why), int(n)]
        for outcome, why, n in re.findall(
            r"<tr><td>([^<]*)</td><td>([^<]*)</td><td[^>]*>(\d+)</td></tr>", table
        )
    ]


def _partner_referral(*, days_ago: int = 3) -> Referral:
    return referral_log(
        referral=ReferralFactory.build(
            provider=ProviderFactory(in_network=True),
            received_at=timezone.now() - timedelta(days=days_ago),
        ),
        actor=None,
    )


def _lost(to_status: str, why: str, *, days_ago: int = 3) -> Referral:
    referral = _partner_referral(days_ago=days_ago)
    if to_status == "declined":
        return referral_transition(
            referral=referral, to_status=to_status, actor=None, decline_reason=why
        )
    return referral_transition(
        referral=referral, to_status=to_status, actor=None, cancel_reason=why
    )


def test_the_conversion_download_holds_the_funnel_and_why_referrals_were_lost(client_for, manager):
    for status in ("scheduled", "inquiry"):
        Inquiry.objects.create(source=Inquiry.Source.WEB, status=status)
    for status in ("seen_new_patient", "lost", "inquiry"):
        Inquiry.objects.create(source=Inquiry.Source.ADVERTISING, status=status)
    Inquiry.objects.create(
        source=Inquiry.Source.WEB, received_at=timezone.now() - timedelta(days=40)
    )
    for _ in range(2):
        _lost("cancelled", "=We could not reach the patient")  # a formula, to defuse
    _lost("declined", "Not in network with the patient's plan")
    _lost("declined", "Before the period", days_ago=40)
    # One closed after the patient missed the appointment.
    missed = referral_transition(referral=_partner_referral(), to_status="accepted", actor=None)
    missed = referral_transition(
        referral=missed,
        to_status="scheduled",
        actor=None,
        appointment_at=timezone.now() - timedelta(days=1),
    )
    missed = referral_transition(referral=missed, to_status="no_show", actor=None)
    referral_transition(referral=missed, to_status="closed", actor=None)
    period = {
        "since": (timezone.localdate() - timedelta(days=30)).isoformat(),
        "until": timezone.localdate().isoformat(),
    }
    client = client_for(manager)
    url = reverse("referrals:conversion")
    page = client.get(url, period).content.decode()
    funnel = _conversion_shown(page)
    web = next(row for row in funnel if row["source"].startswith("Web"))
    advertising = next(row for row in funnel if row["source"].startswith("Advertising"))
    assert [web["inquiries"], web["scheduled %"], web["seen as new patient %"]] == [2, 50, 0]
    assert advertising["seen as new patient %"] == 33.3
    lost = _lost_shown(page)
    assert lost == [
        ["Cancelled", "=We could not reach the patient", 2],
        ["Declined", "Not in network with the patient's plan", 1],
        ["No-show", "Closed after the patient did not come", 1],
    ]
    defused = [["Cancelled", "'=We could not reach the patient", 2], *lost[1:]]

    csv_file, xlsx_file = _downloads(client, url, page)
    main, more = _csv_tables(csv_file)
    header, *rows = main
    assert [
        {
            name: value if name == "source" else (float(value) if value else None)
            for name, value in zip(header, row, strict=True)
        }
        for row in rows
    ] == funnel
    assert list(more) == ["Why partner referrals were lost"]
    assert more["Why partner referrals were lost"] == [
        ["outcome", "reason", "referrals"],
        *[[outcome, why, str(n)] for outcome, why, n in defused],
    ]
    sheets = _xlsx_sheets(xlsx_file)
    assert list(sheets) == ["Conversion", "Why partner referrals were lost"]
    header, *rows = sheets["Conversion"]
    assert [dict(zip_longest(header, row)) for row in rows] == funnel
    assert sheets["Why partner referrals were lost"] == [
        ["outcome", "reason", "referrals"],
        *defused,
    ]


def test_the_conversion_download_lists_every_reason_where_the_page_lists_the_ten_most(
    client_for, manager
):
    for number in range(11):
        _lost("declined", f"Reason {number:02}")
    _lost("declined", "Reason 00")
    client = client_for(manager)
    url = reverse("referrals:conversion")
    page = client.get(url).content.decode()
    listed = _lost_shown(page)
    assert len(listed) == 10 and listed[0] == ["Declined", "Reason 00", 2]
    downloaded = _xlsx_sheets(_downloads(client, url, page)[1])["Why partner referrals were lost"]
    assert downloaded[1:11] == listed  # the page's ten first, in its order
    assert downloaded[11:] == [["Declined", "Reason 10", 1]]


def test_turnaround_downloads_a_row_per_urgency_with_its_targets(client_for, manager):
    SlaTarget.objects.update_or_create(
        urgency="routine", defaults={"first_contact_hours": 72, "appointment_days": 30}
    )
    received = timezone.now() - timedelta(days=10)
    ReferralFactory(
        direction="inbound",
        urgency="routine",
        received_at=received,
        contacted_at=received + timedelta(hours=6),
    )
    workbook = _xlsx(client_for(manager).get(reverse("referrals:turnaround"), {"format": "xlsx"}))
    header, routine = workbook[0], workbook[1]
    figures = dict(zip_longest(header, routine))  # an empty last cell is not stored
    assert figures["urgency"] == "Routine"
    assert figures["first contact target (hours)"] == 72
    assert figures["received"] == 1
    assert figures["first contact on time"] == 1
    assert figures["first contact on time %"] == 100.0
    assert figures["median hours to first contact"] == 6.0
    assert figures["loop closed %"] is None  # nobody seen yet: no share, not 0 %


def _turnaround_shown(page: str) -> dict[str, dict[str, Any]]:
    """Each urgency's figures as the turnaround page shows them, by the download's names."""
    shown = {}
    for urgency, row in re.findall(r'<tr data-urgency="(\w+)">(.*?)</tr>', page, re.S):
        cells = {
            label: _page_text(markup)
            for label, markup in re.findall(r'<td[^>]*data-label="([^"]+)">(.*?)</td>', row, re.S)
        }
        label, contact_hours, appointment_days = _found(
            r'q-patient">([^<]+) <span[^>]*>\(contact (\d+) h, appointment (\d+) d\)', row
        ).groups()
        contact = _found(
            r"^(\S+) (\d+) on time, (\d+) late(?:, (\d+) overdue now)?$",
            cells["First contact on time"],
        ).groups()
        booked = _found(
            r"^(\S+) (\d+) by it, (\d+) after it(?:, (\d+) overdue now)?"
            r"(?: ?, (\d+) never contacted)?$",
            cells["Appointment by target day"],
        ).groups()
        loop = _found(
            r"^(\S+) report sent for (\d+) of (\d+) seen(?:, (\d+) waiting)?$",
            cells["Loop closed"],
        ).groups()
        shown[urgency] = {
            "urgency": label,
            "first contact target (hours)": int(contact_hours),
            "appointment target (days)": int(appointment_days),
            "received": _number(cells["Received"]),
            "first contact on time": int(contact[1]),
            "first contact late": int(contact[2]),
            "first contact overdue now": int(contact[3] or 0),
            "first contact on time %": _number(contact[0]),
            "median hours to first contact": _number(cells["Median to first contact"]),
            "appointment by target day": int(booked[1]),
            "appointment after it": int(booked[2]),
            "appointment overdue now": int(booked[3] or 0),
            "appointment by target day %": _number(booked[0]),
            "median days to appointment": _number(cells["Median to appointment"]),
            "seen": int(loop[2]),
            "report sent to the referring office": int(loop[1]),
            "loop closed %": _number(loop[0]),
            "seen, report not sent yet": int(loop[3] or 0),
            "appointment day passed, never contacted": int(booked[4] or 0),
        }
    return shown


def _outbound_shown(page: str) -> dict[str, float | None]:
    """The "Patients we sent out" figures as the turnaround page shows them."""
    section = page.split('data-testid="outbound"')[1].split("</div>\n</div>")[0]
    boxes = [_page_text(box) for box in re.findall(r'class="fs-4"[^>]*>(.*?)</div>', section)]
    sent, seen, rate, missing = boxes
    back = _found(r"(\d+) of \d+ seen", section).group(1)
    return {
        "sent": _number(sent),
        "seen by the specialist": _number(seen),
        "consult report back": _number(back),
        "consult report back % (of those seen)": _number(rate),
        "seen, report still missing": _number(missing),
    }


def _turnaround_downloaded(table: list[list], number=None) -> dict[str, dict[str, object]]:
    """Each urgency's row of a downloaded turnaround table by the header's names; the CSV's
    text read as numbers, as a workbook holds them."""
    header, *rows = table
    downloaded = {}
    for row in rows:
        figures = dict(zip_longest(header, row))  # an empty last cell is not stored
        if number:
            figures = {
                name: value if name == "urgency" else (float(value) if value else None)
                for name, value in figures.items()
            }
        downloaded[str(figures["urgency"]).lower()] = figures
    return downloaded


def _received_ago(days: float, **fields) -> Referral:
    return ReferralFactory.create(received_at=timezone.now() - timedelta(days=days), **fields)


def test_the_turnaround_download_holds_every_figure_the_page_shows(client_for, manager):
    SlaTarget.objects.update_or_create(
        urgency="routine", defaults={"first_contact_hours": 72, "appointment_days": 30}
    )
    SlaTarget.objects.update_or_create(
        urgency="urgent", defaults={"first_contact_hours": 24, "appointment_days": 7}
    )
    # Routine: first contact 100 and 101 hours after (late; the page shows the median of
    # 100.5 h as "101 h"), one seen with its report sent, one seen with it still to send.
    for hours, days, status in ((100, 10, "report_sent"), (101, 40, "seen")):
        referral = _received_ago(60, direction="inbound", urgency="routine", status=status)
        referral.contacted_at = referral.received_at + timedelta(hours=hours)
        referral.appointment_at = referral.received_at + timedelta(days=days)
        referral.seen_at = referral.appointment_at
        referral.save()
    # Urgent: one contacted an hour and a half after, one overdue for its first contact.
    quick = _received_ago(20, direction="inbound", urgency="urgent", status="accepted")
    quick.contacted_at = quick.received_at + timedelta(hours=1.5)
    quick.save()
    _received_ago(20, direction="inbound", urgency="urgent", status="received")
    _received_ago(200, direction="inbound", urgency="stat")  # before the period
    # Sent out: four in the period, three seen, one consult report back (33.3 %).
    for report_back in (True, False, False):
        sent = _received_ago(10, direction="outbound", status="seen", in_network=True)
        sent.seen_at = sent.received_at + timedelta(days=2)
        sent.report_received_at = timezone.now() if report_back else None
        sent.save()
    _received_ago(10, direction="outbound", status="received", in_network=True)
    old = _received_ago(200, direction="outbound", status="seen", in_network=True)
    old.seen_at = old.received_at
    old.save()
    period = {
        "since": (timezone.localdate() - timedelta(days=90)).isoformat(),
        "until": timezone.localdate().isoformat(),
    }
    client = client_for(manager)
    url = reverse("referrals:turnaround")
    page = client.get(url, period).content.decode()
    shown = _turnaround_shown(page)
    assert list(shown) == ["routine", "urgent"]
    assert shown["routine"]["median hours to first contact"] == 101.0
    assert shown["routine"]["seen, report not sent yet"] == 1
    assert shown["urgent"]["median hours to first contact"] == 1.5
    assert shown["urgent"]["first contact overdue now"] == 1
    # Its appointment day (7 days on) has gone by too: counted against the appointments.
    assert shown["urgent"]["appointment day passed, never contacted"] == 1
    sent_out = _outbound_shown(page)
    assert list(sent_out.values()) == [4, 3, 1, 33.3, 2]

    csv_file, xlsx_file = _downloads(client, url, page)
    main, more = _csv_tables(csv_file)
    assert list(more) == ["Patients we sent out"]
    assert _turnaround_downloaded(main, number=float) == shown
    assert _csv_figures(more["Patients we sent out"]) == sent_out
    sheets = _xlsx_sheets(xlsx_file)
    assert list(sheets) == ["Turnaround", "Patients we sent out"]
    assert _turnaround_downloaded(sheets["Turnaround"]) == shown
    assert _figures(sheets["Patients we sent out"]) == sent_out


def test_a_period_with_only_patients_sent_out_downloads_them(client_for, manager):
    sent = _received_ago(10, direction="outbound", status="seen", in_network=True)
    sent.seen_at = sent.received_at + timedelta(days=2)
    sent.save()
    client = client_for(manager)
    url = reverse("referrals:turnaround")
    page = client.get(url).content.decode()
    assert "No inbound referrals were received in this period." in page
    sent_out = _outbound_shown(page)
    assert list(sent_out.values()) == [1, 1, 0, 0.0, 1]
    csv_file, xlsx_file = _downloads(client, url, page)
    main, more = _csv_tables(csv_file)
    assert len(main) == 1 and main[0][0] == "urgency"  # the header: no inbound referral
    assert _csv_figures(more["Patients we sent out"]) == sent_out
    sheets = _xlsx_sheets(xlsx_file)
    assert len(sheets["Turnaround"]) == 1
    assert _figures(sheets["Patients we sent out"]) == sent_out


def test_a_period_with_nothing_received_or_sent_offers_no_download(client_for, manager):
    page = client_for(manager).get(reverse("referrals:turnaround")).content.decode()
    assert 'data-testid="download-csv"' not in page


def _small_table(page: str, testid: str) -> list[list[object]]:
    """The rows of one of the who-refers page's small tables: a name and two counts."""
    table = page.split(f'data-testid="{testid}"')[1].split("</table>")[0]
    return [
        [html.unescape(_page_text(name)), int(partners), int(n)]
        for name, partners, n in re.findall(
            r"<tr><td>(.*?)</td><td[^>]*>(\d+)</td><td[^>]*>(\d+)</td></tr>", table
        )
    ]


def test_the_who_refers_download_holds_the_pages_totals_and_breakdowns(client_for, manager):
    maple = OrganizationFactory(name="=Maple Family")  # a formula, to defuse
    birch = OrganizationFactory(name="Birch Clinic")
    partners = [
        ProviderFactory(organization=maple, specialty="Family Medicine"),
        ProviderFactory(organization=maple, specialty="family medicine "),
        ProviderFactory(organization=birch, specialty="Pediatrics"),
        ProviderFactory(organization=birch, specialty=""),
        ProviderFactory(organization=None, specialty="Pediatrics"),
        ProviderFactory(organization=None, specialty="Cardiology"),
        ProviderFactory(organization=None, specialty="Cardiology"),
        ProviderFactory(organization=None, specialty="Cardiology"),
    ]
    # 18 in the 30 days shown: five partners send 3, three send 1, so 5 of the 8 send 80 %
    # (62.5 %, shown as 63 %); 7 in the 30 days before (+157.1 %); one long before.
    for partner, count in zip(partners, [3, 3, 3, 3, 3, 1, 1, 1], strict=True):
        for _ in range(count):
            _received_ago(5, provider=partner, direction="inbound")
    for _ in range(7):
        _received_ago(40, provider=partners[0], direction="inbound")
    _received_ago(100, provider=partners[7], direction="inbound")
    _received_ago(5, provider=partners[7], direction="outbound")  # we sent it: not counted
    period = {
        "since": (timezone.localdate() - timedelta(days=29)).isoformat(),
        "until": timezone.localdate().isoformat(),
    }
    client = client_for(manager)
    url = reverse("referrals:referrers")
    page = client.get(url, period).content.decode()

    def testid(name: str) -> float | None:
        return _number(_found(rf'data-testid="{name}">([^<]*)<', page).group(1))

    before, days = _found(r"([\d,]+) in the (\d+) days before", page).groups()
    shows = {
        "referrals received": testid("total"),
        f"referrals in the {days} days before": _number(before),
        "change against the period before %": testid("change"),
        "referring partners": testid("partners"),
        "partners who sent 80% of referrals": testid("pareto"),
        "those partners as % of those who referred": _number(
            _found(r"(\d+)% of those who referred", page).group(1)
        ),
    }
    assert list(shows.values()) == [18, 7, 157.1, 8, 5, 63]
    assert days == "30"
    by_specialty = _small_table(page, "by-specialty")
    by_office = _small_table(page, "by-office")
    assert by_specialty == [
        ["Family Medicine", 2, 6],
        ["Pediatrics", 2, 6],
        ["Not recorded", 1, 3],
        ["Cardiology", 3, 3],
    ]
    assert by_office == [
        ["=Maple Family", 2, 6],
        ["Birch Clinic", 2, 6],
        ["No office recorded", 4, 6],
    ]
    defused = [["'=Maple Family", 2, 6], *by_office[1:]]

    csv_file, xlsx_file = _downloads(client, url, page)
    main, more = _csv_tables(csv_file)
    assert len(main) == 1 + 8  # the ranking, as before
    assert list(more) == ["Totals", "By specialty", "By office"]
    assert _csv_figures(more["Totals"]) == shows
    assert more["By specialty"] == [
        ["specialty", "partners", "referrals"],
        *[[name, str(p), str(n)] for name, p, n in by_specialty],
    ]
    assert more["By office"] == [
        ["office", "partners", "referrals"],
        *[[name, str(p), str(n)] for name, p, n in defused],
    ]
    sheets = _xlsx_sheets(xlsx_file)
    assert list(sheets) == ["Who refers", "Totals", "By specialty", "By office"]
    assert len(sheets["Who refers"]) == 1 + 8
    assert _figures(sheets["Totals"]) == shows
    assert sheets["By specialty"] == [["specialty", "partners", "referrals"], *by_specialty]
    assert sheets["By office"] == [["office", "partners", "referrals"], *defused]


def test_who_refers_lists_every_specialty_in_the_download_where_the_page_lists_the_busiest(
    client_for, manager
):
    for number in range(17):
        _received_ago(5, provider=ProviderFactory(specialty=f"Specialty {number:02}"))
    client = client_for(manager)
    url = reverse("referrals:referrers")
    page = client.get(url).content.decode()
    assert len(_small_table(page, "by-specialty")) == 15
    assert "At most the 15 busiest of each." in page
    sheets = _xlsx_sheets(_downloads(client, url, page)[1])
    assert len(sheets["By specialty"]) == 1 + 17


def test_a_period_with_no_referral_since_a_busy_one_downloads_the_drop(client_for, manager):
    _received_ago(40, provider=ProviderFactory(), direction="inbound")
    client = client_for(manager)
    url = reverse("referrals:referrers")
    since = timezone.localdate() - timedelta(days=29)
    page = client.get(url, {"since": since.isoformat()}).content.decode()
    assert 'data-testid="change">-100.0%<' in page
    sheets = _xlsx_sheets(_downloads(client, url, page)[1])
    assert _figures(sheets["Totals"])["change against the period before %"] == -100.0
    assert _figures(sheets["Totals"])["referrals received"] == 0


def test_the_reciprocity_download_holds_the_totals_and_the_flow_the_page_follows(
    client_for, manager
):
    ann = ProviderFactory(first_name="Ann", last_name="Wiebe", credential="MD")
    bob = ProviderFactory()
    for _ in range(2):
        _received_ago(5, provider=ann, direction="inbound")
    _received_ago(40, provider=ann, direction="outbound")
    _received_ago(5, provider=bob, direction="inbound")
    _received_ago(150, provider=ann, direction="inbound")  # before the period
    # From the 10th of a month two or three months back: its first month only in part.
    since = (timezone.localdate().replace(day=1) - timedelta(days=60)).replace(day=10)
    period = {
        "since": since.isoformat(),
        "until": timezone.localdate().isoformat(),
        "provider": ann.pk,  # the page follows Ann over time
    }
    client = client_for(manager)
    url = reverse("referrals:reciprocity")
    page = client.get(url, period).content.decode()
    totals = {
        "received": _number(_found(r'data-testid="received">(\d+)<', page).group(1)),
        "sent": _number(_found(r'data-testid="sent">(\d+)<', page).group(1)),
    }
    assert totals == {"received": 3, "sent": 1}  # every partner's
    flow_table = page.split('data-testid="flow-table"')[1].split("</table>")[0]
    flow = [
        [label, part, int(received), int(sent), int(balance)]
        for label, part, received, sent, balance in re.findall(
            r'<th scope="row"[^>]*>([^<]*?)(?: <span[^>]*>\((.*?) only\)</span>)?</th>'
            r"<td[^>]*>(-?\d+)</td><td[^>]*>(-?\d+)</td><td[^>]*>(-?\d+)</td>",
            flow_table,
        )
    ]
    assert len(flow) >= 3 and flow[0][1].startswith(f"{since:%b} 10 to ")
    assert sum(row[2] for row in flow) == 2 and sum(row[3] for row in flow) == 1  # Ann's

    csv_file, xlsx_file = _downloads(client, url, page)
    main, more = _csv_tables(csv_file)
    assert [row[0] for row in main[1:]] == [ann.npi, bob.npi]  # every partner, as before
    assert list(more) == ["Totals", "Per month, Ann Wiebe, MD"]
    assert _csv_figures(more["Totals"]) == totals
    header = ["month", "days covered, if not all", "received", "sent", "balance (sent - received)"]
    assert more["Per month, Ann Wiebe, MD"] == [header, *[[str(c) for c in row] for row in flow]]
    sheets = _xlsx_sheets(xlsx_file)
    assert list(sheets) == ["Reciprocity", "Totals", "Per month, Ann Wiebe, MD"]
    assert _figures(sheets["Totals"]) == totals
    # An empty cell (a month covered whole) reads back as None from a workbook.
    assert sheets["Per month, Ann Wiebe, MD"] == [
        header,
        *[[label, part or None, *counts] for label, part, *counts in flow],
    ]


def test_reciprocity_and_who_refers_download_as_workbooks_too(client_for, manager):
    partner = ProviderFactory(last_name="Wiebe")
    ReferralFactory(provider=partner, direction="inbound")
    ReferralFactory(provider=partner, direction=Referral.Direction.OUTBOUND)
    client = client_for(manager)
    reciprocity = _xlsx(client.get(reverse("referrals:reciprocity"), {"format": "xlsx"}))
    assert reciprocity[1][0] == partner.npi and reciprocity[1][2:] == [1, 1, 0]
    referrers = _xlsx(client.get(reverse("referrals:referrers"), {"format": "xlsx"}))
    assert referrers[1][:2] == [1, partner.npi] and referrers[1][5:] == [1, 100.0, 100.0]


def test_a_share_on_a_half_is_rounded_in_the_download_as_on_the_page(client_for, manager):
    # 1 of 16 is 6.25 %, and 15 of 16 is 93.75 %: the page shows 6.3 % and 93.8 %.
    few, most = ProviderFactory(), ProviderFactory()
    ReferralFactory(provider=few, received_at=timezone.now() - timedelta(days=3))
    for _ in range(15):
        ReferralFactory(provider=most, received_at=timezone.now() - timedelta(days=3))
    client = client_for(manager)
    page = client.get(reverse("referrals:referrers")).content.decode()
    assert "6.3%" in page and "93.8%" in page
    referrers = _xlsx(client.get(reverse("referrals:referrers"), {"format": "xlsx"}))
    shares = {row[1]: row[6] for row in referrers[1:]}
    assert shares == {most.npi: 93.8, few.npi: 6.3}
    # The turnaround's shares too: 1 of 16 first contacted on time.
    SlaTarget.objects.update_or_create(
        urgency="routine", defaults={"first_contact_hours": 72, "appointment_days": 30}
    )
    for referral in Referral.objects.all():
        hours = 6 if referral.provider == few else 100
        referral.contacted_at = referral.received_at + timedelta(hours=hours)
        referral.status = "accepted"
        referral.save()
    page = client.get(reverse("referrals:turnaround")).content.decode()
    assert 'data-testid="contact-routine">6.3%<' in page
    turnaround = _xlsx(client.get(reverse("referrals:turnaround"), {"format": "xlsx"}))
    figures = dict(zip_longest(turnaround[0], turnaround[1]))
    assert figures["first contact on time %"] == 6.3


def test_a_workbook_holds_names_with_characters_excel_cannot(client_for, manager):
    # The office form keeps what was pasted, a vertical tab from a word processor included;
    # Excel's file format has no place for it.
    office = OrganizationFactory(name="Maple\x0bFamily Practice")
    partner = ProviderFactory(organization=office)
    ReferralFactory(provider=partner, received_at=timezone.now() - timedelta(days=3))
    client = client_for(manager)
    referrers = _xlsx(client.get(reverse("referrals:referrers"), {"format": "xlsx"}))
    assert referrers[1][:5] == [
        1,
        partner.npi,
        partner.display_name,
        partner.specialty,
        "MapleFamily Practice",
    ]
    # The CSV keeps the name as stored.
    rows = _csv(client.get(reverse("referrals:referrers"), {"format": "csv"}))
    assert rows[1][4] == "Maple\x0bFamily Practice"


@pytest.mark.parametrize("name", REPORTS)
def test_a_download_is_for_those_who_see_reports(client_for, liaison, coordinator, name):
    for user in (liaison, coordinator):
        assert client_for(user).get(reverse(name), {"format": "csv"}).status_code == 403


@pytest.mark.parametrize("name", REPORTS)
def test_a_bad_period_downloads_nothing_and_says_why(client_for, manager, name):
    response = client_for(manager).get(
        reverse(name), {"since": "2026-05-01", "until": "2026-01-01", "format": "xlsx"}
    )
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    assert 'data-testid="download-csv"' not in response.content.decode()
