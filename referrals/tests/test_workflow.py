from datetime import timedelta
from unittest import mock

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from core.factories import UserFactory
from partners.factories import ProviderFactory
from referrals.factories import ReferralFactory
from referrals.models import Referral, ReferralEvent, Status
from referrals.models.pipeline import REFERRAL_IN_STATUS
from referrals.services.workflow import referral_log, referral_transition

pytestmark = pytest.mark.django_db


@pytest.fixture
def referral():
    return referral_log(referral=ReferralFactory.build(provider=ProviderFactory()), actor=None)


def _walk(referral, *statuses, actor=None):
    for status in statuses:
        extra = {"appointment_at": timezone.now()} if status == Status.SCHEDULED else {}
        if status == Status.CANCELLED:
            extra = {"cancel_reason": "The patient moved away."}
        referral = referral_transition(referral=referral, to_status=status, actor=actor, **extra)
    return referral


def test_logging_a_referral_writes_its_first_event(referral):
    event = referral.events.get()
    assert (event.from_status, event.to_status) == ("", Status.RECEIVED)


def test_the_whole_pipeline_is_recorded_event_by_event(referral):
    actor = UserFactory()
    referral = _walk(
        referral,
        Status.ACCEPTED,
        Status.SCHEDULED,
        Status.SEEN,
        Status.REPORT_SENT,
        Status.CLOSED,
        actor=actor,
    )
    assert referral.status == Status.CLOSED
    assert referral.seen_at is not None and referral.closed_at is not None
    moves = list(referral.events.values_list("from_status", "to_status"))
    assert moves == [
        ("", "received"),
        ("received", "accepted"),
        ("accepted", "scheduled"),
        ("scheduled", "seen"),
        ("seen", "report_sent"),
        ("report_sent", "closed"),
    ]
    assert set(referral.events.exclude(from_status="").values_list("actor", flat=True)) == {
        actor.pk
    }


@pytest.mark.parametrize(
    ("path", "illegal"),
    [
        ([], Status.SEEN),
        ([], Status.CLOSED),
        ([Status.ACCEPTED], Status.REPORT_SENT),
        ([Status.CANCELLED, Status.CLOSED], Status.RECEIVED),
    ],
)
def test_an_illegal_move_is_refused_and_changes_nothing(referral, path, illegal):
    referral = _walk(referral, *path)
    events_before = referral.events.count()
    with pytest.raises(ValidationError, match="cannot move to"):
        referral_transition(referral=referral, to_status=illegal, actor=None)
    referral.refresh_from_db()
    assert referral.events.count() == events_before


def test_declining_needs_a_reason(referral):
    with pytest.raises(ValidationError, match="why"):
        referral_transition(referral=referral, to_status=Status.DECLINED, actor=None)
    referral = referral_transition(
        referral=referral, to_status=Status.DECLINED, actor=None, decline_reason="Out of scope"
    )
    assert referral.decline_reason == "Out of scope"


def test_cancelling_needs_a_reason_which_the_referral_keeps(referral):
    with pytest.raises(ValidationError, match="why"):
        referral_transition(referral=referral, to_status=Status.CANCELLED, actor=None)
    assert referral.events.count() == 1
    referral = referral_transition(
        referral=referral,
        to_status=Status.CANCELLED,
        actor=None,
        cancel_reason="  The patient chose a practice closer to home.  ",
    )
    referral.refresh_from_db()
    assert (referral.status, referral.cancel_reason) == (
        Status.CANCELLED,
        "The patient chose a practice closer to home.",
    )


def test_scheduling_needs_an_appointment(referral):
    referral = _walk(referral, Status.ACCEPTED)
    with pytest.raises(ValidationError, match="appointment"):
        referral_transition(referral=referral, to_status=Status.SCHEDULED, actor=None)


def test_an_appointment_before_the_referral_arrived_is_refused_as_a_likely_typo(referral):
    referral = _walk(referral, Status.ACCEPTED)
    received = timezone.localtime(referral.received_at)
    with pytest.raises(ValidationError, match="before the referral was received"):
        referral_transition(
            referral=referral,
            to_status=Status.SCHEDULED,
            actor=None,
            appointment_at=received.replace(year=received.year - 6),
        )
    with pytest.raises(ValidationError, match="more than a year away"):
        referral_transition(
            referral=referral,
            to_status=Status.SCHEDULED,
            actor=None,
            appointment_at=timezone.now() + timedelta(days=400),
        )
    referral.refresh_from_db()
    assert (referral.status, referral.appointment_at) == (Status.ACCEPTED, None)
    # The day it arrived, or months ahead, is fine.
    same_day = received.replace(hour=23, minute=59, second=59, microsecond=999999)
    referral = referral_transition(
        referral=referral, to_status=Status.SCHEDULED, actor=None, appointment_at=same_day
    )
    assert referral.appointment_at == same_day


def test_a_stale_copy_cannot_move_a_referral_twice_from_the_same_status(referral):
    stale = Referral.objects.get(pk=referral.pk)
    _walk(referral, Status.ACCEPTED)
    with pytest.raises(ValidationError):
        referral_transition(referral=stale, to_status=Status.ACCEPTED, actor=None)
    assert ReferralEvent.objects.filter(to_status=Status.ACCEPTED).count() == 1


@pytest.mark.parametrize("dob", ["0001-01-01", "1066-10-14", "1899-12-31"])
def test_a_birth_date_before_1900_is_refused_as_a_likely_typo(dob):
    from datetime import date

    referral = ReferralFactory.build(
        provider=ProviderFactory(), patient_dob=date.fromisoformat(dob)
    )
    with pytest.raises(ValidationError, match="before 1900"):
        referral_log(referral=referral, actor=None)
    assert not Referral.objects.exists()


def test_a_reason_longer_than_5000_characters_is_refused_with_what_to_do_instead():
    referral = ReferralFactory.build(provider=ProviderFactory(), reason="knee " * 1001)
    with pytest.raises(ValidationError, match="attach the full notes as a document"):
        referral_log(referral=referral, actor=None)
    referral = ReferralFactory.build(provider=ProviderFactory(), reason="k" * 5000)
    assert referral_log(referral=referral, actor=None).pk


def test_a_birth_date_in_the_future_is_refused():
    referral = ReferralFactory.build(
        provider=ProviderFactory(), patient_dob=timezone.localdate() + timedelta(days=1)
    )
    with pytest.raises(ValidationError, match="future"):
        referral_log(referral=referral, actor=None)
    assert not Referral.objects.exists()


def test_seeing_an_inbound_patient_enqueues_the_thank_you_after_commit(
    referral, django_capture_on_commit_callbacks
):
    referral = _walk(referral, Status.ACCEPTED, Status.SCHEDULED)
    with mock.patch("outreach.tasks.prepare_loop_message.apply_async") as send:
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            referral_transition(referral=referral, to_status=Status.SEEN, actor=None)
        send.assert_not_called()  # nothing leaves before the commit
        for callback in callbacks:
            callback()
    send.assert_called_once_with(args=(referral.pk, Status.SEEN), retry=False)


def test_an_outbound_referral_being_seen_thanks_nobody(django_capture_on_commit_callbacks):
    referral = referral_log(
        referral=ReferralFactory.build(
            provider=ProviderFactory(), direction=Referral.Direction.OUTBOUND
        ),
        actor=None,
    )
    referral = _walk(referral, Status.ACCEPTED, Status.SCHEDULED)
    with django_capture_on_commit_callbacks() as callbacks:
        referral_transition(referral=referral, to_status=Status.SEEN, actor=None)
    assert callbacks == []


def test_a_patient_cannot_be_marked_seen_before_the_day_of_their_appointment(referral):
    referral = _walk(referral, Status.ACCEPTED)
    in_five_days = timezone.now() + timedelta(days=5)
    referral = referral_transition(
        referral=referral, to_status=Status.SCHEDULED, actor=None, appointment_at=in_five_days
    )
    with pytest.raises(ValidationError, match="can be marked seen from that day on"):
        referral_transition(referral=referral, to_status=Status.SEEN, actor=None)
    referral.refresh_from_db()
    assert (referral.status, referral.seen_at) == (Status.SCHEDULED, None)
    assert not referral.events.filter(to_status=Status.SEEN).exists()
    # On the day the patient is seen.
    seen = referral_transition(
        referral=referral, to_status=Status.SEEN, actor=None, at=in_five_days
    )
    assert seen.status == Status.SEEN


def test_a_patient_marked_seen_days_later_was_seen_at_the_appointment():
    """The coordinator catches up on Friday with Tuesday's patients: the referral (and the
    thank-you's "we saw them on") says Tuesday. Marked on the day, it is the moment marked."""
    received = timezone.now() - timedelta(days=10)
    referral = referral_log(
        referral=ReferralFactory.build(provider=ProviderFactory(), received_at=received),
        actor=None,
    )
    referral = referral_transition(referral=referral, to_status=Status.ACCEPTED, actor=None)
    appointment = timezone.now() - timedelta(days=3)
    referral = referral_transition(
        referral=referral, to_status=Status.SCHEDULED, actor=None, appointment_at=appointment
    )
    seen = referral_transition(referral=referral, to_status=Status.SEEN, actor=None)
    assert seen.seen_at == appointment

    today = referral_log(referral=ReferralFactory.build(provider=ProviderFactory()), actor=None)
    today = referral_transition(referral=today, to_status=Status.ACCEPTED, actor=None)
    today = referral_transition(
        referral=today, to_status=Status.SCHEDULED, actor=None, appointment_at=timezone.now()
    )
    before = timezone.now()
    assert referral_transition(referral=today, to_status=Status.SEEN, actor=None).seen_at >= before


def test_an_appointment_earlier_on_the_day_the_referral_arrived_is_refused():
    received = timezone.localtime().replace(hour=11, minute=4, second=0, microsecond=0)
    received -= timedelta(days=10)
    referral = referral_log(
        referral=ReferralFactory.build(provider=ProviderFactory(), received_at=received),
        actor=None,
    )
    referral = _walk(referral, Status.ACCEPTED)
    with pytest.raises(ValidationError) as refused:
        referral_transition(
            referral=referral,
            to_status=Status.SCHEDULED,
            actor=None,
            appointment_at=received.replace(hour=9, minute=0),
        )
    assert refused.value.message_dict["appointment_at"] == [
        "The appointment is before the referral was received "
        f"({received:%b %-d, %Y} at 11:04 AM): check the date and time."
    ]
    # Later that day is fine.
    referral = referral_transition(
        referral=referral,
        to_status=Status.SCHEDULED,
        actor=None,
        appointment_at=received.replace(hour=15, minute=30),
    )
    assert referral.status == Status.SCHEDULED


def test_a_no_show_is_refused_until_the_appointment_time_has_passed(referral):
    referral = _walk(referral, Status.ACCEPTED)
    in_an_hour = timezone.now() + timedelta(hours=1)
    referral = referral_transition(
        referral=referral, to_status=Status.SCHEDULED, actor=None, appointment_at=in_an_hour
    )
    with pytest.raises(ValidationError, match="a no-show can be marked once that time has passed"):
        referral_transition(referral=referral, to_status=Status.NO_SHOW, actor=None)
    referral.refresh_from_db()
    assert referral.status == Status.SCHEDULED
    assert not referral.events.filter(to_status=Status.NO_SHOW).exists()
    missed = referral_transition(
        referral=referral,
        to_status=Status.NO_SHOW,
        actor=None,
        at=in_an_hour + timedelta(minutes=1),
    )
    assert missed.status == Status.NO_SHOW


@pytest.mark.parametrize(
    ("path", "illegal", "said"),
    [
        ([Status.ACCEPTED], Status.ACCEPTED, "An accepted referral cannot move to accepted."),
        ([Status.ON_HOLD], Status.ON_HOLD, "A referral on hold cannot move to on hold."),
        (
            [Status.ACCEPTED, Status.SCHEDULED, Status.SEEN, Status.REPORT_SENT],
            Status.SEEN,
            "A referral whose report was sent cannot move to seen.",
        ),
    ],
)
def test_a_refused_move_is_explained_in_a_sentence_that_reads_right(referral, path, illegal, said):
    referral = _walk(referral, *path)
    with pytest.raises(ValidationError) as refused:
        referral_transition(referral=referral, to_status=illegal, actor=None)
    assert refused.value.messages == [said]


def test_every_status_has_words_for_a_referral_in_it():
    assert set(REFERRAL_IN_STATUS) == set(Status.values)
