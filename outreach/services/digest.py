"""The daily digest: each liaison's day in one email."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass
from datetime import date
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.core.mail import EmailMultiAlternatives, get_connection
from django.core.mail.backends.base import BaseEmailBackend
from django.db import IntegrityError, transaction
from django.db.models import Case, CharField, Count, F, Value, When, Window
from django.db.models.functions import RowNumber
from django.template.loader import render_to_string
from django.utils import timezone

from outreach.models import DigestDelivery, Task
from outreach.services.delivery import DELIVERY_ERRORS
from partners.selectors import staff_birthdays

logger = logging.getLogger(__name__)

# Items listed per section of a digest; the rest are counted, with a link to the full list
# in the app (a liaison back from a month away would otherwise get every overdue task).
DIGEST_SECTION_ITEMS = 20


@dataclass(frozen=True)
class Section:
    """The first DIGEST_SECTION_ITEMS items of a digest's section and how many it has."""

    items: Sequence[Any]
    total: int

    @classmethod
    def of(cls, items: Sequence[Any]) -> Section:
        return cls(items[:DIGEST_SECTION_ITEMS], len(items))

    @property
    def more(self) -> int:
        return self.total - len(self.items)

    def __bool__(self) -> bool:
        return self.total > 0


def _task_sections(liaisons: list[Any], *, today: date) -> dict[tuple[int, str], Section]:
    """For each liaison and section ("due_today", "overdue", "attention"): its first tasks
    and how many there are. Two queries, whatever the number of liaisons and tasks."""
    section = Case(
        When(kind=Task.Kind.REKINDLE, then=Value("attention")),
        When(due_on=today, then=Value("due_today")),
        default=Value("overdue"),
        output_field=CharField(),
    )
    tasks = Task.objects.open().filter(assignee__in=liaisons, due_on__lte=today)
    totals = {
        (row["assignee"], row["section"]): row["count"]
        for row in tasks.annotate(section=section)
        .values("assignee", "section")
        .annotate(count=Count("pk"))
        .order_by()
    }
    listed: dict[tuple[int | None, str], list[Task]] = {}
    for task in (
        tasks.annotate(
            section=section,
            place=Window(
                RowNumber(),
                partition_by=[F("assignee"), section],
                order_by=[F("due_on").asc(), F("pk").asc()],
            ),
        )
        .filter(place__lte=DIGEST_SECTION_ITEMS)
        .select_related("provider")
        .order_by("due_on", "pk")
    ):
        listed.setdefault((task.assignee_id, task.section), []).append(task)
    return {key: Section(listed.get(key, []), total) for key, total in totals.items()}


def liaison_digests_send(*, today: date | None = None) -> int:
    """Email each liaison their day: today's planned visits, tasks due today, overdue
    ones, partners needing attention (open rekindle tasks), the events of the coming
    week they organise or their partners are invited to, and the birthdays this week of
    the staff of their partners' offices. Once per liaison and day
    (DigestDelivery); liaisons with nothing on get no email. Each section lists its first
    DIGEST_SECTION_ITEMS items, then how many more with a link to them in the app; the
    queries are the same in number however many there are. Returns how many were sent."""
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
    task_sections = _task_sections(liaisons, today=today)
    agenda = meetings.digest_agenda(liaisons, today=today)
    birthdays = staff_birthdays([user.pk for user in liaisons], today=today)
    connection = get_connection()
    sent = 0
    try:
        for user in liaisons:
            day = agenda.get(user.pk, {"visits": [], "events": []})
            sections = {
                name: task_sections.get((user.pk, name), Section([], 0))
                for name in ("due_today", "overdue", "attention")
            }
            sections.update(
                visits=Section.of(day["visits"]),
                events=Section.of(day["events"]),
                birthdays=Section.of(birthdays.get(user.pk, [])),
            )
            if not any(sections.values()):
                continue
            try:
                with transaction.atomic():
                    DigestDelivery.objects.create(user=user, day=today)
                    _digest_email(user, today, connection, **sections).send()
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
    today: date,
    connection: BaseEmailBackend,
    **sections: Section,
) -> EmailMultiAlternatives:
    context = {
        "user": user,
        "today": today,
        **sections,
        "practice_name": settings.PRACTICE_NAME,
        "site_url": settings.SITE_URL,
    }
    tasks = sum(sections[name].total for name in ("due_today", "overdue", "attention"))
    counts = [
        _plural(count, word)
        for count, word in (
            (sections["visits"].total, "visit"),
            (tasks, "task"),
            (sections["events"].total, "event"),
            (sections["birthdays"].total, "birthday"),
        )
        if count
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
