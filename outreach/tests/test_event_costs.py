"""An event's cost reaches the gifts and meals ledger: shared per head across everyone who
came, each physician's share an ActivityShare, with the activity form's limit rules."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from outreach import ledger
from outreach.factories import EventFactory
from outreach.models import Activity, ActivityShare, ComplianceLimit, Invitation
from outreach.services.activities import activity_log
from outreach.services.compliance import ComplianceLimitExceeded
from outreach.services.events import event_record_attendance
from partners.factories import OrganizationFactory, ProviderFactory, StaffMemberFactory

pytestmark = pytest.mark.django_db

YEAR = timezone.localdate().year


def past_event(cost: str | None, **extra):
    # Mid-year of this year, so its shares fall in this year's ledger.
    return EventFactory(
        cost=Decimal(cost) if cost else None,
        starts_at=timezone.now() - timedelta(hours=3),
        **extra,
    )


def came(event, *, providers=(), staff=()):
    for provider in providers:
        Invitation.objects.create(event=event, provider=provider, rsvp="yes", attended=True)
    for person in staff:
        Invitation.objects.create(event=event, staff=person, rsvp="yes", attended=True)


def test_the_cost_is_shared_per_head_across_everyone_who_came_and_accrues_to_physicians(
    liaison,
):
    event = past_event("300.00")
    dundee = OrganizationFactory(name="Dundee Family Practice")
    ana, ben = ProviderFactory.create_batch(2, organization=dundee)
    rosa = StaffMemberFactory(organization=dundee)
    carl = ProviderFactory(organization=OrganizationFactory(name="Capitol Primary Care"))
    absent = ProviderFactory(organization=dundee)
    came(event, providers=[ana, ben, carl], staff=[rosa])
    Invitation.objects.create(event=event, provider=absent, rsvp="yes", attended=False)

    result = event_record_attendance(event=event, actor=liaison)

    # Four people came: $75 a head. Rosa counts for the headcount but is not a physician.
    assert result.attendees == 4
    shares = {s.provider_id: s.amount for s in ActivityShare.objects.all()}
    assert shares == {ana.pk: Decimal("75.00"), ben.pk: Decimal("75.00"), carl.pk: Decimal("75.00")}
    assert {s.year for s in ActivityShare.objects.all()} == {YEAR}
    by_office = {
        a.organization.name: a.cost for a in Activity.objects.select_related("organization")
    }
    assert by_office == {
        "Dundee Family Practice": Decimal("225.00"),
        "Capitol Primary Care": Decimal("75.00"),
    }
    totals = ledger.spent_by_provider([ana.pk, carl.pk, absent.pk], year=YEAR)
    assert totals == {ana.pk: Decimal("75.00"), carl.pk: Decimal("75.00")}


def test_the_ledger_totals_and_the_report_add_event_shares_to_lunches(client_for, liaison, manager):
    ComplianceLimit.objects.create(year=YEAR, amount=Decimal("500"))
    office = OrganizationFactory()
    ana = ProviderFactory(organization=office, first_name="Ana", last_name="Reyes", credential="MD")
    activity_log(
        activity=Activity(
            kind=Activity.Kind.LUNCH,
            cost=Decimal("40.00"),
            occurred_at=timezone.now(),
            organization=office,
        ),
        providers=[ana],
        staff=[],
        actor=liaison,
    )
    event = past_event("120.00")
    came(event, providers=[ana], staff=StaffMemberFactory.create_batch(2, organization=office))
    event_record_attendance(event=event, actor=liaison)

    assert ledger.spent_by_provider([ana.pk], year=YEAR) == {ana.pk: Decimal("80.00")}
    report = client_for(manager).get(reverse("outreach:compliance_report"), {"year": YEAR})
    assert '<td class="text-end">$80.00</td>' in report.content.decode()
    csv_export = client_for(manager).get(
        reverse("outreach:compliance_report"), {"year": YEAR, "export": "csv"}
    )
    [row] = [
        r
        for r in csv.reader(io.StringIO(b"".join(csv_export.streaming_content).decode("utf-8-sig")))
        if r[1] == "Ana Reyes, MD"
    ]
    assert row[4:8] == ["80.00", "500.00", str(YEAR), "16"]


def test_recording_attendance_again_recomputes_the_shares_instead_of_adding_more(liaison):
    event = past_event("100.00")
    ana, ben = ProviderFactory.create_batch(2)
    came(event, providers=[ana, ben])
    event_record_attendance(event=event, actor=liaison)
    assert ledger.spent_by_provider([ana.pk], year=YEAR) == {ana.pk: Decimal("50.00")}

    Invitation.objects.filter(provider=ben).update(attended=False)
    event.cost = Decimal("90.00")
    event.save()
    event_record_attendance(event=event, actor=liaison)

    assert list(ActivityShare.objects.values_list("provider_id", "amount")) == [
        (ana.pk, Decimal("90.00"))
    ]


def test_an_event_without_a_cost_writes_no_ledger_rows(liaison):
    event = past_event(None)
    came(event, providers=[ProviderFactory()])
    event_record_attendance(event=event, actor=liaison)
    assert Activity.objects.count() == 1
    assert not ActivityShare.objects.exists()


def test_a_share_over_the_limit_is_refused_on_the_event_page_and_nothing_is_recorded(
    client_for, liaison
):
    ComplianceLimit.objects.create(year=YEAR, amount=Decimal("100"))
    ana = ProviderFactory(first_name="Ana", last_name="Reyes", credential="MD")
    event = past_event("150.00")
    came(event, providers=[ana])
    with pytest.raises(ComplianceLimitExceeded):
        event_record_attendance(event=event, actor=liaison)

    response = client_for(liaison).post(reverse("outreach:event_attendance", args=[event.pk]))

    assert response.status_code == 200
    body = response.content.decode()
    assert "over the" in body and "gifts and meals limit" in body
    assert "Nothing was recorded." in body
    assert not Activity.objects.exists()
    assert not ActivityShare.objects.exists()


def test_a_manager_records_it_over_the_limit_with_a_reason_and_is_warned(client_for, manager):
    ComplianceLimit.objects.create(year=YEAR, amount=Decimal("100"))
    ana = ProviderFactory(first_name="Ana", last_name="Reyes", credential="MD")
    event = past_event("150.00")
    came(event, providers=[ana])
    url = reverse("outreach:event_attendance", args=[event.pk])
    client = client_for(manager)

    page = client.get(event.get_absolute_url()).content.decode()
    assert "Reason for exceeding the yearly limit" in page
    refused = client.post(url, {"limit_override_reason": ""})
    assert refused.status_code == 200
    assert not ActivityShare.objects.exists()

    response = client.post(
        url, {"limit_override_reason": "CME dinner approved by compliance"}, follow=True
    )

    body = response.content.decode()
    assert "Attendance recorded: 1 person came, from 1 office." in body
    assert "Ana Reyes, MD is at $150.00 of the $100.00 limit" in body
    assert ActivityShare.objects.get().amount == Decimal("150.00")
    assert 'data-testid="event-shares"' in body


def test_the_event_page_warns_at_80_percent(client_for, liaison):
    ComplianceLimit.objects.create(year=YEAR, amount=Decimal("100"))
    ana = ProviderFactory(first_name="Ana", last_name="Reyes", credential="MD")
    event = past_event("85.00")
    came(event, providers=[ana])
    response = client_for(liaison).post(
        reverse("outreach:event_attendance", args=[event.pk]), follow=True
    )
    assert "Ana Reyes, MD is at $85.00 of the $100.00 limit" in response.content.decode()


def test_the_cost_is_entered_on_the_event_edit_page_by_those_who_may_change_events(
    client_for, liaison, coordinator
):
    event = past_event(None)
    url = reverse("outreach:event_update", args=[event.pk])
    assert client_for(coordinator).get(url).status_code == 404
    client = client_for(liaison)
    assert client.get(url).status_code == 200
    refused = client.post(url, {"name": event.name, "kind": "cme", "starts_at": "x", "cost": "-5"})
    assert refused.status_code == 200
    assert "Ensure this value is greater than or equal to 0" in refused.content.decode()
    response = client.post(
        url,
        {
            "name": event.name,
            "kind": "cme",
            "starts_at": "2026-03-05T18:00",
            "cost": "420.50",
            "remind_days_before": "3",
        },
    )
    assert response.url == event.get_absolute_url()
    event.refresh_from_db()
    assert (event.kind, event.cost, event.remind_days_before) == ("cme", Decimal("420.50"), 3)


def test_an_event_whose_attendance_is_recorded_cannot_move_into_the_future(client_for, liaison):
    event = past_event("90.00")
    came(event, providers=[ProviderFactory()])
    event_record_attendance(event=event, actor=liaison)
    url = reverse("outreach:event_update", args=[event.pk])
    later = timezone.localtime() + timedelta(days=7)
    form = {"name": "Renamed", "kind": event.kind, "cost": "90.00", "remind_days_before": "7"}
    refused = client_for(liaison).post(url, {**form, "starts_at": f"{later:%Y-%m-%dT%H:%M}"})
    assert refused.status_code == 200
    assert "cannot move to a time that has not come yet" in refused.content.decode()
    event.refresh_from_db()
    assert event.name != "Renamed"
    # An earlier time, or any time for an event nobody is recorded at, is fine.
    earlier = timezone.localtime() - timedelta(days=1)
    saved = client_for(liaison).post(url, {**form, "starts_at": f"{earlier:%Y-%m-%dT%H:%M}"})
    assert saved.status_code == 302
    upcoming = past_event(None)
    url = reverse("outreach:event_update", args=[upcoming.pk])
    moved = client_for(liaison).post(url, {**form, "starts_at": f"{later:%Y-%m-%dT%H:%M}"})
    assert moved.status_code == 302


def test_recording_attendance_runs_the_same_queries_for_2_and_12_offices(liaison):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def event_from(offices: int):
        event = past_event("600.00")
        for _ in range(offices):
            office = OrganizationFactory()
            came(
                event,
                providers=ProviderFactory.create_batch(2, organization=office),
                staff=[StaffMemberFactory(organization=office)],
            )
        return event

    def queries(event) -> int:
        with CaptureQueriesContext(connection) as captured:
            event_record_attendance(event=event, actor=liaison)
        return len(captured.captured_queries)

    small, large = event_from(2), event_from(12)
    assert queries(small) == queries(large)
    assert Activity.objects.filter(event=large).count() == 12
    assert ActivityShare.objects.filter(activity__event=large).count() == 24
    assert all(
        set(activity.providers.values_list("organization", flat=True)) == {activity.organization_id}
        and activity.staff.count() == 1
        for activity in Activity.objects.filter(event=large)
    )
    # Recorded again: still the same for both, the shares replaced rather than added.
    assert queries(small) == queries(large)
    assert ActivityShare.objects.filter(activity__event=large).count() == 24


def test_recording_attendance_says_once_that_no_limit_is_set_however_many_offices_came(
    client_for, liaison
):
    event = past_event("300.00")
    for _ in range(3):
        came(event, providers=[ProviderFactory(organization=OrganizationFactory())])
    response = client_for(liaison).post(
        reverse("outreach:event_attendance", args=[event.pk]), follow=True
    )
    body = response.content.decode()
    assert "from 3 offices" in body
    assert body.count(f"No gifts and meals limit is set for {YEAR}") == 1


def test_the_attendance_warnings_run_the_same_queries_for_2_and_12_physicians(client_for, liaison):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    ComplianceLimit.objects.create(year=YEAR, amount=Decimal("100"))

    def queries(offices: int) -> int:
        event = past_event(str(85 * 2 * offices))
        for _ in range(offices):
            office = OrganizationFactory()
            came(event, providers=ProviderFactory.create_batch(2, organization=office))
        client = client_for(liaison)
        with CaptureQueriesContext(connection) as captured:
            response = client.post(reverse("outreach:event_attendance", args=[event.pk]))
        assert response.status_code == 302
        # Every physician at 85% of the limit is named in the warnings.
        warned = [m for m in response.wsgi_request._messages if "is at $85.00" in str(m)]
        assert len(warned) == 2 * offices
        return len(captured.captured_queries)

    assert queries(1) == queries(6)


def test_a_cost_too_large_to_share_is_refused_on_the_form_not_a_server_error_later(
    client_for, liaison
):
    """$9,999,999.99 fits the cost field, but its shares rounded up to the cent do not fit
    the activities' (7 x $1,428,571.43 = $10,000,000.01): refused where it is typed, with
    the reason, instead of failing when attendance is recorded."""
    event = past_event(None)
    url = reverse("outreach:event_update", args=[event.pk])
    form = {
        "name": event.name,
        "kind": event.kind,
        "starts_at": f"{timezone.localtime(event.starts_at):%Y-%m-%dT%H:%M}",
        "cost": "9999999.99",
        "remind_days_before": "7",
    }
    refused = client_for(liaison).post(url, form)
    assert refused.status_code == 200
    assert refused.context["form"].errors["cost"] == [
        "Enter at most $1,000,000: the cost of one event, catering and venue."
    ]
    event.refresh_from_db()
    assert event.cost is None
    saved = client_for(liaison).post(url, {**form, "cost": "1000000"})
    assert saved.status_code == 302
    came(event, providers=ProviderFactory.create_batch(7, organization=OrganizationFactory()))
    event.refresh_from_db()
    assert event_record_attendance(event=event, actor=liaison).attendees == 7


def test_a_reason_given_for_one_recording_does_not_vouch_for_the_next(client_for, manager):
    ComplianceLimit.objects.create(year=YEAR, amount=Decimal("100"))
    office = OrganizationFactory(name="Dundee Family Practice")
    ana = ProviderFactory(organization=office, first_name="Ana", last_name="Reyes")
    ben = ProviderFactory(organization=office, first_name="Ben", last_name="Ortiz")
    event = past_event("150.00")
    came(event, providers=[ana])
    event_record_attendance(event=event, actor=manager, override_reason="Approved by compliance")
    activity = Activity.objects.get()
    assert activity.limit_override_reason == "Approved by compliance"

    # The page shows the reason on the office's record and offers it again to confirm.
    page = client_for(manager).get(event.get_absolute_url()).content.decode()
    assert "over the yearly limit: Approved by compliance" in page
    assert 'value="Approved by compliance"' in page

    # Re-recorded with no reason while a share is still over: asked again, nothing changed.
    with pytest.raises(ComplianceLimitExceeded):
        event_record_attendance(event=event, actor=manager)
    activity.refresh_from_db()
    assert activity.limit_override_reason == "Approved by compliance"
    assert ActivityShare.objects.get().amount == Decimal("150.00")

    # Ben came too: $75 each, within the limit, so the office has nothing to explain and
    # the reason given with this recording is not kept as an exception.
    came(event, providers=[ben])
    event_record_attendance(event=event, actor=manager, override_reason="Approved by compliance")
    activity.refresh_from_db()
    assert activity.limit_override_reason == ""
    assert sorted(ActivityShare.objects.values_list("amount", flat=True)) == [
        Decimal("75.00"),
        Decimal("75.00"),
    ]
    page = client_for(manager).get(event.get_absolute_url()).content.decode()
    assert "over the yearly limit" not in page


def test_only_the_office_over_the_limit_keeps_the_reason(manager):
    ComplianceLimit.objects.create(year=YEAR, amount=Decimal("100"))
    heavy = ProviderFactory(organization=OrganizationFactory(name="Heavy Spenders"))
    light = ProviderFactory(organization=OrganizationFactory(name="Light Touch"))
    activity_log(
        activity=Activity(
            kind=Activity.Kind.LUNCH,
            organization=heavy.organization,
            occurred_at=timezone.now() - timedelta(days=30),
            cost=Decimal("60.00"),
        ),
        providers=[heavy],
        staff=[],
        actor=manager,
    )
    event = past_event("100.00")
    came(event, providers=[heavy, light])
    event_record_attendance(event=event, actor=manager, override_reason="Board dinner")
    reasons = dict(
        Activity.objects.filter(event=event).values_list(
            "organization__name", "limit_override_reason"
        )
    )
    assert reasons == {"Heavy Spenders": "Board dinner", "Light Touch": ""}
