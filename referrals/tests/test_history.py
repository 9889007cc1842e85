"""Who held a referral and what was edited: claims, reassignments, bulk assignments and
in-place edits are rows in the referral's history, shown on its timeline."""

import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from core.factories import UserFactory
from core.roles import Role
from partners.factories import ProviderFactory
from referrals.factories import ReferralFactory
from referrals.models import Inquiry, Referral, ReferralEvent
from referrals.services.assignment import referral_assign, referral_claim
from referrals.services.bulk import referral_bulk_apply
from referrals.services.workflow import referral_log, referral_transition

pytestmark = pytest.mark.django_db

Kind = ReferralEvent.Kind


def _logged(**kwargs):
    kwargs.setdefault("provider", ProviderFactory())
    return referral_log(referral=ReferralFactory.build(**kwargs), actor=None)


def _assignments(referral):
    return list(
        referral.events.filter(kind=Kind.ASSIGNMENT).values_list(
            "from_assignee", "to_assignee", "actor"
        )
    )


def _form_data(referral, **overrides):
    data = {
        "direction": referral.direction,
        "provider": referral.provider_id,
        "channel": referral.channel,
        "urgency": referral.urgency,
        "received_at": timezone.localtime(referral.received_at).strftime("%Y-%m-%dT%H:%M"),
        "patient_first_name": referral.patient_first_name,
        "patient_last_name": referral.patient_last_name,
        "patient_dob": referral.patient_dob.isoformat(),
        "patient_phone": referral.patient_phone,
        "reason": referral.reason,
        "assigned_to": referral.assigned_to_id or "",
    }
    return {**data, **overrides}


def test_a_claim_is_recorded_with_who_took_it(coordinator, manager):
    referral = _logged()
    assert referral_claim(referral_id=referral.pk, user=coordinator)
    # The loser of the race leaves no history.
    assert not referral_claim(referral_id=referral.pk, user=manager)
    assert _assignments(referral) == [(None, coordinator.pk, coordinator.pk)]
    assert referral.events.get(kind=Kind.ASSIGNMENT).note == "Claimed"


def test_a_reassignment_records_from_whom_to_whom_and_by_whom(coordinator, manager):
    other = UserFactory(username="cora", role=Role.COORDINATOR)
    referral = _logged()
    referral_claim(referral_id=referral.pk, user=coordinator)
    assert referral_assign(referral=referral, assignee=other, actor=manager)
    assert referral_assign(referral=referral, assignee=None, actor=manager)
    assert _assignments(referral) == [
        (None, coordinator.pk, coordinator.pk),
        (coordinator.pk, other.pk, manager.pk),
        (other.pk, None, manager.pk),
    ]


def test_a_stale_or_empty_reassignment_leaves_no_history(coordinator, manager):
    referral = _logged()
    stale = referral.updated_at - timedelta(seconds=1)
    assert not referral_assign(
        referral=referral, assignee=coordinator, actor=manager, version=stale
    )
    referral_assign(referral=referral, assignee=coordinator, actor=manager)
    # Giving it to the person who already has it changes nothing.
    assert referral_assign(referral=referral, assignee=coordinator, actor=manager)
    assert len(_assignments(referral)) == 1


def test_a_bulk_assignment_records_an_event_per_row_that_changed_hands(coordinator, manager):
    held, free = _logged(), _logged()
    referral_assign(referral=held, assignee=coordinator, actor=manager)
    held.refresh_from_db()
    result = referral_bulk_apply(
        queryset=Referral.objects.all(),
        versions={held.pk: held.updated_at, free.pk: free.updated_at},
        actor=manager,
        assign_to=coordinator,
    )
    assert result.applied == [held.pk, free.pk]
    assert _assignments(held) == [(None, coordinator.pk, manager.pk)]
    assert _assignments(free) == [(None, coordinator.pk, manager.pk)]
    free.refresh_from_db()
    referral_bulk_apply(
        queryset=Referral.objects.all(),
        versions={free.pk: free.updated_at},
        actor=manager,
        unassign=True,
    )
    assert _assignments(free)[-1] == (coordinator.pk, None, manager.pk)


def test_the_reassign_button_writes_the_history_shown_on_the_timeline(
    client_for, coordinator, manager
):
    cora = UserFactory(username="cora", first_name="Cora", last_name="Lind", role=Role.COORDINATOR)
    referral = _logged()
    client = client_for(manager)
    client.post(
        reverse("referrals:assign", args=[referral.pk]),
        {"assignee": cora.pk, "version": referral.updated_at.isoformat()},
    )
    page = client.get(referral.get_absolute_url()).content.decode()
    assert 'data-kind="assignment"' in page
    assert "Coordinator: nobody → <strong>Cora Lind</strong>" in page


@pytest.mark.parametrize(
    ("version", "said"),
    [
        (
            "2026-12-01T09:00:00",
            "The page was not understood: reload it and try again.",
        ),  # no offset: not the page's
        ("yesterday", "The page was not understood: reload it and try again."),
    ],
)
def test_a_reassignment_without_the_page_s_version_changes_nothing_and_says_why(
    client_for, manager, version, said
):
    cora = UserFactory(username="cora", role=Role.COORDINATOR)
    referral = _logged()
    client = client_for(manager)
    response = client.post(
        reverse("referrals:assign", args=[referral.pk]),
        {"assignee": cora.pk, "version": version},
        follow=True,
    )
    assert said in response.content.decode()
    assert "Choose a coordinator from the list." not in response.content.decode()
    referral.refresh_from_db()
    assert referral.assigned_to is None


def test_an_edit_records_old_and_new_values_but_only_the_names_of_patient_fields(
    client_for, coordinator, liaison
):
    provider = ProviderFactory(owner=liaison)
    referral = _logged(provider=provider, urgency="routine", patient_phone="(402) 555-0100")
    response = client_for(coordinator).post(
        reverse("referrals:update", args=[referral.pk]),
        _form_data(referral, urgency="urgent", patient_phone="(402) 555-7777"),
    )
    assert response.status_code == 302
    event = referral.events.get(kind=Kind.EDIT)
    assert event.actor == coordinator
    assert event.changes == [
        {"field": "Urgency", "old": "Routine", "new": "Urgent"},
        {"field": "Patient phone"},
    ]
    # The liaison sees the history, and no patient data in it.
    page = client_for(liaison).get(referral.get_absolute_url()).content.decode()
    assert "Urgency: Routine → Urgent" in page
    assert "Patient phone" in page
    assert "555-7777" not in page and "555-0100" not in page


def test_an_edit_that_changes_nothing_adds_nothing(client_for, coordinator):
    referral = _logged()
    client_for(coordinator).post(
        reverse("referrals:update", args=[referral.pk]), _form_data(referral)
    )
    assert not referral.events.exclude(kind=Kind.STATUS).exists()


def test_changing_the_coordinator_in_the_edit_form_is_an_assignment_event(
    client_for, coordinator, manager
):
    referral = _logged()
    client_for(manager).post(
        reverse("referrals:update", args=[referral.pk]),
        _form_data(referral, assigned_to=coordinator.pk),
    )
    assert _assignments(referral) == [(None, coordinator.pk, manager.pk)]
    assert not referral.events.filter(kind=Kind.EDIT).exists()


def test_moving_the_received_date_moves_the_inquiry_and_says_so(client_for, coordinator):
    referral = _logged()
    earlier = referral.received_at - timedelta(days=40)
    client_for(coordinator).post(
        reverse("referrals:update", args=[referral.pk]),
        _form_data(referral, received_at=timezone.localtime(earlier).strftime("%Y-%m-%dT%H:%M")),
    )
    inquiry = Inquiry.objects.get(referral=referral)
    referral.refresh_from_db()
    assert inquiry.received_at == referral.received_at
    fields = [change["field"] for change in referral.events.get(kind=Kind.EDIT).changes]
    assert fields == ["Received at", "Inquiry received (conversion)"]


def test_turning_an_inbound_referral_outbound_takes_it_out_of_the_funnel_and_back(
    client_for, coordinator
):
    referral = _logged(direction="inbound")
    client = client_for(coordinator)
    client.post(
        reverse("referrals:update", args=[referral.pk]),
        # Out of network, so it says why (as any referral sent out must).
        _form_data(referral, direction="outbound", out_of_network_reason="Patient's choice"),
    )
    referral.refresh_from_db()
    assert referral.direction == "outbound"
    assert not Inquiry.objects.filter(referral=referral).exists()
    assert referral.in_network == referral.provider.in_network
    client.post(
        reverse("referrals:update", args=[referral.pk]), _form_data(referral, direction="inbound")
    )
    assert Inquiry.objects.get(referral=referral).status == Inquiry.Status.INQUIRY
    edits = [event.changes for event in referral.events.filter(kind=Kind.EDIT)]
    assert [change["field"] for change in edits[0]] == [
        "Direction",
        "Why out of network",
        "Conversion",
    ]
    back = {change["field"]: change["new"] for change in edits[1]}
    assert back["Conversion"] == "Counted as a partner-referral inquiry (inquiry)"
    assert not back["Why out of network"]  # cleared: only a referral sent out has one


def test_a_closed_referral_turned_inbound_counts_as_the_inquiry_it_lost(client_for, coordinator):
    # Logged as sent out by mistake: declined, and another closed after a no-show, both
    # closed before anyone noticed. Turned inbound, each is a lost inquiry, not an open one.
    now = timezone.now()
    provider = ProviderFactory(in_network=True)
    declined = _logged(direction="outbound", provider=provider)
    declined = referral_transition(
        referral=declined, to_status="declined", actor=None, decline_reason="Out of scope."
    )
    referral_transition(referral=declined, to_status="closed", actor=None)
    missed = _logged(direction="outbound", provider=provider, received_at=now - timedelta(days=6))
    for step, more in (
        ("accepted", {}),
        ("scheduled", {"appointment_at": now - timedelta(days=2)}),
        ("no_show", {}),
        ("closed", {}),
    ):
        missed = referral_transition(referral=missed, to_status=step, actor=None, **more)
    client = client_for(coordinator)
    for referral in (declined, missed):
        referral.refresh_from_db()
        client.post(
            reverse("referrals:update", args=[referral.pk]),
            _form_data(referral, direction="inbound"),
        )
    lost = Inquiry.objects.get(referral=declined)
    assert (lost.status, lost.missed_visit) == (Inquiry.Status.LOST, False)
    assert lost.lost_at is not None
    no_show = Inquiry.objects.get(referral=missed)
    assert (no_show.status, no_show.missed_visit) == (Inquiry.Status.LOST, True)
    assert no_show.scheduled_at is not None  # it reached scheduling before it was lost
    rows = Inquiry.objects.conversion_by_source(
        since=now - timedelta(days=30), until=now + timedelta(days=1)
    )
    counted = next(row for row in rows if row["source"] == "partner_referral")
    assert (counted["inquiries"], counted["scheduled"], counted["lost"]) == (2, 1, 2)
    assert Inquiry.objects.filter(referral__isnull=False).open().count() == 0


def test_assignment_and_edit_events_never_look_like_a_status_reached(coordinator):
    from django.db import IntegrityError, transaction

    referral = _logged()
    referral_claim(referral_id=referral.pk, user=coordinator)
    assert ReferralEvent.objects.filter(to_status="").count() == 1
    with pytest.raises(IntegrityError), transaction.atomic():
        ReferralEvent.objects.create(referral=referral, kind=Kind.ASSIGNMENT, to_status="seen")


def test_the_detail_page_runs_the_same_queries_however_many_hands_it_passed(
    client_for, coordinator, manager, django_assert_num_queries
):
    cora = UserFactory(username="cora", role=Role.COORDINATOR)
    referral = _logged()
    client = client_for(coordinator)
    client.get(referral.get_absolute_url())
    with django_assert_num_queries(12) as few:
        client.get(referral.get_absolute_url())
    # Read now: the captured slice is an index range into a bounded query log.
    expected = len(few.captured_queries)
    for assignee in (coordinator, cora, manager, None, cora):
        referral_assign(referral=referral, assignee=assignee, actor=manager)
    referral.refresh_from_db()
    client_for(manager).post(
        reverse("referrals:update", args=[referral.pk]), _form_data(referral, urgency="stat")
    )
    assert referral.events.count() == 7
    with django_assert_num_queries(expected):
        client.get(referral.get_absolute_url())


def test_the_history_keeps_what_each_move_decided(client_for, coordinator):
    from datetime import timedelta

    from django.utils import timezone

    from referrals.services.workflow import referral_transition

    referral = referral_log(
        referral=ReferralFactory.build(
            provider=ProviderFactory(), received_at=timezone.now() - timedelta(days=2)
        ),
        actor=None,
    )
    first = timezone.localtime(timezone.now() + timedelta(days=6)).replace(
        hour=10, minute=0, second=0, microsecond=0
    )
    second = first + timedelta(days=1, hours=4)
    referral = referral_transition(
        referral=referral,
        to_status="on_hold",
        actor=coordinator,
        hold_reason="Waiting for prior auth",
    )
    referral = referral_transition(referral=referral, to_status="accepted", actor=coordinator)
    referral = referral_transition(
        referral=referral, to_status="scheduled", actor=coordinator, appointment_at=first
    )
    referral = referral_transition(
        referral=referral, to_status="scheduled", actor=coordinator, appointment_at=second
    )
    referral_transition(
        referral=referral,
        to_status="cancelled",
        actor=coordinator,
        cancel_reason="Patient moved away",
    )
    page = client_for(coordinator).get(referral.get_absolute_url()).content.decode()
    details = re.findall(r"<div class=\"small\" data-detail>(.*?)</div>", page)
    booked = f"{first:%b} {first.day}, {first.year} 10:00 AM"
    moved = f"{second:%b} {second.day}, {second.year} 2:00 PM"
    assert "Reason: Waiting for prior auth" in details
    assert f"Appointment: {booked}" in details
    assert f"Appointment: {booked} → {moved}" in details
    assert "Reason: Patient moved away" in details


def test_the_received_date_cannot_be_moved_past_the_first_contact_or_the_appointment(
    client_for, coordinator
):
    from referrals.services.workflow import referral_transition

    referral = _logged(received_at=timezone.now() - timedelta(days=10))
    referral = referral_transition(
        referral=referral,
        to_status="accepted",
        actor=None,
        at=referral.received_at + timedelta(hours=2),
    )
    booked = timezone.now() - timedelta(days=5)
    referral = referral_transition(
        referral=referral, to_status="scheduled", actor=None, appointment_at=booked
    )
    client = client_for(coordinator)
    url = reverse("referrals:update", args=[referral.pk])
    typed = {
        # After the appointment: the turnaround report would count a negative wait.
        "after the appointment": timezone.now() - timedelta(days=1),
        # After the first answer to it: a first contact before the referral came in.
        "after the first contact": referral.received_at + timedelta(hours=3),
    }
    for what, moved in typed.items():
        response = client.post(
            url,
            _form_data(
                referral,
                received_at=timezone.localtime(moved).strftime("%Y-%m-%dT%H:%M"),
                version=referral.updated_at.isoformat(),
            ),
        )
        assert response.status_code == 200, what
        assert "received_at" in response.context["form"].errors, what
        # What was typed stays in the form.
        assert response.context["form"]["received_at"].value() == timezone.localtime(
            moved
        ).strftime("%Y-%m-%dT%H:%M")
        assert Referral.objects.get(pk=referral.pk).received_at == referral.received_at
    # Earlier is fine: the fax came in before it was logged.
    earlier = referral.received_at - timedelta(hours=5)
    response = client.post(
        url,
        _form_data(
            referral,
            received_at=timezone.localtime(earlier).strftime("%Y-%m-%dT%H:%M"),
            version=referral.updated_at.isoformat(),
        ),
    )
    assert response.status_code == 302


def _selected(page, name):
    """The value a browser sends for the select `name` as the page drew it: the option
    marked selected, else the first one."""
    select = re.search(rf'<select name="{name}".*?</select>', page, re.S).group(0)
    chosen = re.search(r'<option value="([^"]*)"[^>]*selected', select)
    return chosen.group(1) if chosen else re.search(r'<option value="([^"]*)"', select).group(1)


def test_an_edit_keeps_a_coordinator_who_is_no_longer_on_the_list(client_for, coordinator):
    # A coordinator who has left (deactivated) still holds their referrals until someone
    # hands them over; correcting the patient's phone must not silently unassign one.
    left = UserFactory(username="left", role=Role.COORDINATOR)
    referral = _logged(assigned_to=left, patient_phone="(402) 555-0100")
    left.is_active = False
    left.save()
    client = client_for(coordinator)
    url = reverse("referrals:update", args=[referral.pk])
    page = client.get(url).content.decode()
    assert _selected(page, "assigned_to") == str(left.pk)
    response = client.post(
        url,
        _form_data(
            referral,
            patient_phone="(402) 555-7777",
            assigned_to=_selected(page, "assigned_to"),
            version=referral.updated_at.isoformat(),
        ),
    )
    assert response.status_code == 302
    referral.refresh_from_db()
    assert referral.patient_phone == "(402) 555-7777"
    assert referral.assigned_to == left
    assert not referral.events.filter(kind=Kind.ASSIGNMENT).exists()
    # The detail page's Reassign shows who holds it, not "Nobody".
    detail = client.get(referral.get_absolute_url()).content.decode()
    assert _selected(detail, "assignee") == str(left.pk)
    # Nobody else off the list can be chosen.
    other = UserFactory(username="other-left", role=Role.COORDINATOR, is_active=False)
    refused = client.post(url, _form_data(referral, assigned_to=other.pk))
    assert refused.status_code == 200
    referral.refresh_from_db()
    assert referral.assigned_to == left
