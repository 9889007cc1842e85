"""A rescheduled appointment gives the referrer a new notice with the new date: one per
appointment change, never two for the same one, and recovered by the sweep."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from outreach.models import Letter, LetterTemplate
from outreach.services import letters, loop
from partners.factories import ProviderFactory
from referrals.factories import ReferralFactory
from referrals.models import Status
from referrals.services.workflow import referral_log, referral_transition

pytestmark = pytest.mark.django_db

K = LetterTemplate.Kind


def _scheduled(at: datetime):
    referral = referral_log(
        referral=ReferralFactory.build(provider=ProviderFactory(email="dr.wiebe@example.org")),
        actor=None,
    )
    referral = referral_transition(referral=referral, to_status=Status.ACCEPTED, actor=None)
    return referral_transition(
        referral=referral, to_status=Status.SCHEDULED, actor=None, appointment_at=at
    )


def _long(at: datetime) -> str:
    return f"{timezone.localtime(at):%B %-d, %Y at %-I:%M %p}"


def _notices(referral):
    return list(Letter.objects.filter(referral=referral, kind=K.SCHEDULED).order_by("sequence"))


def test_each_appointment_change_gives_one_notice_with_its_date():
    first = timezone.now() + timedelta(days=3)
    second = first + timedelta(days=7)
    referral = _scheduled(first)
    loop.loop_message_prepare(referral_id=referral.pk, status=Status.SCHEDULED)
    Letter.objects.filter(referral=referral).update(status=Letter.Status.SENT)

    referral = referral_transition(
        referral=referral, to_status=Status.SCHEDULED, actor=None, appointment_at=second
    )
    for _ in range(3):  # the task, a retry and the sweep
        loop.loop_message_prepare(referral_id=referral.pk, status=Status.SCHEDULED)

    notices = _notices(referral)
    assert [n.sequence for n in notices] == [1, 2]
    assert _long(first) in notices[0].body
    assert _long(second) in notices[1].body and _long(first) not in notices[1].body
    assert notices[1].subject.startswith("Update: ")
    assert notices[1].status == Letter.Status.PENDING
    assert notices[0].message_id != notices[1].message_id


def test_a_notice_not_yet_sent_gives_way_to_the_new_appointment():
    referral = _scheduled(timezone.now() + timedelta(days=3))
    loop.loop_message_prepare(referral_id=referral.pk, status=Status.SCHEDULED)
    referral = referral_transition(
        referral=referral,
        to_status=Status.SCHEDULED,
        actor=None,
        appointment_at=timezone.now() + timedelta(days=9),
    )

    loop.loop_message_prepare(referral_id=referral.pk, status=Status.SCHEDULED)

    old, new = _notices(referral)
    assert old.status == Letter.Status.CANCELLED
    assert old.last_error == "Superseded by a reschedule"
    assert new.status == Letter.Status.PENDING


def test_a_notice_waiting_in_the_print_queue_gives_way_to_the_new_appointment():
    """A notice for an office without email waits in the print and fax queue until
    someone prints it: not yet on its way, it is withdrawn too, or the office would be
    faxed the old date."""
    first = timezone.now() + timedelta(days=3)
    referral = _scheduled(first)
    loop.loop_message_prepare(referral_id=referral.pk, status=Status.SCHEDULED)
    Letter.objects.filter(referral=referral).update(status=Letter.Status.PRINT_QUEUE)
    referral = referral_transition(
        referral=referral,
        to_status=Status.SCHEDULED,
        actor=None,
        appointment_at=timezone.now() + timedelta(days=9),
    )

    loop.loop_message_prepare(referral_id=referral.pk, status=Status.SCHEDULED)

    old, new = _notices(referral)
    assert _long(first) in old.body
    assert old.status == Letter.Status.CANCELLED
    assert not Letter.objects.print_queue().filter(pk=old.pk).exists()
    assert new.status == Letter.Status.PENDING


def test_two_changes_before_any_notice_send_only_the_latest_date():
    """The task of the first change runs after the second: it must not send the old date."""
    referral = _scheduled(timezone.now() + timedelta(days=3))
    latest = timezone.now() + timedelta(days=20)
    referral = referral_transition(
        referral=referral, to_status=Status.SCHEDULED, actor=None, appointment_at=latest
    )

    loop.loop_message_prepare(referral_id=referral.pk, status=Status.SCHEDULED)
    loop.loop_message_prepare(referral_id=referral.pk, status=Status.SCHEDULED)

    (notice,) = _notices(referral)
    assert notice.sequence == 2 and _long(latest) in notice.body


def test_the_sweep_finds_a_lost_reschedule_notice_and_only_that():
    referral = _scheduled(timezone.now() + timedelta(days=3))
    loop.loop_message_prepare(referral_id=referral.pk, status=Status.RECEIVED)
    loop.loop_message_prepare(referral_id=referral.pk, status=Status.SCHEDULED)
    assert (referral.pk, Status.SCHEDULED) not in loop.referral_events_missing_messages()

    referral_transition(
        referral=referral,
        to_status=Status.SCHEDULED,
        actor=None,
        appointment_at=timezone.now() + timedelta(days=10),
    )
    assert (referral.pk, Status.SCHEDULED) in loop.referral_events_missing_messages()

    loop.loop_message_prepare(referral_id=referral.pk, status=Status.SCHEDULED)
    assert (referral.pk, Status.SCHEDULED) not in loop.referral_events_missing_messages()
    assert [n.sequence for n in _notices(referral)] == [1, 2]


def test_the_database_refuses_a_second_notice_for_the_same_appointment():
    from django.db import IntegrityError, transaction

    referral = _scheduled(timezone.now() + timedelta(days=3))
    _task, notice = loop.loop_message_prepare(referral_id=referral.pk, status=Status.SCHEDULED)
    notice.pk = None
    notice.message_id = letters.new_message_id()
    with pytest.raises(IntegrityError), transaction.atomic():
        notice.save()


def test_rebooking_the_same_time_is_refused_and_sends_no_update(client_for, coordinator):
    from django.urls import reverse

    from referrals.models import ReferralEvent

    at = (timezone.now() + timedelta(days=3)).replace(second=0, microsecond=0)
    referral = _scheduled(at)
    loop.loop_message_prepare(referral_id=referral.pk, status=Status.SCHEDULED)
    events = ReferralEvent.objects.filter(referral=referral).count()

    with pytest.raises(ValidationError) as refused:
        referral_transition(
            referral=referral, to_status=Status.SCHEDULED, actor=None, appointment_at=at
        )
    assert "already scheduled for that time" in str(refused.value)

    # The same through the page: the coordinator is told, nothing is written or sent.
    response = client_for(coordinator).post(
        reverse("referrals:transition", args=[referral.pk]),
        {
            "to_status": Status.SCHEDULED,
            "appointment_at": timezone.localtime(at).strftime("%Y-%m-%dT%H:%M"),
        },
        HTTP_HX_REQUEST="true",
    )
    assert "already scheduled for that time" in response.content.decode()
    assert ReferralEvent.objects.filter(referral=referral).count() == events
    loop.loop_message_prepare(referral_id=referral.pk, status=Status.SCHEDULED)
    assert [notice.sequence for notice in _notices(referral)] == [1]


def test_a_notice_written_as_the_appointment_moves_does_not_go_out_with_the_old_date(
    monkeypatch,
):
    # The worker preparing the first notice has read the referral; before it writes the
    # letter, the coordinator rebooks and another worker sends the notice of the new date.
    first = timezone.now() + timedelta(days=3)
    second = first + timedelta(days=7)
    referral = _scheduled(first)
    real_template_for = loop.letter_template_for
    moved = []

    def template_for(kind):
        if not moved:
            moved.append(
                referral_transition(
                    referral=referral, to_status=Status.SCHEDULED, actor=None, appointment_at=second
                )
            )
            loop.loop_message_prepare(referral_id=referral.pk, status=Status.SCHEDULED)
        return real_template_for(kind)

    monkeypatch.setattr(loop, "letter_template_for", template_for)
    loop.loop_message_prepare(referral_id=referral.pk, status=Status.SCHEDULED)

    waiting = [
        notice
        for notice in _notices(referral)
        if notice.status in (Letter.Status.PENDING, Letter.Status.PRINT_QUEUE)
    ]
    assert [notice.sequence for notice in waiting] == [2]
    assert _long(second) in waiting[0].body
