import io
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from outreach.models import ComplianceLimit, Event, PlannedVisit

pytestmark = pytest.mark.django_db


def test_the_demo_data_gives_the_liaison_a_day_plan_a_limit_and_an_event():
    call_command("seed_demo", referrals=20, stdout=io.StringIO())
    today = timezone.localdate()
    visits = PlannedVisit.objects.filter(liaison__username="liaison", planned_on=today)
    assert visits.count() == 4
    assert ComplianceLimit.objects.filter(year=today.year).exists()
    assert Event.objects.get().invitations.exists()


def test_the_demo_data_tells_the_reports_a_consistent_story():
    """Conversion counts every inbound referral and the other sources, leakage knows the
    network of every outbound referral, and only referrals still waiting for an answer can
    be late for first contact (as the live workflow keeps them)."""
    from referrals.models import Inquiry, Referral, SlaState, Status

    call_command("seed_demo", referrals=120, stdout=io.StringIO())
    inbound = Referral.objects.filter(direction="inbound")
    assert Inquiry.objects.filter(source="partner_referral").count() == inbound.count()
    assert Inquiry.objects.filter(referral__isnull=True).values("source").distinct().count() == 5
    lost = Inquiry.objects.filter(source="partner_referral", status=Inquiry.Status.LOST)
    assert lost.count() == inbound.filter(status__in=["declined", "cancelled"]).count() + (
        inbound.filter(status="closed", events__to_status__in=["declined", "cancelled"]).count()
    )
    assert not Referral.objects.filter(direction="outbound", in_network__isnull=True).exists()
    assert not Referral.objects.exclude(status=Status.RECEIVED).filter(contacted_at=None).exists()
    late = Referral.objects.with_sla().filter(sla_state=SlaState.CONTACT_OVERDUE)
    assert set(late.values_list("status", flat=True)) <= {Status.RECEIVED}
    # A referral sent out has its report back once it reached that step; a late one has
    # its reminder to chase it.
    assert not Referral.objects.filter(
        direction="outbound", status="report_sent", report_received_at=None
    ).exists()
    from outreach.models import Task

    late = Referral.objects.awaiting_consult_report(seen_before=timezone.now() - timedelta(days=21))
    assert late.exists()
    assert set(late.values_list("pk", flat=True)) == set(
        Task.objects.filter(kind="consult_report").values_list("referral_id", flat=True)
    )
    # Seen on the day of the appointment or later, never before it.
    seen = Referral.objects.filter(seen_at__isnull=False, appointment_at__isnull=False)
    assert seen.exists()
    assert all(timezone.localdate(r.seen_at) >= timezone.localdate(r.appointment_at) for r in seen)


def test_the_demo_partners_statuses_agree_with_their_referrals():
    """A prospect has sent or received nothing; a dormant partner nothing for half a year;
    active partners carry the volume."""
    from datetime import timedelta

    from django.db.models import Count, Max

    from partners.models import Provider

    call_command("seed_demo", referrals=200, stdout=io.StringIO())
    partners = Provider.objects.annotate(n=Count("referrals"), last=Max("referrals__received_at"))
    by_status = {status: partners.filter(status=status) for status in Provider.Status.values}
    assert by_status["prospect"].exists() and by_status["dormant"].exists()
    assert set(by_status["prospect"].values_list("n", flat=True)) == {0}
    half_a_year_ago = timezone.now() - timedelta(days=182)
    assert not by_status["dormant"].filter(last__gte=half_a_year_ago).exists()
    assert by_status["active"].filter(last__gte=half_a_year_ago).exists()


def test_no_demo_referral_was_answered_seen_or_closed_in_the_future():
    from referrals.models import Referral

    call_command("seed_demo", referrals=200, stdout=io.StringIO())

    rows = Referral.objects.values_list("contacted_at", "seen_at", "closed_at", "received_at")
    times = [at for row in rows for at in row if at is not None]
    assert times and max(times) <= timezone.now()
    # First answers come hours to days after the referral, not all after the same delay.
    delays = {
        round((contacted - received).total_seconds() / 3600)
        for contacted, _, _, received in rows
        if contacted is not None
    }
    assert len(delays) > 10


def test_the_demo_data_shows_shared_patients_going_on_to_our_clinicians(settings):
    from core.management.commands.seed_demo import DEMO_CLINICIAN_NPIS
    from partners.models import Provider
    from registry.selectors import shared_patients_of

    call_command("seed_demo", referrals=20, stdout=io.StringIO())
    out = io.StringIO()
    call_command("seed_demo", print_clinician_npis=True, stdout=out)
    settings.PRACTICE_NPIS = out.getvalue().strip().split(",")
    assert settings.PRACTICE_NPIS == DEMO_CLINICIAN_NPIS
    seen = [shared_patients_of(npi) for npi in Provider.objects.values_list("npi", flat=True)]
    assert all(shared is not None and shared.went_to for shared in seen)
    assert any(shared.went_on_to_us for shared in seen if shared)
    assert any(peer.partner_id for shared in seen if shared for peer in shared.went_to)


def test_the_demo_liaison_has_office_staff_birthdays_this_week():
    from django.contrib.auth import get_user_model

    from partners.selectors import staff_birthdays

    call_command("seed_demo", referrals=20, stdout=io.StringIO())
    liaison = get_user_model().objects.get(username="liaison")
    assert len(staff_birthdays([liaison.pk], today=timezone.localdate())[liaison.pk]) == 2


def test_the_demo_has_a_referral_phoned_in_after_it_was_faxed_to_mark_as_the_copy():
    from referrals.models import Referral

    call_command("seed_demo", referrals=40, stdout=io.StringIO())
    flagged = Referral.objects.with_duplicate_flag().filter(possible_duplicate=True)
    assert [referral.channel for referral in flagged] == ["phone"]
    [again] = flagged
    assert again.status == "received" and again.duplicate_of is None
