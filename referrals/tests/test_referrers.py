"""Who refers to us: the ranking of referring partners (80/20), growth, specialty, office."""

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

from partners.factories import OrganizationFactory, ProviderFactory
from referrals.factories import ReferralFactory

pytestmark = pytest.mark.django_db

URL = reverse("referrals:referrers")


def _sent(provider, count=1, *, days_ago=3, direction="inbound"):
    for _ in range(count):
        ReferralFactory(
            provider=provider,
            direction=direction,
            received_at=timezone.now() - timedelta(days=days_ago),
        )


def _ranked(page: str) -> list[int]:
    return [int(pk) for pk in re.findall(r'<tr data-partner="(\d+)"', page)]


def test_partners_are_ranked_with_the_few_who_send_most_of_the_referrals(client_for, manager):
    office = OrganizationFactory(name="Maple Family Practice")
    most = ProviderFactory(organization=office, specialty="Family Medicine")
    second = ProviderFactory(organization=office, specialty="Family Medicine")
    third = ProviderFactory(specialty="Pediatrics")
    fourth = ProviderFactory(specialty="")
    _sent(most, 5)
    _sent(second, 3)
    _sent(third)
    _sent(fourth)
    _sent(third, 4, direction="outbound")  # sent by us: not a referral to us
    _sent(third, 2, days_ago=400)  # the year before the one shown
    page = client_for(manager).get(URL).content.decode()
    assert _ranked(page) == [most.pk, second.pk, *sorted([third.pk, fourth.pk])]
    assert 'data-testid="total">10<' in page
    assert 'data-testid="partners">4<' in page
    # 80 % of 10 is 8: the top two sent it, half of those who referred.
    assert 'data-testid="pareto">2 partners<' in page
    assert "50% of those who referred" in page
    line = re.search(r'<tr data-partner="(\d+)" class="table-warning" data-pareto-line', page)
    assert line is not None and int(line.group(1)) == second.pk
    assert "80.0%" in page  # the running share at the second partner
    # 10 this year against 2 the year before.
    assert 'data-testid="change">+400.0%<' in page
    specialties = re.search(r'data-testid="by-specialty">(.*?)</table>', page, re.S).group(1)
    assert re.search(r"Family Medicine</td><td[^>]*>2</td><td[^>]*>8<", specialties)
    assert "Not recorded" in specialties
    offices = re.search(r'data-testid="by-office">(.*?)</table>', page, re.S).group(1)
    assert re.search(r"Maple Family Practice</a></td><td[^>]*>2</td><td[^>]*>8<", offices)


def test_a_specialty_typed_differently_is_counted_as_one(client_for, manager):
    for spelling, sent in (
        ("Family Medicine", 2),
        ("family medicine ", 3),
        ("Family  Medicine", 1),
        ("Family Medicine", 1),
        ("Pediatrics", 4),
    ):
        _sent(ProviderFactory(specialty=spelling), sent)
    page = client_for(manager).get(URL).content.decode()
    specialties = re.search(r'data-testid="by-specialty">(.*?)</table>', page, re.S).group(1)
    rows = re.findall(r"<tr><td>([^<]*)</td><td[^>]*>(\d+)</td><td[^>]*>(\d+)<", specialties)
    # Shown as most of its partners spell it; four partners, seven referrals.
    assert rows == [("Family Medicine", "4", "7"), ("Pediatrics", "1", "4")]


def test_page_two_carries_on_the_ranks_and_the_running_share(client_for, manager):
    partners = [ProviderFactory() for _ in range(27)]
    for partner in partners:
        _sent(partner)
    client = client_for(manager)
    second = client.get(URL, {"page": 2}).content.decode()
    assert _ranked(second) == [p.pk for p in partners[25:]]
    assert '<td class="q-number text-md-end">26</td>' in second
    # 26 of 27 referrals from the top down to the 26th partner.
    assert f"{26 / 27 * 100:.1f}%" in second


def test_the_csv_has_every_partner_in_rank_order_with_cells_defused(client_for, manager):
    hostile = ProviderFactory(first_name="=HYPERLINK(1)", specialty="@SUM(1)")
    other = ProviderFactory()
    _sent(hostile, 2)
    _sent(other)
    response = client_for(manager).get(URL, {"format": "csv"})
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    lines = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode("utf-8-sig"))))
    # The ranking first; the page's further tables follow it after a blank line.
    rows = lines[: lines.index([])]
    assert rows[0][:6] == ["rank", "npi", "partner", "specialty", "office", "referrals"]
    assert [row[0] for row in rows[1:]] == ["1", "2"]
    assert rows[1][1] == hostile.npi
    assert rows[1][2].startswith("'") and rows[1][3].startswith("'")
    assert rows[1][5:] == ["2", "66.7", "66.7"]
    assert rows[2][5:] == ["1", "33.3", "100.0"]
    by_specialty = lines[lines.index(["By specialty"]) + 2]
    assert by_specialty[0] == "'@SUM(1)"


def test_an_empty_period_and_a_bad_one(client_for, manager):
    client = client_for(manager)
    empty = client.get(URL).content.decode()
    assert "No inbound referrals were received in this period." in empty
    assert 'data-testid="change">\u2013<' in empty
    backwards = client.get(URL, {"since": "2026-05-01", "until": "2026-01-01"})
    assert backwards.status_code == 200
    assert 'data-testid="ranking"' not in backwards.content.decode()


def test_the_report_is_for_those_who_see_reports(client_for, manager, liaison, coordinator):
    assert client_for(liaison).get(URL).status_code == 403
    assert client_for(coordinator).get(URL).status_code == 403
    assert client_for(manager).get(URL).status_code == 200


def test_the_report_runs_the_same_queries_for_few_and_many_partners(
    client_for, manager, django_assert_num_queries
):
    client = client_for(manager)
    _sent(ProviderFactory(), 2)
    client.get(URL)
    with CaptureQueriesContext(connection) as few:
        client.get(URL)
    # Session, user, permissions; the ranking, the period before, the page's partners,
    # by specialty, by office.
    assert len(few.captured_queries) <= 8
    for _ in range(40):
        _sent(ProviderFactory(organization=OrganizationFactory()))
    with django_assert_num_queries(len(few.captured_queries)):
        client.get(URL)
