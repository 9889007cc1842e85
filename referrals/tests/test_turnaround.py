"""The turnaround report: SLA targets met, waits, and loops closed, per urgency."""

from __future__ import annotations

import csv
import io
import re
from datetime import datetime, timedelta
from urllib.parse import parse_qsl, urlsplit

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from referrals.factories import ReferralFactory
from referrals.models import Referral, SlaTarget
from referrals.selectors import turnaround

pytestmark = pytest.mark.django_db

URL = reverse("referrals:turnaround")


def _inbound(days_ago: float, **fields):
    received = timezone.now() - timedelta(days=days_ago)
    return ReferralFactory(direction="inbound", received_at=received, **fields)


def _after(referral, **wait):
    return referral.received_at + timedelta(**wait)


@pytest.fixture
def routine_targets():
    # Routine: first contact within 72 hours, appointment within 30 days.
    SlaTarget.objects.update_or_create(
        urgency="routine", defaults={"first_contact_hours": 72, "appointment_days": 30}
    )


def _queue_rows(client, href: str) -> set[int]:
    """The referral numbers the work queue lists at a drill-down address."""
    query = dict(parse_qsl(urlsplit(href.replace("&amp;", "&")).query, keep_blank_values=True))
    page = client.get(reverse("referrals:list"), query).content.decode()
    return {int(pk) for pk in re.findall(r'data-queue-row="(\d+)"', page)}


def test_first_contact_and_appointment_are_measured_against_each_urgencys_target(
    client_for, manager, routine_targets
):
    # Three answered within 72 hours, one after; one still waiting past its deadline;
    # one received an hour ago, still within its window (neither on time nor late).
    on_time = []
    for hours in (1, 10, 70):
        referral = _inbound(20, status="accepted")
        referral.contacted_at = _after(referral, hours=hours)
        referral.save()
        on_time.append(referral)
    late = _inbound(20, status="accepted")
    late.contacted_at = _after(late, hours=100)
    late.save()
    overdue = _inbound(5, status="received")
    _inbound(1 / 24, status="received")
    client = client_for(manager)
    page = client.get(URL).content.decode()
    assert 'data-testid="received-routine">6<' in page
    assert 'data-testid="contact-routine">60.0%<' in page  # 3 of 3 + 1 + 1
    assert "3 on time, 1 late" in page
    # The median of 1, 10, 70 and 100 hours.
    assert "40.0 h" in page
    overdue_link = re.search(r'href="([^"]+)"[^>]*data-testid="contact-overdue-routine"', page)
    assert overdue_link is not None and ">1 overdue now<" in page
    # The drill-down lists exactly the overdue one, as the queue's SLA filter sees it.
    assert _queue_rows(client, overdue_link.group(1)) == {overdue.pk}


def test_appointments_count_by_their_target_day_and_the_loop_by_reports_sent(
    client_for, manager, routine_targets
):
    booked = _inbound(60, status="scheduled", contacted_at=None)
    booked.appointment_at = _after(booked, days=10)
    booked.save()
    late = _inbound(60, status="seen")
    late.appointment_at = _after(late, days=45)
    late.seen_at = late.appointment_at
    late.save()
    closed = _inbound(60, status="closed")
    closed.appointment_at = _after(closed, days=20)
    closed.seen_at = closed.appointment_at
    closed.save()
    reported = _inbound(60, status="report_sent")
    reported.appointment_at = _after(reported, days=28)
    reported.seen_at = reported.appointment_at
    reported.save()
    never_booked = _inbound(40, status="accepted")
    client = client_for(manager)
    page = client.get(URL).content.decode()
    # Booked by the target day: 10, 20, 28 days of 4 booked and 1 overdue unbooked.
    assert 'data-testid="booked-routine">60.0%<' in page
    assert "3 by it, 1 after it" in page
    assert "24.0 days" in page  # the median of 10, 20, 28 and 45
    # Seen: three; the report went back for two of them (report sent, closed).
    assert 'data-testid="loop-routine">66.7%<' in page
    assert "report sent for 2 of 3 seen" in page
    waiting = re.search(r'href="([^"]+)"[^>]*data-testid="report-waiting-routine"', page)
    assert _queue_rows(client, waiting.group(1)) == {late.pk}
    overdue = re.search(r'href="([^"]+)"[^>]*data-testid="appointment-overdue-routine"', page)
    assert _queue_rows(client, overdue.group(1)) == {never_booked.pk}


def test_a_missed_appointment_counts_once_in_the_appointment_share(
    client_for, manager, routine_targets
):
    # Booked for day 10 of its 30, on time; the patient did not come, and 40 days on it
    # waits to be booked again: overdue now in the queue, and still booked by its day.
    missed = _inbound(40, status="no_show")
    missed.appointment_at = _after(missed, days=10)
    missed.save()
    client = client_for(manager)
    page = client.get(URL).content.decode()
    assert "1 by it, 0 after it" in page
    overdue = re.search(r'href="([^"]+)"[^>]*data-testid="appointment-overdue-routine"', page)
    assert _queue_rows(client, overdue.group(1)) == {missed.pk}
    # One referral, booked by its target day: not one of two.
    assert 'data-testid="booked-routine">100.0%<' in page
    download = client.get(URL, {"format": "csv"})
    rows = b"".join(download.streaming_content).decode("utf-8-sig").splitlines()
    assert rows[1].split(",")[9:13] == ["1", "0", "1", "100.0"]


def test_a_referral_never_contacted_past_its_appointment_day_counts_against_the_share(
    client_for, manager, routine_targets
):
    # Booked for day 10 of its 30: by its target day.
    booked = _inbound(60, status="scheduled")
    booked.appointment_at = _after(booked, days=10)
    booked.save()
    # Received 40 days ago and never answered: its first contact is overdue (the queue's
    # state), and the day its appointment was due went by 10 days ago with none booked.
    forgotten = _inbound(40, status="received")
    client = client_for(manager)
    page = client.get(URL).content.decode()
    # One of the two patients due an appointment by now got one by its day: not all of them.
    assert 'data-testid="booked-routine">50.0%<' in page
    assert "1 by it, 0 after it" in page
    assert 'data-testid="unanswered-past-day-routine">1 never contacted<' in page
    download = client.get(URL, {"format": "csv"})
    rows = list(csv.reader(io.StringIO(b"".join(download.streaming_content).decode("utf-8-sig"))))
    assert rows[1][12] == "50.0"
    assert rows[0][-1] == "appointment day passed, never contacted" and rows[1][-1] == "1"
    overdue = re.search(r'href="([^"]+)"[^>]*data-testid="contact-overdue-routine"', page)
    assert _queue_rows(client, overdue.group(1)) == {forgotten.pk}


def test_an_appointment_on_its_target_day_counts_by_it_across_a_clock_change(
    client_for, manager, routine_targets
):
    # Received at 00:30 on Oct 15: 30 days on is Nov 14 on the calendar, though the
    # clocks went back an hour on Nov 1 in between.
    local = timezone.get_current_timezone()
    referral = ReferralFactory(
        direction="inbound",
        status="scheduled",
        received_at=timezone.make_aware(datetime(2026, 10, 15, 0, 30), local),
        contacted_at=timezone.make_aware(datetime(2026, 10, 15, 9, 0), local),
        appointment_at=timezone.make_aware(datetime(2026, 11, 14, 10, 0), local),
    )
    page = client_for(manager).get(URL, {"since": "2026-10-01", "until": "2026-10-31"})
    assert f'<tr data-urgency="{referral.urgency}">' in page.content.decode()
    assert "1 by it, 0 after it" in page.content.decode()


def test_each_urgency_has_its_row_and_outbound_reports_are_counted(client_for, manager):
    _inbound(3, urgency="stat")
    _inbound(3, urgency="urgent")
    _inbound(400)  # before the period shown (the last twelve months)
    sent = ReferralFactory(direction="outbound", status="seen", in_network=True)
    sent.seen_at = sent.received_at
    sent.report_received_at = timezone.now()
    sent.save()
    missing = ReferralFactory(direction="outbound", status="seen", in_network=True)
    missing.seen_at = missing.received_at
    missing.save()
    ReferralFactory(direction="outbound", status="received", in_network=True)
    page = client_for(manager).get(URL).content.decode()
    urgencies = re.findall(r'<tr data-urgency="(\w+)"', page)
    # In the order of urgency; the only routine one is older than the period.
    assert urgencies == ["urgent", "stat"]
    assert "(contact 2 h, appointment 1 d)" in page  # the stat targets, shown with the row
    assert 'data-testid="report-rate">50.0%<' in page
    assert 'data-testid="report-missing">1<' in page


def test_an_empty_period_says_so_and_a_bad_one_is_explained(client_for, manager):
    client = client_for(manager)
    empty = client.get(URL).content.decode()
    assert "No inbound referrals were received in this period." in empty
    backwards = client.get(URL, {"since": "2026-05-01", "until": "2026-01-01"})
    assert backwards.status_code == 200
    assert 'data-testid="turnaround"' not in backwards.content.decode()
    assert "alert" in backwards.content.decode()


def test_the_report_is_for_those_who_see_reports(client_for, manager, liaison, coordinator):
    assert client_for(liaison).get(URL).status_code == 403
    assert client_for(coordinator).get(URL).status_code == 403
    assert client_for(manager).get(URL).status_code == 200


def test_the_report_runs_the_same_queries_for_few_and_many_referrals(
    client_for, manager, django_assert_num_queries
):
    client = client_for(manager)
    _inbound(2)
    client.get(URL)
    with CaptureQueriesContext(connection) as few:
        client.get(URL)
    # Session, user, permissions, targets, the inbound and outbound counts (and on SQLite
    # the waits read for their medians).
    assert len(few.captured_queries) <= 8
    for days in range(30):
        _inbound(days + 1, urgency=["routine", "urgent", "stat"][days % 3])
    with django_assert_num_queries(len(few.captured_queries)):
        client.get(URL)


def test_each_referrals_sla_deadlines_and_state_are_worked_out_once_not_once_per_count():
    # The counts compare a referral's deadlines and SLA state (ReferralQuerySet.with_sla,
    # nested CASEs) a dozen ways; written into every count, Postgres worked them out again
    # for each one, and a year of a million referrals took two seconds.
    _inbound(3, status="received")
    now = timezone.now()
    with CaptureQueriesContext(connection) as queries:
        report = turnaround(start=now - timedelta(days=30), end=now)
    assert report["rows"][0]["received"] == 1
    (counted,) = [q["sql"] for q in queries.captured_queries if "GROUP BY" in q["sql"]]
    once = Referral.objects.with_sla(now=now).values(
        "contact_due_at", "appointment_due_day", "sla_state"
    )
    assert counted.count("CASE") == str(once.query).count("CASE")
    if connection.vendor == "postgresql":
        # Computed in a subquery Postgres must not merge into the counting one.
        assert "OFFSET 0)" in counted
