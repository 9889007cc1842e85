"""The leakage and reciprocity reports."""

import csv
import io
import re
from datetime import date, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from partners.factories import ProviderFactory
from partners.models import Provider
from referrals.factories import ReferralFactory
from referrals.services.workflow import referral_log

pytestmark = pytest.mark.django_db


def _referral(provider, *, direction="inbound", days_ago=1, reason=None):
    if reason is None:
        outside = direction == "outbound" and not provider.in_network
        reason = "Patient preference" if outside else ""
    return referral_log(
        referral=ReferralFactory.build(
            provider=provider,
            direction=direction,
            received_at=timezone.now() - timedelta(days=days_ago),
            out_of_network_reason=reason,
        ),
        actor=None,
    )


def test_leakage_is_the_share_sent_out_of_network_with_its_denominator(client_for, manager):
    inside = ProviderFactory(in_network=True)
    outside = ProviderFactory(
        in_network=False, first_name="Angel", last_name="Faraway", credential="DO"
    )
    for _ in range(3):
        _referral(inside, direction="outbound")
    _referral(outside, direction="outbound", reason="Patient asked for him")
    _referral(outside, direction="outbound", reason="Patient asked for him", days_ago=800)
    _referral(outside)  # inbound: not an outbound referral at all
    page = client_for(manager).get(reverse("referrals:leakage")).content.decode()
    assert 'data-testid="leakage">25.0%<' in page
    assert "1 of 4" in page
    assert ">Angel Faraway, DO</a>" in page  # named as everywhere else, credential included
    assert "Angel Faraway</a>" not in page
    assert f'provider={outside.pk}">1</a>' in page  # the old and the inbound one not counted
    assert "Patient asked for him" in page
    assert "network=false" in page  # the drill-down to the rows


def test_referrals_sent_before_the_network_was_recorded_count_in_neither_share(client_for, manager):
    from referrals.models import Referral

    inside = ProviderFactory(in_network=True)
    outside = ProviderFactory(in_network=False)
    _referral(inside, direction="outbound")
    _referral(outside, direction="outbound")
    legacy = [_referral(inside, direction="outbound") for _ in range(3)]
    Referral.objects.filter(pk__in=[r.pk for r in legacy]).update(in_network=None)
    page = client_for(manager).get(reverse("referrals:leakage")).content.decode()
    assert 'data-testid="leakage">50.0%<' in page
    assert "1 of 2" in page
    assert "3 of the 5 were sent before the network was recorded" in page


def test_a_report_left_without_dates_shows_the_period_it_covers(client_for, manager):
    today = timezone.localdate()
    page = client_for(manager).get(reverse("referrals:conversion")).content.decode()
    assert f'value="{(today - timedelta(days=365)).isoformat()}"' in page
    assert f'value="{today.isoformat()}"' in page


def test_the_leakage_drill_down_lists_exactly_the_leaked_referrals(client_for, manager):
    leaked = _referral(ProviderFactory(in_network=False), direction="outbound", reason="x")
    kept = _referral(ProviderFactory(in_network=True), direction="outbound")
    page = (
        client_for(manager)
        .get(reverse("referrals:list"), {"direction": "outbound", "network": "false", "open": ""})
        .content.decode()
    )
    assert leaked.get_absolute_url() in page
    assert kept.get_absolute_url() not in page


def test_reciprocity_counts_each_partner_both_ways_in_the_period():
    both = ProviderFactory()
    for _ in range(3):
        _referral(both)
    _referral(both, direction="outbound")
    _referral(both, days_ago=400)  # outside the period
    only_in = ProviderFactory()
    _referral(only_in)
    ProviderFactory()  # no referrals: not listed
    since = timezone.now() - timedelta(days=365)
    rows = {
        p.pk: (p.received, p.sent, p.balance)
        for p in Provider.objects.with_reciprocity(since=since)
    }
    assert rows == {both.pk: (3, 1, -2), only_in.pk: (1, 0, -1)}


def test_the_reciprocity_page_and_its_csv_show_the_same_figures(client_for, manager):
    partner = ProviderFactory(first_name="Ann", last_name="Wiebe", credential="MD")
    _referral(partner)
    _referral(partner, direction="outbound")
    _referral(partner, direction="outbound")
    client = client_for(manager)
    page = client.get(reverse("referrals:reciprocity")).content.decode()
    assert "Ann Wiebe, MD" in page
    assert 'data-testid="received">1<' in page and 'data-testid="sent">2<' in page
    response = client.get(reverse("referrals:reciprocity"), {"format": "csv"})
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode("utf-8-sig"))))
    assert rows[0][:4] == ["npi", "partner", "received", "sent"]
    assert rows[1] == [partner.npi, "Ann Wiebe, MD", "1", "2", "1"]


def test_the_reciprocity_totals_are_every_partners_in_the_period(client_for, manager):
    ann, bob = ProviderFactory(), ProviderFactory()
    _referral(ann)
    _referral(ann, direction="outbound")
    _referral(bob)
    _referral(bob, days_ago=400)  # before the year shown
    client = client_for(manager)
    page = client.get(reverse("referrals:reciprocity")).content.decode()
    assert 'data-testid="received">2<' in page and 'data-testid="sent">1<' in page
    # The chart for one partner keeps the overall totals above it.
    one = client.get(reverse("referrals:reciprocity"), {"provider": ann.pk}).content.decode()
    assert 'data-testid="received">2<' in one and 'data-testid="sent">1<' in one


def test_each_reciprocity_figure_links_to_exactly_its_referrals(client_for, manager):
    partner, other = ProviderFactory(), ProviderFactory()
    received = [_referral(partner), _referral(partner, days_ago=200)]
    sent = [_referral(partner, direction="outbound")]
    _referral(partner, days_ago=400)  # before the period
    _referral(other)
    client = client_for(manager)
    page = client.get(reverse("referrals:reciprocity")).content.decode()
    row = page.split(f'href="{partner.get_absolute_url()}"')[1].split("</tr>")[0]
    links = dict(
        (kind, href.replace("&amp;", "&"))
        for href, kind in re.findall(r'<a href="([^"]+)" data-drill="(\w+)">', row)
    )
    for kind, expected in (("received", received), ("sent", sent)):
        queue = client.get(links[kind]).content.decode()
        shown = {int(pk) for pk in re.findall(r'data-queue-row="(\d+)"', queue)}
        assert shown == {referral.pk for referral in expected}


def test_a_bad_period_is_explained_not_crashed_on(client_for, manager):
    client = client_for(manager)
    backwards = client.get(
        reverse("referrals:reciprocity"), {"since": "2026-05-01", "until": "2026-01-01"}
    )
    assert backwards.status_code == 200
    assert "must start before it ends" in backwards.content.decode()
    garbage = client.get(reverse("referrals:leakage"), {"since": "soon"})
    assert garbage.status_code == 200
    assert "Enter a valid date" in garbage.content.decode()
    # An end alone covers the twelve months before it, not a period from last year to then.
    ended = client.get(reverse("referrals:reciprocity"), {"until": "2025-01-01"})
    assert "must start before it ends" not in ended.content.decode()
    assert ended.context["period"].cleaned_data["since"] == date(2024, 1, 2)


def test_reports_are_for_managers_not_coordinators_or_liaisons(
    client_for, coordinator, liaison, manager
):
    for user in (coordinator, liaison):
        assert client_for(user).get(reverse("referrals:reciprocity")).status_code == 403
        assert client_for(user).get(reverse("referrals:leakage")).status_code == 403
    assert client_for(manager).get(reverse("referrals:leakage")).status_code == 200


def test_the_leakage_report_runs_the_same_queries_for_few_and_many_specialists(
    client_for, manager, django_assert_num_queries
):
    client = client_for(manager)
    url = reverse("referrals:leakage")
    for _ in range(2):
        _referral(ProviderFactory(in_network=False), direction="outbound", reason="Asked")
    client.get(url)
    # The totals, the reasons, the specialists' count, their page and their names.
    with django_assert_num_queries(8) as few:
        client.get(url)
    busiest = ProviderFactory(in_network=False, last_name="Busiest")
    for _ in range(3):
        _referral(busiest, direction="outbound", reason="Asked")
    for _ in range(30):
        _referral(ProviderFactory(in_network=False), direction="outbound", reason="Asked")
    with django_assert_num_queries(len(few.captured_queries)):
        page = client.get(url).content.decode()
    # The most-sent-to specialist first, with their count.
    rows = re.findall(r'provider=(\d+)">(\d+)</a>', page)
    assert rows[0] == (str(busiest.pk), "3")
    assert len(rows) == 25  # a page of them


def test_the_reciprocity_report_runs_the_same_queries_for_few_and_many_partners(
    client_for, manager, django_assert_num_queries
):
    client = client_for(manager)
    url = reverse("referrals:reciprocity")
    for _ in range(2):
        _referral(ProviderFactory())
    client.get(url)
    # One of them is the grouped per-month count behind the chart, which gives the totals.
    with django_assert_num_queries(6) as few:
        client.get(url)
    for _ in range(30):
        _referral(ProviderFactory(), direction="outbound")
    with django_assert_num_queries(len(few.captured_queries)):
        client.get(url)


def test_a_period_at_the_end_of_the_calendar_is_refused_politely(client_for, manager):
    response = client_for(manager).get(
        reverse("referrals:conversion"), {"since": "2026-01-01", "until": "9999-12-31"}
    )
    assert response.status_code == 200
    assert "Choose a date between 1900 and 2200." in response.content.decode()


@pytest.mark.parametrize(
    "report", ["referrals:conversion", "referrals:reciprocity", "referrals:leakage"]
)
def test_a_to_date_alone_at_the_start_of_the_calendar_is_refused_by_its_box(
    client_for, manager, report
):
    from referrals.forms import PeriodForm

    client = client_for(manager)
    response = client.get(reverse(report), {"until": "0001-06-01"})
    assert response.status_code == 200
    assert "Choose a date between 1900 and 2200." in response.content.decode()
    form = PeriodForm({"until": "1900-03-01"})
    assert not form.is_valid()
    assert list(form.errors) == ["until"]
    assert "give a From date too" in form.errors["until"][0]
    assert client.get(reverse(report), {"until": "1900-03-01"}).status_code == 200
    assert PeriodForm({"since": "1899-12-31", "until": "1900-03-01"}).errors == {
        "since": ["Choose a date between 1900 and 2200."]
    }


def test_leakage_leaves_out_patients_who_did_not_go(client_for, manager):
    """A specialist who declined, or a referral cancelled, sent nobody out of the network:
    the share, the specialist's count, the reasons and the rows behind them agree."""
    from referrals.models import Referral, Status

    inside = ProviderFactory(in_network=True)
    outside = ProviderFactory(in_network=False)
    gone = _referral(outside, direction="outbound", reason="Closer to home")
    declined = _referral(outside, direction="outbound", reason="Declined one")
    cancelled = _referral(outside, direction="outbound", reason="Cancelled one")
    _referral(inside, direction="outbound")
    Referral.objects.filter(pk=declined.pk).update(
        status=Status.CLOSED, decline_reason="Not taking new patients"
    )
    Referral.objects.filter(pk=cancelled.pk).update(
        status=Status.CANCELLED, cancel_reason="Patient moved away"
    )
    client = client_for(manager)
    page = client.get(reverse("referrals:leakage")).content.decode()
    assert 'data-testid="leakage">50.0%<' in page
    assert "1 of 2" in page
    assert "2 of the 4 were declined by the specialist or cancelled" in page
    assert f'provider={outside.pk}">1</a>' in page
    assert "Closer to home" in page
    assert "Declined one" not in page
    assert "Cancelled one" not in page
    drill = re.search(r'href="([^"]+)" data-testid="leaked"', page).group(1)
    rows = client.get(drill.replace("&amp;", "&")).content.decode()
    assert gone.get_absolute_url() in rows
    assert declined.get_absolute_url() not in rows
    assert cancelled.get_absolute_url() not in rows


def test_the_reciprocity_pages_count_the_partners_of_the_period_from_their_referrals_alone(
    client_for, manager
):
    # Counted through the page's own join to the partners, the count read a year of a
    # million referrals a second time (0.45 s). The partners listed are those with a
    # referral of the period: counted from the referrals alone, the same number.
    for _ in range(26):
        _referral(ProviderFactory())
    both_ways = ProviderFactory()
    _referral(both_ways)
    _referral(both_ways, direction="outbound")
    _referral(ProviderFactory(), days_ago=400)  # before the period
    copied = ProviderFactory()
    original = _referral(both_ways)
    ReferralFactory(provider=copied, duplicate_of=original)  # a copy is no referral
    client = client_for(manager)
    with CaptureQueriesContext(connection) as queries:
        response = client.get(reverse("referrals:reciprocity"), {"page": 2})
    assert response.context["page"].paginator.count == 27
    assert len(response.context["page"]) == 2
    (counted,) = [q["sql"] for q in queries.captured_queries if "COUNT(*)" in q["sql"]]
    assert "JOIN" not in counted
