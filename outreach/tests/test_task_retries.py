"""The tasks that prepare letters retried on the builtin ConnectionError only, which neither
the database (django.db.OperationalError) nor Redis (kombu's OperationalError on publish,
redis-py's ConnectionError) ever raises: a database restart or a Redis blip failed the task
for good, and the letter waited for the sweep. They now retry on those, and only those: a
fault in the code fails at once, as retrying it would fail the same way."""

from __future__ import annotations

from datetime import timedelta
from unittest import mock

import pytest
import redis.exceptions
from django.db import InterfaceError, OperationalError, ProgrammingError
from django.utils import timezone
from kombu.exceptions import OperationalError as BrokerOperationalError

from outreach import newsletters
from outreach.models import Letter, LetterTemplate, NewsletterIssue
from outreach.services import loop
from outreach.tasks import prepare_loop_message, send_newsletter
from partners.factories import ProviderFactory
from referrals.factories import ReferralFactory
from referrals.models import Status
from referrals.services.workflow import referral_log

pytestmark = pytest.mark.django_db


def _received_referral():
    provider = ProviderFactory(email="dr.wiebe@example.org")
    return referral_log(
        referral=ReferralFactory.build(
            provider=provider, received_at=timezone.now() - timedelta(hours=1)
        ),
        actor=None,
    )


def _failing_once(error, then):
    """A stand-in that raises `error` on the first call and does `then` afterwards."""
    calls = []

    def call(*args, **kwargs):
        calls.append(args or kwargs)
        if len(calls) == 1:
            raise error
        return then(*args, **kwargs)

    return call, calls


@pytest.mark.parametrize(
    "error",
    [
        OperationalError("server closed the connection unexpectedly"),
        InterfaceError("connection already closed"),
    ],
)
def test_preparing_a_loop_message_retries_when_the_database_drops_and_makes_it_once(error):
    referral = _received_referral()
    prepare, calls = _failing_once(error, loop.loop_message_prepare)

    with (
        mock.patch.object(loop, "loop_message_prepare", prepare),
        mock.patch("outreach.tasks.deliver_letter.delay"),
    ):
        result = prepare_loop_message.apply(args=(referral.pk, Status.RECEIVED))

    assert result.successful()
    assert len(calls) == 2
    assert Letter.objects.filter(referral=referral).count() == 1


@pytest.mark.parametrize(
    "error",
    [
        BrokerOperationalError("Error 111 connecting to redis:6379. Connection refused."),
        redis.exceptions.ConnectionError("Error 111 connecting to redis:6379."),
        redis.exceptions.TimeoutError("Timeout reading from socket"),
    ],
)
def test_a_redis_outage_while_handing_the_letter_on_retries_without_a_second_letter(error):
    referral = _received_referral()
    publish, calls = _failing_once(error, lambda letter_id: None)

    with mock.patch("outreach.tasks.deliver_letter.delay", publish):
        result = prepare_loop_message.apply(args=(referral.pk, Status.RECEIVED))

    assert result.successful()
    letter = Letter.objects.get(referral=referral)
    # Handed on again on the retry: the same letter, not a second one.
    assert calls == [(letter.pk,), (letter.pk,)]


def test_a_fault_in_the_code_is_not_retried():
    referral = _received_referral()
    prepare = mock.Mock(side_effect=ProgrammingError('column "kind" does not exist'))

    with mock.patch.object(loop, "loop_message_prepare", prepare):
        result = prepare_loop_message.apply(args=(referral.pk, Status.RECEIVED))

    assert result.failed()
    assert isinstance(result.result, ProgrammingError)
    assert prepare.call_count == 1


def test_a_newsletter_send_retries_when_the_database_drops_and_prepares_each_letter_once():
    ProviderFactory(email="a@example.org")
    ProviderFactory(email="b@example.org")
    issue = NewsletterIssue.objects.create(subject="Spring news", body="Our new MRI is open.")
    prepare, calls = _failing_once(
        OperationalError("terminating connection due to administrator command"),
        newsletters.newsletter_prepare,
    )

    with (
        mock.patch.object(newsletters, "newsletter_prepare", prepare),
        mock.patch("outreach.tasks.deliver_letters.delay") as deliver,
    ):
        result = send_newsletter.apply(args=(issue.pk,))

    assert result.successful()
    assert len(calls) == 2
    letters = Letter.objects.filter(newsletter=issue, kind=LetterTemplate.Kind.NEWSLETTER)
    assert letters.count() == 2
    deliver.assert_called_once_with(sorted(letters.values_list("pk", flat=True)))


def test_a_newsletter_send_retries_when_redis_drops_while_handing_letters_on():
    ProviderFactory(email="a@example.org")
    issue = NewsletterIssue.objects.create(subject="Spring news", body="Our new MRI is open.")
    publish, calls = _failing_once(
        BrokerOperationalError("Error 111 connecting to redis:6379."), lambda ids: None
    )

    with mock.patch("outreach.tasks.deliver_letters.delay", publish):
        result = send_newsletter.apply(args=(issue.pk,))

    assert result.successful()
    letter = Letter.objects.get(newsletter=issue)
    assert calls == [([letter.pk],), ([letter.pk],)]


def test_a_newsletter_fault_in_the_code_is_not_retried():
    issue = NewsletterIssue.objects.create(subject="Spring news", body="Our new MRI is open.")
    prepare = mock.Mock(side_effect=KeyError("provider_name"))

    with mock.patch.object(newsletters, "newsletter_prepare", prepare):
        result = send_newsletter.apply(args=(issue.pk,))

    assert result.failed()
    assert prepare.call_count == 1
