"""Letters through a real Celery worker to a real SMTP server on loopback: every step of
the loop, a rollback, a refusing server, and a worker killed in the middle of a batch."""

from __future__ import annotations

import signal
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import transaction
from django.utils import timezone

from bench.smtp_sink import SmtpSink
from conftest import WorkerProcess, wait_for, worker_with_env
from core.factories import UserFactory
from core.roles import Role
from outreach.models import Letter, LetterTemplate
from outreach.tasks import deliver_letter, sweep_loop_work
from partners.factories import ProviderFactory
from referrals.factories import ReferralFactory
from referrals.models import Referral, Status
from referrals.services.workflow import referral_log, referral_transition

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

K = LetterTemplate.Kind

WORKER_ENV = {
    # A claim older than this is presumed dead: short, so the test need not wait minutes.
    "LETTER_STALE_CLAIM_SECONDS": "3",
    "LETTER_RETRY_BACKOFF_SECONDS": "1",
    "EMAIL_TIMEOUT": "3",
}


@pytest.fixture(scope="module")
def sink() -> Iterator[SmtpSink]:
    server = SmtpSink().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def smtp_worker(
    celery_worker_process: WorkerProcess,
    sink: SmtpSink,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[WorkerProcess]:
    """The session's worker, restarted to deliver email to the loopback SMTP sink."""
    log = tmp_path_factory.mktemp("smtp-worker") / "worker.log"
    with worker_with_env(
        celery_worker_process, {**WORKER_ENV, "TEST_WORKER_EMAIL_URL": sink.url}, log
    ) as worker:
        yield worker


@pytest.fixture(autouse=True)
def clean_sink(sink: SmtpSink) -> None:
    sink.refuse = False
    with sink.lock:
        sink.received.clear()
        sink.messages.clear()


def _message_id(referral: Any, kind: str) -> str:
    letter = wait_for(
        lambda: Letter.objects.filter(referral=referral, kind=kind, status="sent").first(),
        what=f"the {kind} letter to be sent",
    )
    return letter.message_id


def test_every_step_of_an_inbound_referral_reaches_the_referrer_once(smtp_worker, sink):
    coordinator = UserFactory.create(role=Role.COORDINATOR)
    provider = ProviderFactory.create(email="dr.wiebe@example.org")
    referral = referral_log(
        referral=ReferralFactory.build(provider=provider, patient_last_name="Olsen"),
        actor=coordinator,
    )
    ack = _message_id(referral, K.ACKNOWLEDGMENT)

    for status in (Status.ACCEPTED, Status.SCHEDULED):
        referral = referral_transition(
            referral=referral,
            to_status=status,
            actor=coordinator,
            # Today: a patient is marked seen on the day of the appointment.
            appointment_at=timezone.now(),
        )
    scheduled = _message_id(referral, K.SCHEDULED)
    referral = referral_transition(referral=referral, to_status=Status.SEEN, actor=coordinator)
    referral = referral_transition(
        referral=referral, to_status=Status.REPORT_SENT, actor=coordinator
    )
    outcome = _message_id(referral, K.OUTCOME)

    # The thank-you waits for its due date (two business days) in the database.
    thank_you = Letter.objects.get(referral=referral, kind=K.THANK_YOU)
    assert thank_you.status == Letter.Status.PENDING
    assert dict(sink.received) == {ack: 1, scheduled: 1, outcome: 1}
    for message in sink.messages:
        assert message["To"] == "dr.wiebe@example.org"
        assert "Olsen" not in message.as_string()
        assert message.is_multipart()  # text and HTML


def test_a_rolled_back_referral_sends_nothing(smtp_worker, sink):
    provider = ProviderFactory.create(email="rollback@example.org")

    class Abandon(Exception):
        pass

    with pytest.raises(Abandon), transaction.atomic():
        referral_log(referral=ReferralFactory.build(provider=provider), actor=None)
        raise Abandon

    # A committed referral after it: once its acknowledgment arrives, the worker has
    # worked through everything published before it.
    later = referral_log(
        referral=ReferralFactory.build(provider=ProviderFactory.create(email="later@example.org")),
        actor=None,
    )
    ack = _message_id(later, K.ACKNOWLEDGMENT)
    assert dict(sink.received) == {ack: 1}
    assert not Referral.objects.filter(provider=provider).exists()
    assert not Letter.objects.filter(provider=provider).exists()


def test_a_refusing_smtp_server_is_retried_with_backoff_then_the_letter_shows_failed(
    smtp_worker, sink
):
    sink.refuse = True
    referral = referral_log(
        referral=ReferralFactory.build(
            provider=ProviderFactory.create(email="refused@example.org")
        ),
        actor=None,
    )
    letter = wait_for(
        lambda: Letter.objects.filter(referral=referral, status=Letter.Status.FAILED).first(),
        timeout=90,
        what="the refused letter to be marked failed",
    )
    assert letter.attempts == 5
    assert letter.last_error == "SMTPDataError on attempt 5"
    assert sink.total == 0
    assert smtp_worker.log.count("Retry in") >= 4


def _batch(count: int) -> list[Letter]:
    provider = ProviderFactory.create(email="batch@example.org")
    return Letter.objects.bulk_create(
        Letter(
            kind=K.NEWSLETTER,
            provider=provider,
            subject=f"Newsletter {number}",
            body="News from the practice.",
            due_on=timezone.localdate(),
            channel=Letter.Channel.EMAIL,
            recipient="batch@example.org",
            message_id=f"<{uuid.uuid4().hex}@test.referral-crm>",
        )
        for number in range(count)
    )


def test_a_worker_killed_mid_batch_loses_no_letter_and_sends_none_twice(smtp_worker, sink):
    letters = _batch(300)
    for letter in letters:
        deliver_letter.delay(letter.pk)
    wait_for(lambda: sink.total >= 20, what="the batch to start arriving")

    smtp_worker.process.send_signal(signal.SIGKILL)
    smtp_worker.process.wait()
    in_flight = set(
        Letter.objects.filter(status=Letter.Status.SENDING).values_list("message_id", flat=True)
    )
    arrived_before_restart = sink.total
    assert arrived_before_restart < len(letters), "the kill must land mid-batch"

    smtp_worker.start()

    last_sweep = [0.0]

    def all_sent() -> bool:
        # Beat's job, every few seconds: re-drive due letters and abandoned claims.
        if time.monotonic() - last_sweep[0] > 3:
            sweep_loop_work.delay()
            last_sweep[0] = time.monotonic()
        return (
            not Letter.objects.filter(pk__in=[letter.pk for letter in letters])
            .exclude(status=Letter.Status.SENT)
            .exists()
        )

    wait_for(all_sent, timeout=180, what="every letter of the batch to be sent")
    wait_for(lambda: sink.total >= len(letters), what="the sink to see every letter")

    expected = {letter.message_id for letter in letters}
    assert set(sink.received) == expected, "no letter lost"
    twice = {message_id for message_id, times in sink.received.items() if times > 1}
    # The only possible repeat is the one letter the SMTP server had accepted in the
    # instant before the kill; it repeats with the same Message-ID, so the receiving
    # server drops it. Everything else arrives exactly once.
    assert twice <= in_flight
    assert len(twice) <= 1
    assert sink.total - len(twice) == len(letters)
