"""Conversion by source: referrals and every other inquiry source run the same funnel."""

import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from partners.factories import ProviderFactory
from referrals.factories import ReferralFactory
from referrals.models import Inquiry
from referrals.services.workflow import referral_log, referral_transition

pytestmark = pytest.mark.django_db


def _inbound():
    return referral_log(referral=ReferralFactory.build(provider=ProviderFactory()), actor=None)


def test_an_inbound_referral_is_an_inquiry_that_follows_it_through_the_funnel():
    referral = _inbound()
    inquiry = Inquiry.objects.get(referral=referral)
    assert (inquiry.source, inquiry.status) == ("partner_referral", "inquiry")
    referral = referral_transition(referral=referral, to_status="accepted", actor=None)
    referral = referral_transition(
        referral=referral,
        to_status="scheduled",
        actor=None,
        appointment_at=timezone.now() + timedelta(days=3),
    )
    inquiry.refresh_from_db()
    assert inquiry.status == "scheduled" and inquiry.scheduled_at is not None
    referral = referral_transition(
        referral=referral, to_status="seen", actor=None, at=timezone.now() + timedelta(days=3)
    )
    referral_transition(referral=referral, to_status="report_sent", actor=None)
    inquiry.refresh_from_db()
    assert inquiry.status == "seen_new_patient" and inquiry.seen_at is not None


def test_an_outbound_referral_is_not_a_new_patient_inquiry():
    referral_log(
        referral=ReferralFactory.build(
            provider=ProviderFactory(in_network=True), direction="outbound"
        ),
        actor=None,
    )
    assert not Inquiry.objects.exists()


def test_a_declined_referral_is_a_lost_inquiry():
    referral = _inbound()
    referral_transition(referral=referral, to_status="declined", actor=None, decline_reason="x")
    assert Inquiry.objects.get().status == "lost"


def test_closing_a_lost_referral_later_keeps_the_day_it_was_lost():
    referral = _inbound()
    declined_at = timezone.now() - timedelta(days=20)
    referral = referral_transition(
        referral=referral, to_status="declined", actor=None, decline_reason="x", at=declined_at
    )
    referral_transition(referral=referral, to_status="closed", actor=None)
    inquiry = Inquiry.objects.get()
    assert (inquiry.status, inquiry.lost_at, inquiry.missed_visit) == ("lost", declined_at, False)


def test_conversion_by_source_is_computed_from_the_data_with_denominators(client_for, manager):
    # Partner referrals: 2 of 4 seen.
    for n in range(4):
        referral = _inbound()
        if n < 2:
            referral = referral_transition(referral=referral, to_status="accepted", actor=None)
            referral = referral_transition(
                referral=referral,
                to_status="scheduled",
                actor=None,
                appointment_at=timezone.now(),
            )
            referral_transition(referral=referral, to_status="seen", actor=None)
    # Advertising: 1 of 5 seen, 1 scheduled, 1 lost.
    statuses = ["seen_new_patient", "scheduled", "lost", "inquiry", "inquiry"]
    for status in statuses:
        Inquiry.objects.create(source="advertising", status=status)
    Inquiry.objects.create(source="web", received_at=timezone.now() - timedelta(days=500))

    page = client_for(manager).get(reverse("referrals:conversion")).content.decode()
    assert 'data-testid="conversion-partner_referral">50.0% ' in page
    assert "(2 of 4)" in page
    assert 'data-testid="conversion-advertising">20.0% ' in page
    assert "(1 of 5)" in page
    # The web inquiry is outside the default twelve months: no denominator, no rate.
    assert 'data-testid="conversion-web">\u2013<' in page


def test_the_front_desk_logs_an_inquiry_and_moves_it_on(client_for, coordinator):
    client = client_for(coordinator)
    response = client.post(
        reverse("referrals:inquiry_create"),
        {"source": "web", "received_at": "2026-11-20T10:00", "status": "inquiry", "note": ""},
    )
    # Back to the inquiries, which a coordinator may open (the conversion report they may not).
    assert response.url == reverse("referrals:inquiries")
    inquiry = Inquiry.objects.get()
    assert (inquiry.source, inquiry.created_by) == ("web", coordinator)
    listed = client.get(response.url)
    assert listed.status_code == 200
    assert f'data-inquiry="{inquiry.pk}"' in listed.content.decode()
    client.post(
        reverse("referrals:inquiry_update", args=[inquiry.pk]),
        {"source": "web", "received_at": "2026-11-20T10:00", "status": "scheduled"},
    )
    inquiry.refresh_from_db()
    assert inquiry.status == "scheduled" and inquiry.scheduled_at is not None
    # Lost after it was booked: it still reached scheduling, and the report says so.
    client.post(
        reverse("referrals:inquiry_update", args=[inquiry.pk]),
        {"source": "web", "received_at": "2026-11-20T10:00", "status": "lost"},
    )
    day = timedelta(days=1)
    rows = Inquiry.objects.conversion_by_source(
        since=inquiry.received_at - day, until=inquiry.received_at + day
    )
    web = next(row for row in rows if row["source"] == "web")
    assert (web["inquiries"], web["scheduled"], web["lost"]) == (1, 1, 1)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"source": "partner_referral", "status": "inquiry"}, "not one of the available"),
        ({"source": "web", "status": "teleported"}, "not one of the available"),
        ({"source": "web", "status": "inquiry", "received_at": "noon"}, "Enter a valid date"),
        (
            {"source": "web", "status": "inquiry", "received_at": "2030-01-01T10:00"},
            "Received cannot be in the future",
        ),
    ],
)
def test_bad_inquiry_input_re_renders_with_the_reason(client_for, coordinator, data, message):
    data = {"received_at": "2026-11-20T10:00", **data}
    response = client_for(coordinator).post(reverse("referrals:inquiry_create"), data)
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not Inquiry.objects.exists()


def test_a_referral_inquiry_cannot_be_edited_apart_from_its_referral(client_for, manager):
    _inbound()
    inquiry = Inquiry.objects.get()
    response = client_for(manager).get(reverse("referrals:inquiry_update", args=[inquiry.pk]))
    assert response.status_code == 404


def test_a_liaison_may_not_log_inquiries(client_for, liaison):
    response = client_for(liaison).get(reverse("referrals:inquiry_create"))
    assert response.status_code == 403


def _lost(to_status, why, *, days_ago=1, direction="inbound"):
    referral = referral_log(
        referral=ReferralFactory.build(
            provider=ProviderFactory(in_network=True),
            direction=direction,
            received_at=timezone.now() - timedelta(days=days_ago),
        ),
        actor=None,
    )
    reason = "decline_reason" if to_status == "declined" else "cancel_reason"
    return referral_transition(referral=referral, to_status=to_status, actor=None, **{reason: why})


def test_the_report_says_why_partner_referrals_were_lost(client_for, manager):
    from referrals.models import Referral

    for _ in range(3):
        _lost("cancelled", "We could not reach the patient.")
    for _ in range(2):
        _lost("declined", "Not in network with the patient's plan.")
    _lost("declined", "We could not reach the patient.")  # same words, other outcome
    _lost("cancelled", "Patient moved away.", days_ago=800)  # outside the period
    _lost("cancelled", "Sent in error.", direction="outbound")  # not a lost inquiry
    _inbound()  # still open: not lost

    since, until = timezone.now() - timedelta(days=30), timezone.now() + timedelta(days=1)
    assert Referral.objects.lost_reasons(since=since, until=until) == [
        {"outcome": "Cancelled", "why": "We could not reach the patient.", "n": 3},
        {"outcome": "Declined", "why": "Not in network with the patient's plan.", "n": 2},
        {"outcome": "Declined", "why": "We could not reach the patient.", "n": 1},
    ]
    page = client_for(manager).get(reverse("referrals:conversion")).content.decode()
    table = page.split('data-testid="lost-reasons"')[1].split("</table>")[0]
    assert "<td>Cancelled</td><td>We could not reach the patient.</td>" in table
    assert "Not in network with the patient&#x27;s plan." in table
    assert "Patient moved away." not in table and "Sent in error." not in table


def test_the_inquiries_page_lists_the_open_front_desk_ones_or_all_of_them(
    client_for, coordinator, django_assert_num_queries
):
    _inbound()  # a partner referral's inquiry: it moves with its referral, not here
    open_ones = [Inquiry.objects.create(source="web", status=s) for s in ("inquiry", "scheduled")]
    closed = [Inquiry.objects.create(source="self", status=s) for s in ("seen_new_patient", "lost")]
    client = client_for(coordinator)
    client.get(reverse("referrals:inquiries"))  # warm the session and permissions
    # Session, user, permissions, count, the page (its people joined in): however many rows.
    with django_assert_num_queries(5):
        page = client.get(reverse("referrals:inquiries")).content.decode()
    listed = {int(pk) for pk in re.findall(r'data-inquiry="(\d+)"', page)}
    assert listed == {inquiry.pk for inquiry in open_ones}
    page = client.get(reverse("referrals:inquiries"), {"show": "all"}).content.decode()
    listed = {int(pk) for pk in re.findall(r'data-inquiry="(\d+)"', page)}
    assert listed == {inquiry.pk for inquiry in open_ones + closed}


def test_a_liaison_does_not_see_the_inquiries(client_for, liaison):
    assert client_for(liaison).get(reverse("referrals:inquiries")).status_code == 403


def test_a_referral_closed_after_a_no_show_is_a_lost_inquiry_and_says_why(client_for, manager):
    from referrals.models import Referral

    now = timezone.now()
    referral = referral_log(
        referral=ReferralFactory.build(
            provider=ProviderFactory(), received_at=now - timedelta(days=6)
        ),
        actor=None,
    )
    referral = referral_transition(referral=referral, to_status="accepted", actor=None)
    referral = referral_transition(
        referral=referral,
        to_status="scheduled",
        actor=None,
        appointment_at=now - timedelta(days=2),
    )
    referral = referral_transition(referral=referral, to_status="no_show", actor=None)
    inquiry = Inquiry.objects.get(referral=referral)
    assert inquiry.status == "scheduled"  # a no-show may still be booked again
    referral_transition(referral=referral, to_status="closed", actor=None)
    inquiry.refresh_from_db()
    assert inquiry.status == "lost" and inquiry.lost_at is not None
    # Still counted as having reached scheduling, and now as lost, not as in progress.
    row = next(
        r
        for r in Inquiry.objects.conversion_by_source(
            since=now - timedelta(days=30), until=now + timedelta(days=1)
        )
        if r["source"] == "partner_referral"
    )
    assert (row["inquiries"], row["scheduled"], row["seen"], row["lost"]) == (1, 1, 0, 1)
    assert Referral.objects.lost_reasons(
        since=now - timedelta(days=30), until=now + timedelta(days=1)
    ) == [{"outcome": "No-show", "why": "Closed after the patient did not come", "n": 1}]
    page = client_for(manager).get(reverse("referrals:conversion")).content.decode()
    assert "Closed after the patient did not come" in page


def test_a_referral_closed_after_the_visit_stays_a_new_patient_seen():
    referral = _inbound()
    referral = referral_transition(referral=referral, to_status="accepted", actor=None)
    referral = referral_transition(
        referral=referral,
        to_status="scheduled",
        actor=None,
        appointment_at=timezone.now() + timedelta(days=1),
    )
    referral = referral_transition(
        referral=referral, to_status="seen", actor=None, at=timezone.now() + timedelta(days=1)
    )
    referral = referral_transition(referral=referral, to_status="report_sent", actor=None)
    referral_transition(referral=referral, to_status="closed", actor=None)
    assert Inquiry.objects.get(referral=referral).status == "seen_new_patient"


def test_inquiries_of_referrals_closed_before_the_fix_are_marked_lost():
    import importlib

    from django.apps import apps

    migration = importlib.import_module("referrals.migrations.0012_closed_referral_inquiries_lost")
    closed, seen_then_closed, still_open = _inbound(), _inbound(), _inbound()
    closed_at = timezone.now() - timedelta(days=3)
    type(closed).objects.filter(pk__in=[closed.pk, seen_then_closed.pk]).update(
        status="closed", closed_at=closed_at
    )
    Inquiry.objects.filter(referral=closed).update(status="scheduled")
    Inquiry.objects.filter(referral=seen_then_closed).update(status="seen_new_patient")
    migration.mark_lost(apps, None)
    statuses = dict(Inquiry.objects.values_list("referral_id", "status"))
    assert statuses == {
        closed.pk: "lost",
        seen_then_closed.pk: "seen_new_patient",
        still_open.pk: "inquiry",
    }
    assert Inquiry.objects.get(referral=closed).lost_at == closed_at


def test_inquiries_lost_after_a_no_show_before_the_flag_are_marked_so():
    import importlib

    from django.apps import apps

    from referrals.models import ReferralEvent

    migration = importlib.import_module("referrals.migrations.0014_inquiry_missed_visit")
    no_show, declined = _inbound(), _inbound()
    type(no_show).objects.filter(pk__in=[no_show.pk, declined.pk]).update(status="closed")
    Inquiry.objects.update(status="lost")
    ReferralEvent.objects.create(
        referral=no_show, from_status="scheduled", to_status="no_show", at=timezone.now()
    )
    migration.mark_missed_visits(apps, None)
    assert dict(Inquiry.objects.values_list("referral_id", "missed_visit")) == {
        no_show.pk: True,
        declined.pk: False,
    }


def test_an_inquiry_moved_back_to_inquiry_is_no_longer_counted_as_scheduled(
    client_for, coordinator
):
    """Marked scheduled by mistake and put back: the report must not go on counting a
    booking that was never made (only one lost after it was booked still counts)."""
    client = client_for(coordinator)
    data = {"source": "advertising", "received_at": "2026-11-20T10:00"}
    client.post(reverse("referrals:inquiry_create"), {**data, "status": "inquiry"})
    inquiry = Inquiry.objects.get()
    for status in ("scheduled", "inquiry"):
        client.post(
            reverse("referrals:inquiry_update", args=[inquiry.pk]), {**data, "status": status}
        )
    inquiry.refresh_from_db()
    assert inquiry.status == "inquiry"
    day = timedelta(days=1)
    rows = Inquiry.objects.conversion_by_source(
        since=inquiry.received_at - day, until=inquiry.received_at + day
    )
    advertising = next(row for row in rows if row["source"] == "advertising")
    assert (advertising["inquiries"], advertising["scheduled"]) == (1, 0)
    assert advertising["scheduled_rate"] == 0
