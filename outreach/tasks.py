"""Celery tasks: thin adapters that take primary keys and call the services."""

from __future__ import annotations

import logging

from celery import shared_task

from outreach import services

logger = logging.getLogger(__name__)


@shared_task(
    autoretry_for=(services.TransientDeliveryError,),
    retry_backoff=30,
    retry_backoff_max=900,
    max_retries=services.MAX_DELIVERY_ATTEMPTS,
)
def deliver_letter(letter_id: int) -> None:
    services.letter_deliver(letter_id=letter_id)


@shared_task(autoretry_for=(ConnectionError,), retry_backoff=True, max_retries=5)
def prepare_thank_you(referral_id: int) -> None:
    _task, letter = services.thank_you_prepare(referral_id=referral_id)
    if letter is not None and letter.status == letter.Status.PENDING and letter.is_due:
        deliver_letter.delay(letter.pk)


@shared_task
def sweep_loop_work() -> None:
    """Run by beat: the database holds every due date, so this re-drives whatever is due or
    was lost on the way (an enqueue during a Redis outage, a worker killed mid-task)."""
    missing = services.referrals_missing_thank_you()
    for referral_id in missing:
        services.thank_you_prepare(referral_id=referral_id)
    letters = services.letters_to_deliver()
    for letter_id in letters:
        deliver_letter.delay(letter_id)
    if missing or letters:
        logger.info("sweep: %s thank-yous prepared, %s letters queued", len(missing), len(letters))
