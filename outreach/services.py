"""Closing the loop: the thank-you task and letter, and letter delivery.

Every function here is idempotent: the unique constraints on Task and Letter make a
second run a no-op, so the worker, a retry and the beat sweep can all call them safely.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import timedelta
from smtplib import SMTPException

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.mail import EmailMultiAlternatives
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from core.dates import add_business_days
from outreach.models import Activity, Letter, LetterTemplate, Task, render_merge_fields
from partners.models import Provider, StaffMember
from referrals.models import Referral, ReferralEvent, Status

logger = logging.getLogger(__name__)

DEFAULT_THANK_YOU = {
    "subject": "Thank you for referring {{ patient_initials }}",
    "body": (
        "Dear {{ provider_name }},\n\n"
        "Thank you for referring your patient {{ patient_initials }} to {{ practice_name }}. "
        "We saw them on {{ seen_date }} and will send our consult report shortly.\n\n"
        "We appreciate your trust and are always glad to help your patients.\n\n"
        "With thanks,\n{{ sender_name }}\n{{ practice_name }}"
    ),
}

# A letter claimed by a worker that has not finished within this time is presumed lost
# with its worker and handed out again by the sweep.
STALE_CLAIM = timedelta(minutes=10)


def letter_template_for(kind: str) -> LetterTemplate:
    template, _ = LetterTemplate.objects.get_or_create(
        kind=kind, defaults=DEFAULT_THANK_YOU if kind == LetterTemplate.Kind.THANK_YOU else {}
    )
    return template


def _merge_values(referral: Referral) -> dict[str, str]:
    provider = referral.provider
    owner = provider.owner
    seen = timezone.localtime(referral.seen_at) if referral.seen_at else None
    return {
        "provider_name": provider.display_name,
        "provider_last_name": provider.last_name,
        "organization_name": provider.organization.name if provider.organization else "",
        "patient_initials": referral.patient_initials,
        "referral_date": f"{timezone.localtime(referral.received_at):%B %-d, %Y}",
        "seen_date": f"{seen:%B %-d, %Y}" if seen else "",
        "practice_name": settings.PRACTICE_NAME,
        "sender_name": (owner.get_full_name() or owner.get_username()) if owner else "",
        "today": f"{timezone.localdate():%B %-d, %Y}",
    }


def thank_you_prepare(*, referral_id: int) -> tuple[Task | None, Letter | None]:
    """Create the thank-you task for the relationship owner and the thank-you letter for
    the referrer, once per referral. Returns what now exists (None if the referral is not
    an inbound one that has been seen)."""
    referral = (
        Referral.objects.select_related("provider", "provider__owner", "provider__organization")
        .filter(pk=referral_id, direction=Referral.Direction.INBOUND, seen_at__isnull=False)
        .first()
    )
    if referral is None:
        return None, None
    template = letter_template_for(LetterTemplate.Kind.THANK_YOU)
    seen_on = timezone.localtime(referral.seen_at).date()
    due_on = add_business_days(seen_on, template.delay_business_days)
    values = _merge_values(referral)
    provider = referral.provider
    try:
        with transaction.atomic():
            letter, _ = Letter.objects.get_or_create(
                referral=referral,
                kind=LetterTemplate.Kind.THANK_YOU,
                defaults={
                    "provider": provider,
                    "subject": render_merge_fields(template.subject, values),
                    "body": render_merge_fields(template.body, values),
                    "due_on": due_on,
                },
            )
            task, _ = Task.objects.get_or_create(
                referral=referral,
                kind=Task.Kind.THANK_YOU,
                defaults={
                    "title": f"Thank {provider.display_name} for referring "
                    f"{referral.patient_initials}",
                    "due_on": due_on,
                    "assignee": provider.owner,
                    "provider": provider,
                },
            )
    except IntegrityError:
        # Another worker created them between our read and write: they exist now.
        letter = Letter.objects.get(referral=referral, kind=LetterTemplate.Kind.THANK_YOU)
        task = Task.objects.get(referral=referral, kind=Task.Kind.THANK_YOU)
    return task, letter


def referrals_missing_thank_you() -> list[int]:
    """Inbound referrals that reached "seen" but have no thank-you letter: work whose
    enqueue was lost. Bounded to recent events so the sweep stays cheap."""
    since = timezone.now() - timedelta(days=30)
    return list(
        ReferralEvent.objects.filter(
            to_status=Status.SEEN,
            at__gte=since,
            referral__direction=Referral.Direction.INBOUND,
        )
        .exclude(referral__letters__kind=LetterTemplate.Kind.THANK_YOU)
        .values_list("referral_id", flat=True)
        .distinct()[:500]
    )


def letters_to_deliver() -> list[int]:
    """Due letters, and letters whose worker vanished mid-delivery."""
    stale = timezone.now() - STALE_CLAIM
    due = Letter.objects.due().values_list("pk", flat=True)[:500]
    stuck = Letter.objects.filter(status=Letter.Status.SENDING, claimed_at__lt=stale).values_list(
        "pk", flat=True
    )[:500]
    return [*due, *stuck]


def letter_claim(*, letter_id: int) -> Letter | None:
    """Take a letter for delivery. The conditional update lets exactly one worker win;
    a claim left behind by a dead worker can be taken again once it is stale."""
    now = timezone.now()
    claimable = Q(status=Letter.Status.PENDING, due_on__lte=timezone.localdate()) | Q(
        status=Letter.Status.SENDING, claimed_at__lt=now - STALE_CLAIM
    )
    claimed = Letter.objects.filter(claimable, pk=letter_id).update(
        status=Letter.Status.SENDING, claimed_at=now
    )
    if claimed != 1:
        return None
    return Letter.objects.select_related("provider", "provider__organization").get(pk=letter_id)


MAX_DELIVERY_ATTEMPTS = 5


class TransientDeliveryError(Exception):
    """Delivery failed in a way that may succeed later (SMTP down, timeout)."""


def letter_deliver(*, letter_id: int) -> Letter | None:
    """Deliver one claimed letter: by email when the partner has an address, otherwise to
    the print/fax queue. A transient failure puts the letter back as pending (the task
    retries with backoff) until MAX_DELIVERY_ATTEMPTS, then marks it failed for a person
    to see."""
    letter = letter_claim(letter_id=letter_id)
    if letter is None:
        return None
    recipient = letter.provider.contact_email
    attempts = letter.attempts + 1
    if not recipient:
        Letter.objects.filter(pk=letter.pk).update(
            status=Letter.Status.PRINT_QUEUE,
            channel=Letter.Channel.PRINT,
            attempts=attempts,
            sent_at=timezone.now(),
        )
        return Letter.objects.get(pk=letter.pk)
    message = EmailMultiAlternatives(
        subject=letter.subject,
        body=letter.body,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[recipient],
        headers={"X-Referral-CRM-Letter": str(letter.pk)},
    )
    try:
        message.send()
    except (SMTPException, OSError) as error:
        failed = attempts >= MAX_DELIVERY_ATTEMPTS
        Letter.objects.filter(pk=letter.pk).update(
            status=Letter.Status.FAILED if failed else Letter.Status.PENDING,
            attempts=attempts,
            # The error class only: SMTP replies can echo addresses or content.
            last_error=f"{type(error).__name__} on attempt {attempts}",
        )
        logger.warning(
            "letter %s delivery attempt %s failed: %s", letter.pk, attempts, type(error).__name__
        )
        if not failed:
            raise TransientDeliveryError(str(letter.pk)) from error
        return Letter.objects.get(pk=letter.pk)
    Letter.objects.filter(pk=letter.pk).update(
        status=Letter.Status.SENT,
        channel=Letter.Channel.EMAIL,
        recipient=recipient,
        attempts=attempts,
        sent_at=timezone.now(),
        last_error="",
    )
    return Letter.objects.get(pk=letter.pk)


@transaction.atomic
def activity_log(
    *,
    activity: Activity,
    providers: Iterable[Provider],
    staff: Iterable[StaffMember],
    actor: AbstractBaseUser,
) -> Activity:
    """Save a touch with its attendees; a next step with a due date becomes a follow-up
    task for the person who logged it, so the next visit starts from it."""
    activity.logged_by = actor
    activity.full_clean()
    activity.save()
    activity.providers.set(providers)
    activity.staff.set(staff)
    if activity.next_step and activity.next_step_due:
        first_provider = activity.providers.first()
        Task.objects.create(
            kind=Task.Kind.FOLLOW_UP,
            title=activity.next_step,
            due_on=activity.next_step_due,
            assignee=actor,
            provider=first_provider,
            activity=activity,
        )
    return activity


@transaction.atomic
def task_complete(*, task: Task) -> Task:
    locked = Task.objects.select_for_update().get(pk=task.pk)
    if locked.status == Task.Status.OPEN:
        locked.status = Task.Status.DONE
        locked.completed_at = timezone.now()
        locked.save(update_fields=["status", "completed_at"])
    return locked
