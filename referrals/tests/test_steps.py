"""The next-step forms on a referral's page: a refused step comes back open with what was
typed, and a step waits for the appointment time when it must."""

import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from partners.factories import ProviderFactory
from referrals.factories import ReferralFactory
from referrals.models import Status
from referrals.services.workflow import referral_log, referral_transition

pytestmark = pytest.mark.django_db


def _logged(**kwargs):
    return referral_log(
        referral=ReferralFactory.build(provider=ProviderFactory(), **kwargs), actor=None
    )


def _step(page: str, status: str) -> str:
    """The <details> of one step, as drawn."""
    found = re.search(rf'<details[^>]*data-step="{status}".*?</details>', page, re.S)
    assert found, f"no {status} step on the page"
    return found.group(0)


@pytest.mark.parametrize("htmx", [True, False], ids=["htmx", "plain post"])
def test_a_refused_decline_comes_back_open_with_its_error_and_what_was_typed(
    client_for, coordinator, htmx
):
    referral = _logged()
    too_long = "Out of scope " + "x" * 300
    response = client_for(coordinator).post(
        reverse("referrals:transition", args=[referral.pk]),
        {"to_status": "declined", "decline_reason": too_long, "note": "Called the office"},
        **({"HTTP_HX_REQUEST": "true"} if htmx else {}),
    )
    assert response.status_code == 200
    page = response.content.decode()
    assert ("<html" in page) is not htmx
    step = _step(page, "declined")
    assert re.match(r"<details[^>]* open>", step)
    assert f'value="{too_long}"' in step
    assert 'value="Called the office"' in step
    assert 'class="invalid-feedback mb-2" id="decline_reason-' in step
    assert "Ensure this value has at most 300 characters" in step
    assert 'aria-invalid="true"' in step
    # The other steps stay closed and empty.
    assert not re.match(r"<details[^>]* open>", _step(page, "cancelled"))
    referral.refresh_from_db()
    assert referral.status == Status.RECEIVED


def test_a_refused_appointment_comes_back_open_with_the_date_typed_and_why(client_for, coordinator):
    referral = referral_transition(
        referral=_logged(received_at=timezone.now() - timedelta(days=3)),
        to_status=Status.ACCEPTED,
        actor=None,
    )
    too_early = timezone.localtime(referral.received_at) - timedelta(days=2)
    typed = f"{too_early:%Y-%m-%dT%H:%M}"
    response = client_for(coordinator).post(
        reverse("referrals:transition", args=[referral.pk]),
        {"to_status": "scheduled", "appointment_at": typed, "note": "Dr. Lee's list"},
        HTTP_HX_REQUEST="true",
    )
    step = _step(response.content.decode(), "scheduled")
    assert re.match(r"<details[^>]* open>", step)
    assert f'value="{typed}"' in step and 'value="Dr. Lee&#39;s list"' in step
    assert "before the referral was received" in step
    assert 'aria-describedby="appt-' in step
    referral.refresh_from_db()
    assert (referral.status, referral.appointment_at) == (Status.ACCEPTED, None)


def test_a_step_that_went_through_is_drawn_closed_and_empty_again(client_for, coordinator):
    referral = _logged()
    response = client_for(coordinator).post(
        reverse("referrals:transition", args=[referral.pk]),
        {"to_status": "accepted"},
        HTTP_HX_REQUEST="true",
    )
    step = _step(response.content.decode(), "scheduled")
    assert not re.match(r"<details[^>]* open>", step)
    assert 'name="appointment_at" value=""' in step


def test_no_show_is_offered_only_once_the_appointment_time_has_passed(client_for, coordinator):
    referral = _logged(received_at=timezone.now() - timedelta(days=3))
    referral = referral_transition(referral=referral, to_status=Status.ACCEPTED, actor=None)
    # Later today (seen is offered from the appointment's day on): an hour from now, or
    # just before midnight if that is sooner.
    end_of_day = timezone.localtime().replace(hour=23, minute=59, second=59, microsecond=0)
    later_today = min(timezone.now() + timedelta(hours=1), end_of_day)
    referral = referral_transition(
        referral=referral, to_status=Status.SCHEDULED, actor=None, appointment_at=later_today
    )
    client = client_for(coordinator)
    page = client.get(referral.get_absolute_url()).content.decode()
    assert 'value="no_show"' not in page
    assert "a no-show can be marked once that time has passed" in page
    assert 'value="seen"' in page  # patients come early: seen is offered on the day

    # By URL it is refused, with the reason.
    response = client.post(
        reverse("referrals:transition", args=[referral.pk]),
        {"to_status": "no_show"},
        HTTP_HX_REQUEST="true",
    )
    assert "a no-show can be marked once that time has passed" in response.content.decode()
    referral.refresh_from_db()
    assert referral.status == Status.SCHEDULED

    # Once the time has passed it is offered, and asks before the letter goes.
    referral = referral_transition(
        referral=referral,
        to_status=Status.SCHEDULED,
        actor=None,
        appointment_at=timezone.now() - timedelta(hours=1),
    )
    page = client.get(referral.get_absolute_url()).content.decode()
    assert 'value="no_show"' in page
    assert "once that time has passed" not in page
    no_show = re.search(r'(<form[^>]*>)(?:(?!</form>).)*value="no_show"', page, re.S)
    assert no_show and re.search(r'data-confirm="[^"]*letter[^"]*"', no_show.group(1))


def test_seen_is_offered_from_the_appointment_s_day_on_not_before(client_for, coordinator):
    referral = referral_transition(referral=_logged(), to_status=Status.ACCEPTED, actor=None)
    next_week = timezone.now() + timedelta(days=7)
    referral = referral_transition(
        referral=referral, to_status=Status.SCHEDULED, actor=None, appointment_at=next_week
    )
    page = client_for(coordinator).get(referral.get_absolute_url()).content.decode()
    # Not a button the service would then refuse: the page says when it can be done.
    assert 'value="seen"' not in page
    assert "the patient can be marked seen from that day on" in page


def test_a_step_taken_on_a_page_a_colleague_has_since_changed_is_refused(
    client_for, coordinator, manager
):
    """Tab A books the appointment; tab B, still showing "Accepted", cancels: B's cancel
    must not undo A's booking (nor send the office a cancellation letter)."""
    referral = referral_transition(
        referral=_logged(), to_status=Status.ACCEPTED, actor=None, at=timezone.now()
    )
    client = client_for(coordinator)
    url = reverse("referrals:detail", args=[referral.pk])
    version = re.search(r'name="version" value="([^"]+)"', client.get(url).content.decode())[1]
    booked = timezone.now() + timedelta(days=3)
    referral_transition(
        referral=referral, to_status=Status.SCHEDULED, actor=manager, appointment_at=booked
    )
    cancel = {"to_status": "cancelled", "cancel_reason": "Patient moved away", "version": version}
    response = client.post(
        reverse("referrals:transition", args=[referral.pk]), cancel, HTTP_HX_REQUEST="true"
    )
    page = response.content.decode()
    assert "Someone changed this referral after you opened it (it is now Scheduled" in page
    referral.refresh_from_db()
    assert referral.status == Status.SCHEDULED and referral.appointment_at == booked
    # The page drawn with the refusal carries the current version: cancelling from it,
    # having seen the booking, goes through.
    fresh = re.search(r'name="version" value="([^"]+)"', page)[1]
    assert fresh == referral.updated_at.isoformat()
    client.post(reverse("referrals:transition", args=[referral.pk]), {**cancel, "version": fresh})
    referral.refresh_from_db()
    assert referral.status == Status.CANCELLED


def test_booking_again_is_offered_as_reschedule():
    from referrals.models import Referral

    referral = Referral(status="accepted", direction="inbound")
    assert referral.action_label("scheduled") == "Schedule"
    for status in ("scheduled", "no_show"):
        referral.status = status
        assert referral.action_label("scheduled") == "Reschedule"


@pytest.mark.parametrize("version", ["yesterday", "2026-12-01T09:00:00"])
def test_a_step_with_a_version_the_page_never_sends_is_refused_and_says_why(
    client_for, coordinator, version
):
    referral = _logged()
    response = client_for(coordinator).post(
        reverse("referrals:transition", args=[referral.pk]),
        {"to_status": "declined", "decline_reason": "Out of scope", "version": version},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 200
    page = response.content.decode()
    # An error of no field of the step's is said above the steps; the step stays open.
    assert 'role="alert">The page was not understood: reload it and try again.<' in page
    assert 'value="Out of scope"' in _step(page, "declined")
    referral.refresh_from_db()
    assert referral.status == Status.RECEIVED
