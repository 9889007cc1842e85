"""The SLA work queue: deadlines per urgency, claiming, reassigning and bulk actions."""

import re
from datetime import datetime, timedelta

import pytest
from django.contrib.messages import get_messages
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from core.factories import UserFactory
from core.roles import Role
from partners.factories import ProviderFactory
from referrals.factories import ReferralFactory
from referrals.models import Referral, SlaState, SlaTarget, Status
from referrals.services.assignment import referral_claim
from referrals.services.bulk import referral_bulk_apply
from referrals.services.workflow import referral_log, referral_transition

pytestmark = pytest.mark.django_db


def _logged(**kwargs):
    kwargs.setdefault("provider", ProviderFactory())
    return referral_log(referral=ReferralFactory.build(**kwargs), actor=None)


def _token(referral: Referral) -> str:
    referral.refresh_from_db()
    return f"{referral.pk}:{referral.updated_at.isoformat()}"


def _messages(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def test_default_sla_targets_exist_for_every_urgency():
    assert set(SlaTarget.objects.values_list("urgency", flat=True)) == set(Referral.Urgency.values)


def test_a_stat_referral_unanswered_past_its_target_is_contact_overdue():
    now = timezone.now()
    late = _logged(urgency="stat", received_at=now - timedelta(hours=3))
    fresh = _logged(urgency="stat", received_at=now - timedelta(minutes=30))
    routine = _logged(urgency="routine", received_at=now - timedelta(hours=3))
    states = dict(Referral.objects.with_sla(now=now).values_list("pk", "sla_state"))
    assert states[late.pk] == SlaState.CONTACT_OVERDUE
    assert states[fresh.pk] == SlaState.ON_TRACK
    assert states[routine.pk] == SlaState.ON_TRACK
    assert list(Referral.objects.overdue(now=now).values_list("pk", flat=True)) == [late.pk]


def test_a_referral_past_received_is_not_waiting_for_first_contact_even_without_its_time():
    """Imported or legacy rows may lack contacted_at; a referral already scheduled or seen
    was answered, whatever the column says."""
    now = timezone.now()
    seen = _logged(urgency="stat", received_at=now - timedelta(days=3))
    Referral.objects.filter(pk=seen.pk).update(
        status=Status.SEEN, appointment_at=now - timedelta(days=1), contacted_at=None
    )
    waiting = _logged(urgency="stat", received_at=now - timedelta(days=3))
    states = dict(Referral.objects.with_sla(now=now).values_list("pk", "sla_state"))
    assert states[seen.pk] != SlaState.CONTACT_OVERDUE
    assert states[waiting.pk] == SlaState.CONTACT_OVERDUE


def test_the_targets_are_data_the_practice_can_change():
    now = timezone.now()
    referral = _logged(urgency="routine", received_at=now - timedelta(hours=5))
    assert not Referral.objects.overdue(now=now).exists()
    SlaTarget.objects.filter(urgency="routine").update(first_contact_hours=4)
    assert list(Referral.objects.overdue(now=now)) == [referral]


def test_the_first_answer_stops_the_contact_clock_and_the_appointment_clock_runs_on():
    received = timezone.now() - timedelta(days=10)
    referral = _logged(urgency="urgent", received_at=received)
    answered = received + timedelta(hours=2)
    referral = referral_transition(referral=referral, to_status="accepted", actor=None, at=answered)
    assert referral.contacted_at == answered
    # Urgent: seen within 7 days; 10 days on and no appointment is overdue.
    assert Referral.objects.with_sla().get().sla_state == SlaState.APPOINTMENT_OVERDUE
    referral_transition(
        referral=referral,
        to_status="scheduled",
        actor=None,
        appointment_at=received + timedelta(days=12),
    )
    # Booked, but later than the target: flagged as late rather than overdue.
    assert Referral.objects.with_sla().get().sla_state == SlaState.APPOINTMENT_LATE
    # A second answer (on hold → accepted) does not move the first-contact time.
    referral.refresh_from_db()
    assert referral.contacted_at == answered


def test_a_no_show_past_its_target_day_is_overdue_until_booked_again_or_closed():
    """A missed appointment leaves the patient still to be seen: the coordinator rebooks
    or closes it, and the queue's overdue filter must show it meanwhile."""
    received = timezone.now() - timedelta(days=40)
    referral = _logged(urgency="routine", received_at=received)
    referral_transition(referral=referral, to_status="accepted", actor=None, at=received)
    referral_transition(
        referral=referral,
        to_status="scheduled",
        actor=None,
        appointment_at=received + timedelta(days=5),
    )
    Referral.objects.update(status=Status.NO_SHOW)
    assert list(Referral.objects.overdue()) == [referral]
    assert Referral.objects.with_sla().get().sla_state == SlaState.APPOINTMENT_OVERDUE
    # Missed within the target's 30 days: still time to book again.
    Referral.objects.update(received_at=timezone.now() - timedelta(days=10))
    assert Referral.objects.with_sla().get().sla_state == SlaState.ON_TRACK
    # Booked again: the new appointment's clock, as for any referral.
    Referral.objects.update(received_at=received, status=Status.SCHEDULED)
    Referral.objects.update(appointment_at=timezone.now() + timedelta(days=2))
    assert Referral.objects.with_sla().get().sla_state == SlaState.APPOINTMENT_LATE


def test_the_appointment_target_is_a_whole_day_in_local_time():
    """The page says "by Fri Dec 4": not overdue that morning, nor late for an afternoon
    appointment that day; overdue from the next day on."""
    local = timezone.get_current_timezone()
    received = timezone.make_aware(datetime(2026, 11, 4, 11, 4), local)
    referral = _logged(urgency="routine", received_at=received)
    referral_transition(referral=referral, to_status="accepted", actor=None, at=received)
    due_day = received + timedelta(days=30)  # Dec 4, 11:04

    def state(at):
        return Referral.objects.with_sla(now=at).get().sla_state

    assert state(due_day.replace(hour=9)) == SlaState.ON_TRACK
    assert state(due_day.replace(hour=23, minute=59)) == SlaState.ON_TRACK
    assert state(due_day.replace(hour=0, minute=1) + timedelta(days=1)) == (
        SlaState.APPOINTMENT_OVERDUE
    )

    Referral.objects.update(status=Status.SCHEDULED, appointment_at=due_day.replace(hour=15))
    assert state(due_day.replace(hour=9)) == SlaState.ON_TRACK
    Referral.objects.update(appointment_at=due_day.replace(hour=8) + timedelta(days=1))
    assert state(due_day.replace(hour=9)) == SlaState.APPOINTMENT_LATE


def test_the_appointment_target_day_is_counted_on_the_calendar_across_a_clock_change(
    client_for, coordinator
):
    """Received at 00:30 on Oct 15, a 30-day target is Nov 14, as the calendar counts: 30
    days of 24 hours end at 11:30 pm on Nov 13, the clocks having gone back on Nov 1."""
    local = timezone.get_current_timezone()
    received = timezone.make_aware(datetime(2026, 10, 15, 0, 30), local)
    referral = _logged(urgency="routine", received_at=received)
    referral_transition(referral=referral, to_status="accepted", actor=None, at=received)
    due_day = timezone.make_aware(datetime(2026, 11, 14, 9, 0), local)

    def state(at):
        return Referral.objects.with_sla(now=at).get().sla_state

    assert state(due_day) == SlaState.ON_TRACK
    assert state(due_day + timedelta(days=1)) == SlaState.APPOINTMENT_OVERDUE
    Referral.objects.update(status=Status.SCHEDULED, appointment_at=due_day.replace(hour=15))
    assert state(due_day) == SlaState.ON_TRACK
    page = client_for(coordinator).get(referral.get_absolute_url()).content.decode()
    assert "Appointment target: by Sat Nov 14, 2026" in page


def test_an_appointment_whose_day_is_over_with_no_outcome_recorded_needs_someone(
    client_for, coordinator
):
    local = timezone.get_current_timezone()
    received = timezone.make_aware(datetime(2026, 11, 2, 9, 0), local)
    appointment = timezone.make_aware(datetime(2026, 11, 19, 10, 0), local)
    referral = _logged(urgency="routine", received_at=received)
    for status in ("accepted", "scheduled"):
        referral = referral_transition(
            referral=referral,
            to_status=status,
            actor=None,
            at=received,
            appointment_at=appointment,
        )

    def state(at):
        return Referral.objects.with_sla(now=at).get().sla_state

    # The day of the appointment: nothing to record yet. The next day: seen or no-show?
    assert state(appointment.replace(hour=23)) == SlaState.ON_TRACK
    next_morning = appointment.replace(hour=8) + timedelta(days=1)
    assert state(next_morning) == SlaState.OUTCOME_DUE
    assert list(Referral.objects.overdue(now=next_morning)) == [referral]

    referral_transition(referral=referral, to_status="seen", actor=None, at=next_morning)
    assert state(next_morning) == SlaState.ON_TRACK

    # In the queue today (the appointment long past): red, and found by the overdue filter.
    Referral.objects.update(status=Status.SCHEDULED, seen_at=None)
    page = client_for(coordinator).get(reverse("referrals:list"), {"sla": "overdue"})
    assert page.content.decode().count("data-queue-row=") == 1
    assert 'data-sla="outcome_due"' in page.content.decode()
    assert "data-overdue" in page.content.decode()


def test_overdue_rows_stand_out_in_the_queue_and_can_be_filtered(client_for, coordinator):
    late = _logged(urgency="stat", received_at=timezone.now() - timedelta(hours=5))
    fine = _logged(urgency="routine")
    client = client_for(coordinator)
    page = client.get(reverse("referrals:list")).content.decode()
    assert page.count("data-overdue") == 1
    assert 'data-sla="contact_overdue"' in page
    only_overdue = client.get(reverse("referrals:list"), {"sla": "overdue"}).content.decode()
    assert late.get_absolute_url() in only_overdue
    assert fine.get_absolute_url() not in only_overdue


def test_the_queue_filters_by_coordinator_and_unassigned(client_for, coordinator, manager):
    mine = _logged(assigned_to=coordinator)
    theirs = _logged(assigned_to=manager)
    nobody = _logged()
    client = client_for(coordinator)
    page = client.get(reverse("referrals:list"), {"assigned_to": coordinator.pk}).content.decode()
    assert mine.get_absolute_url() in page
    assert theirs.get_absolute_url() not in page
    unassigned = client.get(reverse("referrals:list"), {"assigned_to": "null"}).content.decode()
    assert nobody.get_absolute_url() in unassigned
    assert mine.get_absolute_url() not in unassigned


def test_only_one_of_two_coordinators_claiming_the_same_referral_gets_it(coordinator, manager):
    referral = _logged()
    assert referral_claim(referral_id=referral.pk, user=coordinator) is True
    assert referral_claim(referral_id=referral.pk, user=manager) is False
    referral.refresh_from_db()
    assert referral.assigned_to == coordinator


def test_claiming_from_the_queue_says_who_won(client_for, coordinator, manager):
    referral = _logged()
    url = reverse("referrals:claim", args=[referral.pk])
    first = client_for(coordinator).post(url, {"next": "/referrals/?sla=overdue"})
    assert first.url == "/referrals/?sla=overdue"
    assert "is yours" in _messages(first)[0]
    second = client_for(manager).post(url, {"next": "https://evil.example/"})
    assert second.url == reverse("referrals:list")
    assert "already taken" in _messages(second)[0]
    referral.refresh_from_db()
    assert referral.assigned_to == coordinator
    # The winner's double click is not told someone else has it.
    again = client_for(coordinator).post(url)
    assert _messages(again) == [f"Referral #{referral.pk} is already yours."]


def test_a_liaison_can_neither_claim_nor_bulk_change(client_for, liaison):
    referral = _logged(provider=ProviderFactory(owner=liaison))
    client = client_for(liaison)
    claim = client.post(reverse("referrals:claim", args=[referral.pk]))
    # They may read it (their partner's), so they are told why, not that it is missing.
    assert claim.status_code == 403
    assert "not change it" in claim.content.decode()
    response = client.post(
        reverse("referrals:bulk"), {"rows": [_token(referral)], "to_status": "accepted"}
    )
    assert response.status_code == 403
    page = client.get(reverse("referrals:list")).content.decode()
    assert "bulk-form" not in page and "Claim" not in page
    referral.refresh_from_db()
    assert referral.status == Status.RECEIVED and referral.assigned_to is None


def test_reassigning_with_a_stale_page_does_not_overwrite_a_newer_assignment(
    client_for, coordinator, manager
):
    other = UserFactory(username="other_coordinator", role=Role.COORDINATOR)
    referral = _logged()
    seen_version = referral.updated_at.isoformat()
    # Someone claims it after the manager's page loaded...
    assert referral_claim(referral_id=referral.pk, user=other)
    response = client_for(manager).post(
        reverse("referrals:assign", args=[referral.pk]),
        {"assignee": coordinator.pk, "version": seen_version},
    )
    assert "changed by someone else" in _messages(response)[0]
    referral.refresh_from_db()
    assert referral.assigned_to == other
    # ...and with a fresh page the reassignment goes through.
    response = client_for(manager).post(
        reverse("referrals:assign", args=[referral.pk]),
        {"assignee": coordinator.pk, "version": referral.updated_at.isoformat()},
    )
    referral.refresh_from_db()
    assert referral.assigned_to == coordinator


def test_a_bulk_move_writes_an_event_for_every_row(client_for, coordinator):
    referrals = [_logged() for _ in range(3)]
    response = client_for(coordinator).post(
        reverse("referrals:bulk"),
        {"rows": [_token(r) for r in referrals], "to_status": "accepted", "next": "/referrals/"},
    )
    assert response.status_code == 302
    ids = ", ".join(f"#{r.pk}" for r in referrals)
    assert _messages(response) == [f"Accepted 3 referrals ({ids})."]
    for referral in referrals:
        referral.refresh_from_db()
        assert referral.status == Status.ACCEPTED
        assert referral.contacted_at is not None
        last = referral.events.last()
        assert (last.from_status, last.to_status, last.actor) == (
            "received",
            "accepted",
            coordinator,
        )


def test_a_bulk_action_skips_and_reports_a_row_someone_else_just_changed(
    client_for, coordinator, manager
):
    untouched, changed = _logged(), _logged()
    tokens = [_token(untouched), _token(changed)]
    # After the page loaded, the manager put one of them on hold.
    referral_transition(referral=changed, to_status="on_hold", actor=manager)
    response = client_for(coordinator).post(
        reverse("referrals:bulk"),
        {
            "rows": tokens,
            "to_status": "cancelled",
            "reason": "Sent twice",
            "assign_to": coordinator.pk,
        },
    )
    assert _messages(response) == [
        f"Cancelled 1 referral (#{untouched.pk}) (reason: Sent twice) and assigned it to "
        f"{coordinator.get_full_name()}.",
        f"Left 1 referral (#{changed.pk}) unchanged: "
        "changed by someone else since you loaded the page; "
        "reload the page to see their changes, then try again.",
    ]
    untouched.refresh_from_db()
    changed.refresh_from_db()
    assert (untouched.status, untouched.assigned_to) == (Status.CANCELLED, coordinator)
    assert (changed.status, changed.assigned_to) == (Status.ON_HOLD, None)


def test_a_bulk_move_not_allowed_for_a_row_skips_that_row_with_the_reason(coordinator):
    new = _logged()
    closed = _logged()
    referral_transition(
        referral=closed, to_status="cancelled", actor=None, cancel_reason="Duplicate"
    )
    referral_transition(referral=closed, to_status="closed", actor=None)
    new.refresh_from_db()
    closed.refresh_from_db()
    result = referral_bulk_apply(
        queryset=Referral.objects.all(),
        versions={new.pk: new.updated_at, closed.pk: closed.updated_at},
        actor=coordinator,
        to_status="on_hold",
    )
    assert result.applied == [new.pk]
    assert result.skipped == {closed.pk: "a closed referral cannot move to on hold"}


def test_a_failure_midway_rolls_back_the_whole_bulk_action(coordinator, monkeypatch):
    first, second = _logged(), _logged()
    from referrals.services import bulk

    real = bulk.referral_transition
    calls = []

    def fail_on_second(**kwargs):
        calls.append(kwargs["referral"].pk)
        if len(calls) == 2:
            raise RuntimeError("database went away")
        return real(**kwargs)

    monkeypatch.setattr(bulk, "referral_transition", fail_on_second)
    with pytest.raises(RuntimeError):
        referral_bulk_apply(
            queryset=Referral.objects.all(),
            versions={first.pk: first.updated_at, second.pk: second.updated_at},
            actor=coordinator,
            assign_to=coordinator,
            to_status="accepted",
        )
    assert set(Referral.objects.values_list("status", flat=True)) == {Status.RECEIVED}
    assert not Referral.objects.filter(assigned_to__isnull=False).exists()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"to_status": "accepted"}, "Select at least one referral."),
        ({"rows": ["1:yesterday"], "to_status": "accepted"}, "The selection was not understood"),
        ({"rows": ["x:2026-01-01T00:00:00+00:00"], "to_status": "accepted"}, "not understood"),
        ({"rows": ["1:2026-01-01T00:00:00+00:00"]}, "Choose someone to assign to"),
        ({"rows": ["1:2026-01-01T00:00:00+00:00"], "to_status": "seen"}, "not one of"),
    ],
)
def test_bad_bulk_input_is_reported_and_changes_nothing(client_for, coordinator, data, message):
    referral = _logged()
    response = client_for(coordinator).post(reverse("referrals:bulk"), data)
    assert response.status_code == 302
    assert any(message in text for text in _messages(response))
    referral.refresh_from_db()
    assert referral.status == Status.RECEIVED


def test_rows_the_user_may_not_change_are_skipped_by_a_bulk_action(coordinator):
    referral = _logged()
    result = referral_bulk_apply(
        queryset=Referral.objects.none(),
        versions={referral.pk: referral.updated_at},
        actor=coordinator,
        to_status="accepted",
    )
    assert result.applied == []
    assert result.skipped == {referral.pk: "not found or not yours to change"}


def test_the_queue_counts_only_up_to_its_cap(rf, coordinator):
    from core.pagination import paginate_capped

    for _ in range(4):
        _logged()
    request = rf.get("/referrals/", {"page": "2"})
    capped = paginate_capped(request, Referral.objects.order_by("pk"), cap=3, per_page=2)
    assert capped.paginator.is_capped
    assert capped.number == 2
    exact = paginate_capped(request, Referral.objects.order_by("pk"), cap=10, per_page=2)
    assert (exact.paginator.is_capped, exact.paginator.count) == (False, 4)


def test_a_referral_sent_again_by_the_same_partner_is_flagged_in_the_queue(client_for, coordinator):
    partner = ProviderFactory()
    now = timezone.now()
    first = ReferralFactory(
        provider=partner,
        patient_last_name="Olsen",
        patient_dob=timezone.localdate() - timedelta(days=9000),
        received_at=now - timedelta(hours=1),
    )
    again = ReferralFactory(
        provider=partner,
        patient_last_name=" olsen ",
        patient_dob=first.patient_dob,
        received_at=now,
    )
    other_patient = ReferralFactory(provider=partner, patient_last_name="Olsen", received_at=now)
    other_partner = ReferralFactory(
        patient_last_name="Olsen", patient_dob=first.patient_dob, received_at=now
    )
    # A colleague in the same office sending the same patient is the office sending it
    # twice, as the check on entry says.
    colleague = ReferralFactory(
        provider=ProviderFactory(organization=partner.organization),
        patient_last_name="OLSEN",
        patient_dob=first.patient_dob,
        received_at=now - timedelta(minutes=30),
    )
    assert partner.organization_id is not None
    page = client_for(coordinator).get(reverse("referrals:list")).content.decode()
    flagged = {
        int(pk)
        for pk in re.findall(
            r'data-queue-row="(\d+)"[^>]*>(?:(?!</tr>).)*data-duplicate', page, re.S
        )
    }
    assert flagged == {again.pk, colleague.pk}
    assert {first.pk, other_patient.pk, other_partner.pk}.isdisjoint(flagged)


def test_filters_the_queue_cannot_use_are_named_instead_of_silently_left_out(
    client_for, coordinator
):
    _logged()
    client = client_for(coordinator)

    reversed_dates = client.get(
        reverse("referrals:list"),
        {"received_after": "2026-11-20", "received_before": "2026-11-01"},
    ).content.decode()
    not_a_date = client.get(reverse("referrals:list"), {"received_after": "notadate"})

    assert 'data-testid="filter-errors"' in reversed_dates
    assert (
        "Received to: This date is before “Received from” (Nov 20, 2026): nothing can "
        "match both." in reversed_dates
    )
    assert not_a_date.status_code == 200
    assert "Received from: Enter a valid date." in not_a_date.content.decode()


def test_the_queue_says_how_long_the_first_answer_took_and_when_the_appointment_is(
    client_for, coordinator
):
    local = timezone.get_current_timezone()
    received = timezone.now() - timedelta(days=3)
    referral = _logged(received_at=received)
    referral_transition(
        referral=referral, to_status="accepted", actor=None, at=received + timedelta(hours=5)
    )
    appointment = timezone.localtime(received + timedelta(days=5), local)
    referral_transition(
        referral=referral, to_status="scheduled", actor=None, appointment_at=appointment
    )

    row = client_for(coordinator).get(reverse("referrals:list")).content.decode()

    assert "took 5\xa0hours" in row
    assert f"{appointment:%b} {appointment.day}, 5\xa0days after" in row


def test_every_sla_state_has_its_label_and_colour_in_the_queue():
    from referrals.models import SlaState
    from referrals.templatetags.referral_tags import SLA_COLOURS, sla_label

    for state in SlaState:
        assert sla_label(state.value) == state.label
        assert state in SLA_COLOURS
    assert sla_label("") == "" and sla_label("<script>") == ""


def test_the_queues_next_page_is_still_the_open_referrals(client_for, coordinator):
    from core.pagination import PAGE_SIZE

    provider = ProviderFactory()
    for _ in range(PAGE_SIZE + 2):
        ReferralFactory(provider=provider)
    for _ in range(PAGE_SIZE * 2):
        ReferralFactory(provider=provider, status="closed")
    client = client_for(coordinator)
    first = client.get(reverse("referrals:list")).content.decode()
    second = client.get(reverse("referrals:list"), {"page": "2"}).content.decode()
    assert f"{PAGE_SIZE + 2} in all" in first
    assert f"{PAGE_SIZE + 2} in all" in second and "Page 2 of 2" in second


def test_a_filter_change_in_place_sends_the_export_link_for_the_list_it_draws(
    client_for, coordinator
):
    client = client_for(coordinator)
    partial = client.get(
        reverse("referrals:list"), {"direction": "outbound", "open": "on"}, HTTP_HX_REQUEST="true"
    ).content.decode()
    link = re.search(r'<a id="queue-export"[^>]*>', partial)[0]
    assert 'hx-swap-oob="true"' in link
    assert "direction=outbound" in link and "open=on" in link
    # The whole page has it once, in its header, without the out-of-band mark.
    page = client.get(reverse("referrals:list"), {"direction": "outbound"}).content.decode()
    assert page.count('id="queue-export"') == 1 and "hx-swap-oob" not in page


def test_going_back_to_a_queue_changed_in_place_gets_the_whole_page(client_for, coordinator):
    response = client_for(coordinator).get(
        reverse("referrals:list"),
        {"direction": "outbound"},
        HTTP_HX_REQUEST="true",
        HTTP_HX_HISTORY_RESTORE_REQUEST="true",
    )
    page = response.content.decode()
    assert page.lstrip().lower().startswith("<!doctype html>")
    assert '<option value="outbound" selected>' in page


def test_an_outbound_referral_that_ended_is_ended_not_on_track():
    sent = ReferralFactory(direction="outbound", provider=ProviderFactory(in_network=True))
    closed = ReferralFactory(
        direction="outbound", provider=ProviderFactory(in_network=True), status="closed"
    )
    states = dict(Referral.objects.with_sla().values_list("pk", "sla_state"))
    assert states == {sent.pk: SlaState.ON_TRACK, closed.pk: SlaState.ENDED}


def test_statuses_ticked_are_shown_whatever_open_only_says(client_for, coordinator):
    provider = ProviderFactory()
    closed = ReferralFactory(provider=provider, status="closed")
    still_open = ReferralFactory(provider=provider)
    response = client_for(coordinator).get(
        reverse("referrals:list"), {"status": "closed", "open": "on"}
    )
    shown = [int(pk) for pk in re.findall(r'data-queue-row="(\d+)"', response.content.decode())]
    assert shown == [closed.pk]
    assert still_open.pk not in shown


def test_the_ended_sla_state_is_shown_whatever_open_only_says(client_for, coordinator):
    """The queue opens with "Open only" ticked, so choosing SLA "Ended" sends both: the
    referrals whose clock has stopped are listed, not an empty queue with nothing to say
    why (an ended one is never open)."""
    provider = ProviderFactory()
    declined = ReferralFactory(provider=provider, status="declined", decline_reason="Out of scope")
    still_open = ReferralFactory(provider=provider)
    response = client_for(coordinator).get(
        reverse("referrals:list"), {"sla": "ended", "open": "on"}
    )
    shown = [int(pk) for pk in re.findall(r'data-queue-row="(\d+)"', response.content.decode())]
    assert shown == [declined.pk]
    assert still_open.pk not in shown


def test_a_referral_asked_for_by_number_is_found_whatever_open_only_says(client_for, coordinator):
    """An office calls about referral #N (or the reference its link showed): typed into
    the queue as it opens, with "Open only" ticked, a declined or closed one is found, not
    reported as no match."""
    declined = ReferralFactory(status="declined", decline_reason="Out of scope")
    ReferralFactory(provider=declined.provider)
    client = client_for(coordinator)

    response = client.get(reverse("referrals:list"), {"number": f"#{declined.pk}", "open": "on"})

    shown = [int(pk) for pk in re.findall(r'data-queue-row="(\d+)"', response.content.decode())]
    assert shown == [declined.pk]


@pytest.mark.parametrize(
    ("field", "typed"), [("first_contact_hours", 99999999), ("appointment_days", 4000000)]
)
def test_an_sla_target_beyond_any_calendar_is_refused_and_the_queue_keeps_working(
    client_for, administrator, coordinator, field, typed
):
    _logged(urgency="routine")
    target = SlaTarget.objects.get(urgency="routine")
    data = {
        "urgency": "routine",
        "first_contact_hours": target.first_contact_hours,
        "appointment_days": target.appointment_days,
        field: typed,
    }
    admin = client_for(administrator)
    admin.raise_request_exception = False
    response = admin.post(reverse("admin:referrals_slatarget_change", args=[target.pk]), data)
    assert response.status_code == 200
    assert "Ensure this value is less than or equal to" in response.content.decode()
    target.refresh_from_db()
    assert getattr(target, field) != typed
    queue = client_for(coordinator)
    queue.raise_request_exception = False
    assert queue.get(reverse("referrals:list")).status_code == 200


def test_the_received_dates_are_the_practices_days_read_through_the_time_index(
    client_for, coordinator
):
    # 11:30 pm in New York on Nov 20 is 4:30 am on Nov 21 by the server's UTC clock.
    late = ReferralFactory(received_at=timezone.make_aware(datetime(2026, 11, 20, 23, 30)))
    client = client_for(coordinator)

    def listed(**dates):
        page = client.get(reverse("referrals:list"), {"open": "", **dates}).content.decode()
        return f'href="/referrals/{late.pk}/"' in page

    assert listed(received_before="2026-11-20") and listed(received_after="2026-11-20")
    assert not listed(received_after="2026-11-21") and not listed(received_before="2026-11-19")
    assert listed(received_before="9999-12-31") and listed(received_after="0001-01-01")
    # A date as a range of the indexed time, not each row's time turned into a date (which
    # read every newer referral first on a million).
    with CaptureQueriesContext(connection) as queries:
        client.get(reverse("referrals:list"), {"received_before": "2026-11-20"})
    rows = [q["sql"] for q in queries if 'FROM "referrals_referral"' in q["sql"]]
    assert rows
    for sql in rows:
        assert '"referrals_referral"."received_at" < ' in sql, sql
        assert "<= '2026-11-20'" not in sql, sql
