"""The daily digest: each liaison's day in one email."""

from __future__ import annotations

import logging
from contextlib import suppress
from datetime import date

from django.conf import settings
from django.contrib.auth.models import User
from django.core.mail import EmailMultiAlternatives, get_connection
from django.core.mail.backends.base import BaseEmailBackend
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.utils import timezone

from outreach.models import DigestDelivery, Event, PlannedVisit, Task
from outreach.services.delivery import DELIVERY_ERRORS
from partners.selectors import Birthday, staff_birthdays

logger = logging.getLogger(__name__)


def liaison_digests_send(*, today: date | None = None) -> int:
    """Email each liaison their day: today's planned visits, tasks due today, overdue
    ones, partners needing attention (open rekindle tasks), the events of the coming
    week they organise or their partners are invited to, and the birthdays this week of
    the staff of their partners' offices. Once per liaison and day
    (DigestDelivery); liaisons with nothing on get no email. Returns how many were sent."""
    from django.contrib.auth import get_user_model

    from core.roles import Role
    from outreach import meetings

    today = today or timezone.localdate()
    liaisons = list(
        get_user_model()
        .objects.filter(is_active=True, groups__name=Role.LIAISON)
        .exclude(email="")
        .exclude(pk__in=DigestDelivery.objects.filter(day=today).values("user"))
        .distinct()
    )
    tasks_by_user: dict[int | None, list[Task]] = {}
    for task in (
        Task.objects.open()
        .filter(assignee__in=liaisons, due_on__lte=today)
        .select_related("provider")
        .order_by("due_on", "pk")
    ):
        tasks_by_user.setdefault(task.assignee_id, []).append(task)
    agenda = meetings.digest_agenda(liaisons, today=today)
    birthdays = staff_birthdays([user.pk for user in liaisons], today=today)
    connection = get_connection()
    sent = 0
    try:
        for user in liaisons:
            tasks = tasks_by_user.get(user.pk, [])
            day = agenda.get(user.pk, {"visits": [], "events": []})
            coming = birthdays.get(user.pk, [])
            if not (tasks or day["visits"] or day["events"] or coming):
                continue
            try:
                with transaction.atomic():
                    DigestDelivery.objects.create(user=user, day=today)
                    _digest_email(user, tasks, today, connection, birthdays=coming, **day).send()
            except IntegrityError:
                continue  # another run sent it
            except DELIVERY_ERRORS as error:
                # Rolled back, so the next run tries again; one liaison's refused address
                # or a dropped session does not cost everyone after them their digest.
                logger.warning("digest for user %s failed: %s", user.pk, type(error).__name__)
                with suppress(*DELIVERY_ERRORS):
                    connection.close()
                continue
            sent += 1
    finally:
        with suppress(*DELIVERY_ERRORS):
            connection.close()
    return sent


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'s' if count != 1 else ''}"


def _digest_email(
    user: User,
    tasks: list[Task],
    today: date,
    connection: BaseEmailBackend,
    *,
    visits: list[PlannedVisit],
    events: list[Event],
    birthdays: list[Birthday],
) -> EmailMultiAlternatives:
    context = {
        "user": user,
        "today": today,
        "visits": visits,
        "events": events,
        "birthdays": birthdays,
        "due_today": [t for t in tasks if t.due_on == today and t.kind != Task.Kind.REKINDLE],
        "overdue": [t for t in tasks if t.due_on < today and t.kind != Task.Kind.REKINDLE],
        "attention": [t for t in tasks if t.kind == Task.Kind.REKINDLE],
        "practice_name": settings.PRACTICE_NAME,
        "site_url": settings.SITE_URL,
    }
    counts = [
        _plural(len(items), word)
        for items, word in (
            (visits, "visit"),
            (tasks, "task"),
            (events, "event"),
            (birthdays, "birthday"),
        )
        if items
    ]
    message = EmailMultiAlternatives(
        subject=f"Your day, {today:%A %B %-d}: {', '.join(counts)}",
        body=render_to_string("outreach/email/digest.txt", context),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[user.email],
        connection=connection,
    )
    message.attach_alternative(render_to_string("outreach/email/digest.html", context), "text/html")
    return message
