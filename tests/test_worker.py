"""The loop end to end through a real Celery worker process and the real broker."""

from __future__ import annotations

from datetime import datetime, timedelta
from unittest import mock

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from conftest import wait_for
from core.factories import UserFactory
from core.roles import Role
from outreach.models import Letter, LetterTemplate, Task
from outreach.tasks import sweep_loop_work
from partners.factories import ProviderFactory
from referrals.factories import ReferralFactory
from referrals.models import Referral, Status
from referrals.services.workflow import referral_log, referral_transition

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def _scheduled_referral(owner: User, *, at: datetime | None = None) -> Referral:
    """A referral received an hour before `at` (now by default), booked for `at`."""
    at = at or timezone.now()
    provider = ProviderFactory(owner=owner, email="dr.wiebe@example.org")
    referral = referral_log(
        referral=ReferralFactory.build(
            provider=provider, patient_last_name="Quixotrel", received_at=at - timedelta(hours=1)
        ),
        actor=owner,
    )
    referral = referral_transition(referral=referral, to_status=Status.ACCEPTED, actor=owner)
    return referral_transition(
        referral=referral,
        to_status=Status.SCHEDULED,
        actor=owner,
        appointment_at=at,
    )


def test_marking_a_referral_seen_makes_the_worker_create_the_thank_you(celery_worker_process):
    liaison = UserFactory(role=Role.LIAISON)
    referral = _scheduled_referral(liaison)

    referral_transition(referral=referral, to_status=Status.SEEN, actor=liaison)

    task = wait_for(
        lambda: Task.objects.filter(referral=referral, kind=Task.Kind.THANK_YOU).first(),
        what="the thank-you task",
    )
    letter = Letter.objects.get(referral=referral, kind=LetterTemplate.Kind.THANK_YOU)
    assert task.assignee == liaison
    assert referral.patient_initials in letter.body
    assert referral.patient_last_name not in letter.body
    assert letter.status == Letter.Status.PENDING
    assert "prepare_loop_message" in celery_worker_process.log


def test_a_due_thank_you_is_delivered_by_the_worker(celery_worker_process):
    LetterTemplate.objects.create(
        kind=LetterTemplate.Kind.THANK_YOU,
        subject="Thanks for {{ patient_initials }}",
        body="Dear {{ provider_name }}, thank you.",
        delay_business_days=0,
    )
    liaison = UserFactory(role=Role.LIAISON)
    # Booked and seen on a business day in the practice's time zone (on a weekend, the
    # Friday before, at noon), so the letter is due at once.
    seen_at = timezone.localtime()
    if seen_at.weekday() >= 5:
        while seen_at.weekday() >= 5:
            seen_at -= timedelta(days=1)
        seen_at = seen_at.replace(hour=12, minute=0, second=0, microsecond=0)
    referral = _scheduled_referral(liaison, at=seen_at)

    referral_transition(referral=referral, to_status=Status.SEEN, actor=liaison, at=seen_at)

    letter = wait_for(
        lambda: Letter.objects.filter(
            referral=referral, kind=LetterTemplate.Kind.THANK_YOU, status=Letter.Status.SENT
        ).first(),
        what="the letter to be sent",
    )
    assert letter.channel == Letter.Channel.EMAIL
    assert letter.recipient == "dr.wiebe@example.org"
    assert letter.attempts == 1


def test_the_sweep_recovers_a_thank_you_whose_enqueue_was_lost(celery_worker_process):
    liaison = UserFactory(role=Role.LIAISON)
    referral = _scheduled_referral(liaison)
    # The broker "loses" the message: nothing is enqueued on commit.
    with mock.patch("outreach.tasks.prepare_loop_message.apply_async"):
        referral_transition(referral=referral, to_status=Status.SEEN, actor=liaison)
    assert not Task.objects.filter(referral=referral).exists()

    sweep_loop_work.delay()

    wait_for(
        lambda: Task.objects.filter(referral=referral, kind=Task.Kind.THANK_YOU).exists(),
        what="the sweep to create the thank-you task",
    )
    assert Letter.objects.filter(referral=referral, kind=LetterTemplate.Kind.THANK_YOU).count() == 1
