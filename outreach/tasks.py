"""Celery tasks: thin adapters that take primary keys and call the services."""

from __future__ import annotations

import logging
import traceback

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings

from core.transient import BROKER_UNAVAILABLE, DATABASE_UNAVAILABLE
from outreach.services import delivery, digest, loop, rekindle

logger = logging.getLogger(__name__)


@shared_task(
    autoretry_for=(delivery.TransientDeliveryError,),
    retry_backoff=settings.LETTER_RETRY_BACKOFF_SECONDS,
    retry_backoff_max=delivery.RETRY_BACKOFF_MAX,
    # The letter's row holds its backoff (delivery.retry_delay); a jittered retry would
    # come early, find nothing to claim and leave the rest to the sweep.
    retry_jitter=False,
    max_retries=delivery.MAX_DELIVERY_ATTEMPTS,
)
def deliver_letter(letter_id: int) -> None:
    delivery.letter_deliver(letter_id=letter_id)


# Letters the sweep hands out per task: one SMTP session and one claim query per batch.
DELIVERY_BATCH = 50


@shared_task(
    autoretry_for=(delivery.TransientDeliveryError,),
    retry_backoff=settings.LETTER_RETRY_BACKOFF_SECONDS,
    retry_backoff_max=delivery.RETRY_BACKOFF_MAX,
    # The letter's row holds its backoff (delivery.retry_delay); a jittered retry would
    # come early, find nothing to claim and leave the rest to the sweep.
    retry_jitter=False,
    max_retries=delivery.MAX_DELIVERY_ATTEMPTS,
)
def deliver_letters(letter_ids: list[int]) -> None:
    delivery.letters_deliver(letter_ids=letter_ids)


# Safe to run again at any point: the letter is keyed (referral, kind, sequence) and made in
# one transaction, and handing it on twice is harmless (delivery claims it once).
@shared_task(
    autoretry_for=(*DATABASE_UNAVAILABLE, *BROKER_UNAVAILABLE), retry_backoff=True, max_retries=5
)
def prepare_loop_message(referral_id: int, status: str) -> None:
    """An inbound referral reached `status`: prepare its message to the referrer and
    deliver it at once if it is already due."""
    _task, letter = loop.loop_message_prepare(referral_id=referral_id, status=status)
    if letter is not None and letter.status == letter.Status.PENDING and letter.is_due:
        deliver_letter.delay(letter.pk)


@shared_task
def prepare_thank_you(referral_id: int) -> None:
    # Messages queued before the loop was generalised still name this task.
    prepare_loop_message(referral_id, "seen")


@shared_task
def sweep_loop_work() -> None:
    """Run by beat: the database holds every due date, so this re-drives whatever is due or
    was lost on the way (an enqueue during a Redis outage, a worker killed mid-task)."""
    missing = loop.referral_events_missing_messages()
    for referral_id, status in missing:
        try:
            loop.loop_message_prepare(referral_id=referral_id, status=status)
        except SoftTimeLimitExceeded:
            raise
        except Exception as error:
            # One referral's fault must not stop the sweep: raised here, it would do so
            # every minute for as long as the event is recent, and no due letter of anyone
            # would be handed out. Said with where it happened, not the error's text, which
            # may quote the patient.
            logger.error(
                "sweep: the %s message of referral %s could not be prepared: %s, raised at\n%s",
                status,
                referral_id,
                type(error).__name__,
                "".join(traceback.format_tb(error.__traceback__)),
            )
    letters = delivery.letters_to_deliver()
    for start in range(0, len(letters), DELIVERY_BATCH):
        deliver_letters.delay(letters[start : start + DELIVERY_BATCH])
    from outreach import newsletters

    for issue_id in newsletters.newsletters_to_redrive():
        send_newsletter.delay(issue_id)
    if missing or letters:
        logger.info("sweep: %s messages prepared, %s letters queued", len(missing), len(letters))


@shared_task
def build_rekindle_queue() -> None:
    """Nightly, by beat: partners who slipped away become tasks for their owners."""
    created = rekindle.rekindle_queue_build()
    logger.info("rekindle queue: %s new tasks", len(created))


@shared_task
def send_liaison_digests() -> None:
    """Every morning, by beat: each liaison's tasks for the day."""
    logger.info("daily digest: %s emails sent", digest.liaison_digests_send())


@shared_task
def remind_annual_meetings() -> None:
    """Nightly, by beat: key partners whose annual meeting fell due get a task for their
    owner (one open task per partner, however often this runs)."""
    from outreach import meetings

    tasks = meetings.annual_meeting_reminders_create()
    logger.info("annual meetings: %s open reminder tasks for partners now due", len(tasks))


@shared_task
def send_event_reminders() -> None:
    """Every morning, by beat: reminder letters to the invitees of upcoming events, handed
    to the letter pipeline (once per invitation, however often this runs)."""
    from outreach import meetings

    letters = meetings.event_reminders_prepare()
    due = [letter.pk for letter in letters if letter.status == letter.Status.PENDING]
    for start in range(0, len(due), DELIVERY_BATCH):
        deliver_letters.delay(due[start : start + DELIVERY_BATCH])
    logger.info("event reminders: %s letters prepared", len(letters))


# Safe to run again at any point: one letter per (issue, partner), and each batch handed on
# again is claimed once by delivery.
@shared_task(
    autoretry_for=(*DATABASE_UNAVAILABLE, *BROKER_UNAVAILABLE), retry_backoff=True, max_retries=5
)
def send_newsletter(issue_id: int) -> None:
    """A manager sent a newsletter: make each partner's letter and hand them to delivery
    in batches (once per partner, however often this runs)."""
    from outreach import newsletters

    due = newsletters.newsletter_prepare(issue_id=issue_id)
    for start in range(0, len(due), DELIVERY_BATCH):
        deliver_letters.delay(due[start : start + DELIVERY_BATCH])
    logger.info("newsletter %s: %s letters handed to delivery", issue_id, len(due))


@shared_task
def send_report_summaries() -> None:
    """Every morning, by beat: the weekly and monthly consult report summaries of the
    periods that ended (once per partner and period, however often this runs)."""
    from outreach import summaries

    letters = summaries.report_summaries_prepare()
    due = [letter.pk for letter in letters if letter.status == letter.Status.PENDING]
    for start in range(0, len(due), DELIVERY_BATCH):
        deliver_letters.delay(due[start : start + DELIVERY_BATCH])
    logger.info("report summaries: %s letters prepared", len(letters))


@shared_task
def send_follow_up_reminders() -> None:
    """Every morning, by beat: an email to the owner of each follow-up due today."""
    from outreach import reminders

    logger.info("follow-up reminders: %s emails sent", reminders.follow_up_reminders_send())
