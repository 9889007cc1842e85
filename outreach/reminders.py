"""Follow-up reminders: on the due date of an open follow-up task, its assignee gets an
email, once per task, besides the morning digest.

The claim is a conditional update of `Task.reminded_at` in the same transaction as the
send: of two runs (a beat that fires twice, a retry) exactly one claims each task, and a
send that fails rolls the claim back so the next run tries again.
"""

from __future__ import annotations

import logging
from contextlib import suppress
from datetime import date, timedelta

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from django.core.mail.backends.base import BaseEmailBackend
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone

from outreach.models import Task
from outreach.services.delivery import DELIVERY_ERRORS

logger = logging.getLogger(__name__)

# A run missed for a few days (a long weekend with the server down) still reminds; older
# tasks are in the digest's overdue list and are not emailed one by one.
CATCH_UP = timedelta(days=3)
BATCH = 1000


def follow_ups_to_remind(*, today: date) -> list[Task]:
    return list(
        Task.objects.open()
        .filter(
            kind=Task.Kind.FOLLOW_UP,
            reminded_at__isnull=True,
            due_on__lte=today,
            due_on__gte=today - CATCH_UP,
            assignee__is_active=True,
        )
        .exclude(assignee__email="")
        .select_related("assignee", "provider", "provider__organization")
        .order_by("due_on", "pk")[:BATCH]
    )


def _reminder_email(task: Task, connection: BaseEmailBackend) -> EmailMultiAlternatives:
    assert task.assignee is not None, "follow_ups_to_remind reads assigned tasks only"
    context = {
        "task": task,
        "practice_name": settings.PRACTICE_NAME,
        "task_url": settings.SITE_URL + task.get_absolute_url(),
    }
    # On one line, as a header must be: a title may hold a line break (a next step or a
    # task title posted with one), which the mail library refuses.
    subject = " ".join(f"Follow-up due {task.due_on:%A %B %-d}: {task.summary_outside}".split())
    message = EmailMultiAlternatives(
        subject=subject[:200],
        body=render_to_string("outreach/email/follow_up_reminder.txt", context),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[task.assignee.email],
        connection=connection,
    )
    message.attach_alternative(
        render_to_string("outreach/email/follow_up_reminder.html", context), "text/html"
    )
    return message


def follow_up_reminders_send(*, today: date | None = None) -> int:
    """Email each open follow-up due today (or in the last few days, if runs were missed)
    to its assignee, once per task. Returns how many were sent."""
    today = today or timezone.localdate()
    connection = get_connection()
    sent = 0
    try:
        for task in follow_ups_to_remind(today=today):
            try:
                with transaction.atomic():
                    claimed = Task.objects.filter(
                        pk=task.pk, reminded_at__isnull=True, status=Task.Status.OPEN
                    ).update(reminded_at=timezone.now())
                    if not claimed:
                        continue  # another run has it, or it was done meanwhile
                    _reminder_email(task, connection).send()
            except DELIVERY_ERRORS as error:
                # Rolled back: the next run tries again.
                logger.warning("follow-up reminder %s failed: %s", task.pk, type(error).__name__)
                with suppress(*DELIVERY_ERRORS):
                    connection.close()
                continue
            sent += 1
    finally:
        with suppress(*DELIVERY_ERRORS):
            connection.close()
    return sent
