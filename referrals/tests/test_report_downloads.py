"""Every manager's report downloads as CSV and as an Excel workbook holding the figures the
page shows, its free text defused, for those who may see reports only."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from itertools import zip_longest

import pytest
from django.urls import reverse
from django.utils import timezone
from openpyxl import load_workbook

from partners.factories import OrganizationFactory, ProviderFactory
from referrals.factories import ReferralFactory
from referrals.models import Inquiry, Referral, SlaTarget
from referrals.services.workflow import referral_log

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
    body = b"".join(response.streaming_content).decode()
    return list(csv.reader(io.StringIO(body)))


def _xlsx(response) -> list[list[object]]:
    assert response.status_code == 200
    assert response["Content-Type"].endswith("spreadsheetml.sheet")
    assert response["Content-Disposition"].endswith('.xlsx"')
    sheet = load_workbook(io.BytesIO(response.content), read_only=True).active
    return [list(row) for row in sheet.iter_rows(values_only=True)]


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
    rows = _csv(client.get(reverse("referrals:leakage"), {"format": "csv"}))
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


def test_conversion_downloads_each_source_with_its_denominator(client_for, manager):
    Inquiry.objects.create(source=Inquiry.Source.WEB, status=Inquiry.Status.SCHEDULED)
    Inquiry.objects.create(source=Inquiry.Source.WEB)
    rows = _csv(client_for(manager).get(reverse("referrals:conversion"), {"format": "csv"}))
    assert rows[0][:5] == ["source", "inquiries", "scheduled", "seen as new patient", "lost"]
    web = next(row for row in rows[1:] if row[1] == "2")
    assert web[2:] == ["1", "0", "0", "50.0", "0.0"]


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
