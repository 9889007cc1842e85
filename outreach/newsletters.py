"""Newsletters to a segment of the active partners.

A manager writes the issue (starting from the editable newsletter template), picks the
audience (tiers, relationship health, owner, specialty; nothing picked = every active
partner), sees how many it reaches and a preview, and sends. A worker then makes one
Letter per partner (the database refuses a second for the same issue and partner, so a
re-run or the sweep never doubles one), routed by each partner's channel and opt-out
like every other letter, and hands them to the batched letter pipeline. Newsletters
carry no patient data: the patient merge fields are refused.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count, F, Q, QuerySet
from django.utils import timezone

from core.enqueue import enqueue_on_commit
from outreach import direct
from outreach.models import Letter, LetterTemplate, NewsletterIssue
from outreach.models.merge_fields import (
    MERGE_FIELD,
    PATIENT_MERGE_FIELDS,
    STRAY_TEMPLATE_SYNTAX_ERROR,
    has_stray_template_syntax,
    render_merge_fields,
    unknown_merge_fields,
)
from outreach.services.letters import letter_to, provider_merge_values
from partners.models import Provider

logger = logging.getLogger(__name__)

K = LetterTemplate.Kind
# Partners made into letters per step: one insert and one progress update per chunk.
CHUNK = 500
# A send whose worker has not reported for this long is presumed lost and re-driven.
STALE_SEND = timedelta(minutes=2)
# The same issue sent again by the same person this soon is a second press of Send (a
# double tap, the form sent again from the history): it is not sent twice.
RESEND_WINDOW = timedelta(minutes=10)
# A send re-driven this often without finishing is failing, not lost: it stops.
MAX_REDRIVES = 5

State = NewsletterIssue.State


def audience(
    *,
    tiers: Iterable[str] = (),
    health: Iterable[str] = (),
    owner_id: int | None = None,
    specialty: str = "",
    npi_deactivated: bool = False,
) -> QuerySet[Provider]:
    """The active partners a newsletter with these filters reaches (each filter that is
    set narrows it). Those the NPPES registry lists as deactivated (retired, moved away,
    died) are left out; `npi_deactivated` gives them instead, for the sender to be told."""
    partners = Provider.objects.filter(status=Provider.Status.ACTIVE).npi_deactivated(
        npi_deactivated
    )
    tiers, health = list(tiers), list(health)
    if tiers:
        partners = partners.filter(tier__in=tiers)
    if health:
        partners = partners.filter(health__in=health)
    if owner_id:
        partners = partners.filter(owner_id=owner_id)
    specialty = specialty.replace("\x00", "").strip()
    if specialty:
        partners = partners.filter(specialty__icontains=specialty)
    return partners


def issue_audience(issue: NewsletterIssue) -> QuerySet[Provider]:
    return audience(
        tiers=issue.tiers, health=issue.health, owner_id=issue.owner_id, specialty=issue.specialty
    )


# What a newsletter may merge: the partner and the practice (provider_merge_values).
NEWSLETTER_MERGE_FIELDS = (
    "provider_name",
    "provider_last_name",
    "organization_name",
    "practice_name",
    "sender_name",
    "today",
)


def check_newsletter_text(text: str) -> None:
    """Only the partner's and the practice's merge fields, never a patient's, and no other
    template syntax (a filter or a tag would reach every partner as raw braces)."""
    unknown = unknown_merge_fields(text)
    if unknown:
        raise ValidationError(f"Unknown merge field(s): {', '.join(unknown)}.")
    used = set(MERGE_FIELD.findall(text))
    patient = sorted(used & PATIENT_MERGE_FIELDS)
    if patient:
        raise ValidationError(f"A newsletter carries no patient data: remove {', '.join(patient)}.")
    other = sorted(used - set(NEWSLETTER_MERGE_FIELDS))
    if other:
        raise ValidationError(
            f"Not available in a newsletter: {', '.join(other)}. "
            f"Use {', '.join(NEWSLETTER_MERGE_FIELDS)}."
        )
    if has_stray_template_syntax(text):
        raise ValidationError(STRAY_TEMPLATE_SYNTAX_ERROR)


def render_for(issue: NewsletterIssue | Any, provider: Provider) -> tuple[str, str]:
    values = provider_merge_values(provider)
    return (
        render_merge_fields(issue.subject, values)[:200],
        render_merge_fields(issue.body, values),
    )


def _same_issue_just_sent(issue: NewsletterIssue, actor: User) -> NewsletterIssue | None:
    return (
        NewsletterIssue.objects.filter(
            created_by=actor,
            created_at__gte=timezone.now() - RESEND_WINDOW,
            subject=issue.subject,
            body=issue.body,
            tiers=issue.tiers,
            health=issue.health,
            owner_id=issue.owner_id,
            specialty=issue.specialty,
        )
        .order_by("-pk")
        .first()
    )


@transaction.atomic
def newsletter_send(*, issue: NewsletterIssue, actor: User) -> NewsletterIssue:
    """Save the issue and hand it to a worker once the transaction commits. The same
    issue to the same audience sent by the same person a moment ago is that one, returned
    instead of sent again."""
    check_newsletter_text(issue.subject)
    check_newsletter_text(issue.body)
    # Two presses of Send at once wait here for each other: the second finds the first.
    list(User.objects.select_for_update().filter(pk=actor.pk).values_list("pk", flat=True))
    if (sent := _same_issue_just_sent(issue, actor)) is not None:
        return sent
    issue.created_by = actor
    issue.state = State.QUEUED
    issue.audience_size = issue_audience(issue).count()
    issue.heartbeat_at = timezone.now()
    issue.full_clean()
    issue.save()
    from outreach.tasks import send_newsletter

    enqueue_on_commit(send_newsletter, issue.pk)
    return issue


def newsletter_prepare(*, issue_id: int) -> list[int]:
    """Make the issue's letters, a chunk of partners at a time (see the module's rule),
    and return the ids of those waiting for delivery. Safe to run again at any point."""
    issue = NewsletterIssue.objects.filter(pk=issue_id).first()
    if issue is None:
        return []
    if issue.state != State.SENT:
        partners = issue_audience(issue)
        NewsletterIssue.objects.filter(pk=issue.pk).update(
            state=State.PREPARING, audience_size=partners.count(), heartbeat_at=timezone.now()
        )
        today = timezone.localdate()
        last_pk = 0
        while True:
            chunk = list(
                partners.filter(pk__gt=last_pk)
                .select_related("organization", "owner")
                .order_by("pk")[:CHUNK]
            )
            if not chunk:
                break
            last_pk = chunk[-1].pk
            addresses = (
                direct.direct_addresses(p.npi for p in chunk) if direct.relay_configured() else {}
            )
            letters = []
            for provider in chunk:
                subject, body = render_for(issue, provider)
                letters.append(
                    letter_to(
                        provider,
                        K.NEWSLETTER,
                        subject=subject,
                        body=body,
                        due_on=today,
                        direct_address=addresses.get(provider.npi, ""),
                        newsletter=issue,
                    )
                )
            with transaction.atomic():
                # A partner another run already has a letter for keeps that one.
                Letter.objects.bulk_create(letters, ignore_conflicts=True)
                NewsletterIssue.objects.filter(pk=issue.pk).update(
                    prepared_count=Letter.objects.filter(newsletter=issue).count(),
                    heartbeat_at=timezone.now(),
                )
        NewsletterIssue.objects.filter(pk=issue.pk).exclude(state=State.SENT).update(
            state=State.SENT, prepared_at=timezone.now(), heartbeat_at=timezone.now()
        )
    return list(
        Letter.objects.filter(newsletter_id=issue_id, status=Letter.Status.PENDING)
        .order_by("pk")
        .values_list("pk", flat=True)
    )


def newsletters_to_redrive() -> list[int]:
    """Sends whose task was lost or whose worker died before all letters were made. Their
    heartbeat is touched, so the next sweep waits for the re-driven task. A send re-driven
    MAX_REDRIVES times fails every time (a fault, not a lost message): it stops, failed,
    for the manager to see, instead of being sent again every two minutes for ever."""
    now = timezone.now()
    stale = NewsletterIssue.objects.exclude(state__in=[State.SENT, State.FAILED]).filter(
        heartbeat_at__lt=now - STALE_SEND
    )
    given_up = list(stale.filter(redrives__gte=MAX_REDRIVES).values_list("pk", flat=True))
    if given_up:
        NewsletterIssue.objects.filter(pk__in=given_up).update(state=State.FAILED, heartbeat_at=now)
        logger.error(
            "newsletters %s stopped: re-driven %s times, never finished", given_up, MAX_REDRIVES
        )
    again = list(stale.filter(redrives__lt=MAX_REDRIVES).values_list("pk", flat=True)[:50])
    NewsletterIssue.objects.filter(pk__in=again).update(
        heartbeat_at=now, redrives=F("redrives") + 1
    )
    if again:
        logger.warning("newsletters %s re-driven: their workers stopped reporting", again)
    return again


@dataclass(frozen=True)
class Progress:
    audience: int
    prepared: int
    sent: int
    print_queue: int
    skipped: int
    failed: int
    waiting: int
    state: str

    @property
    def prepared_percent(self) -> int:
        return round(100 * self.prepared / self.audience) if self.audience else 100

    @property
    def handled(self) -> int:
        return self.sent + self.print_queue + self.skipped + self.failed

    @property
    def delivered_percent(self) -> int:
        return round(100 * self.handled / self.prepared) if self.prepared else 0

    @property
    def done(self) -> bool:
        return self.state == State.SENT and self.waiting == 0

    @property
    def stopped(self) -> bool:
        """No more letters will be made (the send failed); those made still go."""
        return self.state == State.FAILED


def newsletter_progress(issue: NewsletterIssue) -> Progress:
    """Where a send stands: one aggregate over the issue's letters."""
    S = Letter.Status
    counts = Letter.objects.filter(newsletter=issue).aggregate(
        prepared=Count("pk"),
        sent=Count("pk", filter=Q(status=S.SENT)),
        print_queue=Count("pk", filter=Q(status=S.PRINT_QUEUE)),
        skipped=Count("pk", filter=Q(status__in=[S.SKIPPED, S.CANCELLED])),
        failed=Count("pk", filter=Q(status=S.FAILED)),
        waiting=Count("pk", filter=Q(status__in=[S.PENDING, S.SENDING])),
    )
    return Progress(
        audience=max(issue.audience_size, counts["prepared"]),
        state=issue.state,
        **counts,
    )
