"""Outreach and referrals: each owner's activity beside their partners' referrals."""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from openpyxl import load_workbook

from core.factories import UserFactory
from core.roles import Role
from outreach.factories import ActivityFactory
from outreach.reports import outreach_lift
from partners.factories import OrganizationFactory, ProviderFactory
from referrals.factories import ReferralFactory

pytestmark = pytest.mark.django_db

URL = reverse("outreach:lift")


def _referrals(provider, *, now=0, before=0):
    for _ in range(now):
        ReferralFactory(provider=provider, received_at=timezone.now() - timedelta(days=10))
    for _ in range(before):
        ReferralFactory(provider=provider, received_at=timezone.now() - timedelta(days=400))


def _row(page: str, owner: str) -> str:
    found = re.search(rf'<tr data-owner="{owner}"[^>]*>(.*?)</tr>', page, re.S)
    assert found is not None, owner
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", found.group(1))).strip()


@pytest.fixture
def network(liaison, other_liaison):
    named = ProviderFactory(owner=liaison)
    office = OrganizationFactory()
    at_office = ProviderFactory(owner=liaison, organization=office)
    untouched = ProviderFactory(owner=liaison)
    ProviderFactory(owner=other_liaison)
    nobodys = ProviderFactory(owner=None)
    visit = ActivityFactory(logged_by=liaison, occurred_at=timezone.now() - timedelta(days=5))
    visit.providers.add(named)
    ActivityFactory(
        logged_by=liaison, organization=office, occurred_at=timezone.now() - timedelta(days=3)
    )
    # Last year's visit to the untouched partner reaches nobody in this period.
    old = ActivityFactory(logged_by=liaison, occurred_at=timezone.now() - timedelta(days=500))
    old.providers.add(untouched)
    _referrals(named, now=3, before=1)
    _referrals(at_office, now=2, before=2)
    _referrals(untouched, now=2, before=4)
    _referrals(nobodys, now=1)
    return {"liaison": liaison, "other": other_liaison}


def test_each_owner_has_their_activities_reach_and_referrals_by_reach(client_for, manager, network):
    page = client_for(manager).get(URL).content.decode()
    liaison = _row(page, network["liaison"].pk)
    # Two of three partners reached (one named, one at the office visited); two
    # activities this period; 7 referrals before and 7 now (0 %).
    assert liaison.split(" 2 of 3 ")[1].startswith("2 7 (0%)")
    # From those reached: 3 → 5; from the other: 4 → 2.
    assert "3 → 5 (+67%)" in liaison and "4 → 2 (-50%)" in liaison
    assert liaison.endswith("\u2013")  # too few referrals to compare growth rates
    other = _row(page, network["other"].pk)
    assert "0 of 1" in other and "no referrals before" in other
    assert "0 → 1" in _row(page, "none")
    everyone = _row(page, "everyone")
    assert everyone.startswith("Everyone 2 of 5 2 ")


def test_lift_is_the_difference_in_growth_once_both_groups_are_big_enough(
    client_for, manager, network, monkeypatch
):
    monkeypatch.setattr("outreach.reports.LIFT_BASE", 1)
    page = client_for(manager).get(URL).content.decode()
    # +66.7 % against -50 %.
    assert _row(page, network["liaison"].pk).endswith("+117 points")


def test_the_report_is_for_those_who_see_reports(client_for, manager, liaison, coordinator):
    assert client_for(liaison).get(URL).status_code == 403
    assert client_for(coordinator).get(URL).status_code == 403
    assert client_for(manager).get(URL).status_code == 200
    backwards = client_for(manager).get(URL, {"since": "2026-05-01", "until": "2026-01-01"})
    assert backwards.status_code == 200 and 'data-testid="lift"' not in backwards.content.decode()


def test_the_report_runs_the_same_queries_for_few_and_many_liaisons(
    client_for, manager, network, django_assert_num_queries
):
    client = client_for(manager)
    client.get(URL)
    with CaptureQueriesContext(connection) as few:
        client.get(URL)
    # Session, user, permissions; partners, activities, referrals, the owners.
    assert len(few.captured_queries) <= 7
    for _ in range(10):
        someone = UserFactory(role=Role.LIAISON)
        partner = ProviderFactory(owner=someone)
        ActivityFactory(logged_by=someone).providers.add(partner)
        _referrals(partner, now=1, before=1)
    with django_assert_num_queries(len(few.captured_queries)):
        client.get(URL)


def test_the_report_downloads_with_the_figures_the_page_shows(client_for, manager, network):
    response = client_for(manager).get(URL, {"format": "csv"})
    assert response["Content-Disposition"].startswith('attachment; filename="outreach-and-')
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode("utf-8-sig"))))
    assert rows[0][:4] == ["owner", "partners", "partners reached", "activities"]
    by_owner = {row[0]: row[1:] for row in rows[1:]}
    liaison = network["liaison"]
    # 3 partners, 2 reached, 2 activities; 7 → 7; reached 3 → 5; others 4 → 2; no lift.
    assert by_owner[liaison.get_full_name() or liaison.username] == [
        "3", "2", "2", "7", "7", "3", "5", "4", "2", "", "0.0", "67.0", "-50.0"
    ]  # fmt: skip
    assert by_owner["Partners with no owner"][3:5] == ["0", "1"]  # before → now
    assert by_owner["Everyone"][:3] == ["5", "2", "2"]


def test_the_download_rounds_the_lift_and_each_change_as_the_page_does(
    client_for, manager, network, monkeypatch
):
    monkeypatch.setattr("outreach.reports.LIFT_BASE", 1)
    client = client_for(manager)
    page = client.get(URL).content.decode()
    shown = _row(page, network["liaison"].pk)
    # Referrals 7 → 7, from partners reached 3 → 5 (+66.7 %), the others 4 → 2 (-50 %).
    changes = [float(change) for change in re.findall(r"\(([-+]?\d+)%\)", shown)]
    assert changes == [0, 67, -50]
    lift = re.search(r"([-+]\d+) points", shown)
    assert lift is not None and lift.group(1) == "+117"
    response = client.get(URL, {"format": "xlsx"})
    sheet = load_workbook(io.BytesIO(response.content), read_only=True).active
    header, *rows = [list(row) for row in sheet.iter_rows(values_only=True)]
    liaison = network["liaison"]
    figures = next(
        dict(zip(header, row, strict=True))
        for row in rows
        if row[0] == (liaison.get_full_name() or liaison.username)
    )
    assert figures["lift (percentage points)"] == 117
    assert [
        figures["referrals, change %"],
        figures["from partners reached, change %"],
        figures["from the others, change %"],
    ] == changes


def test_reach_is_worked_out_once_per_partner_not_once_per_referral(network):
    # Two periods of a million referrals are half a million rows; joining each to its
    # partner and asking whether outreach reached that partner took a second. The
    # referrals are counted by partner alone; reach is asked of each partner once.
    now = timezone.now()
    with CaptureQueriesContext(connection) as queries:
        report = outreach_lift(start=now - timedelta(days=365), end=now)
    reached = report["total"]["reached"]
    assert (reached["before"], reached["now"]) == (3, 5)
    (counted,) = [
        q["sql"] for q in queries.captured_queries if 'FROM "referrals_referral"' in q["sql"]
    ]
    assert "JOIN" not in counted and "outreach_activity" not in counted
