"""The rekindle queue: partners who slipped away become tasks for their owners."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, TypedDict

from django.db import transaction
from django.db.models import Count, Exists, F, IntegerField, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

from core.dateformat import format_date
from outreach.models import Activity, Task
from partners.models import Provider
from referrals.models import Referral
from registry.models import RegistryProvider

# The rekindle queue: partners whose referrals dropped or stopped and whom nobody has
# touched lately. Each rule is a reason a person can read, not an opaque score.
REKINDLE_WINDOW = timedelta(days=90)
REKINDLE_SILENT = timedelta(days=60)
REKINDLE_UNTOUCHED = timedelta(days=30)


class RekindleFacts(TypedDict):
    recent: int
    prior: int
    last_referral_at: datetime | None
    last_touch_at: datetime | None
    last_next_step: str | None
    npi_deactivated_on: date | None


if TYPE_CHECKING:
    from django_stubs_ext import WithAnnotations

    # A provider read through rekindle_candidates.
    RekindleCandidate = WithAnnotations[Provider, RekindleFacts]


def rekindle_candidates(*, now: datetime) -> list[RekindleCandidate]:
    """Owned partners whose inbound referrals halved (last 90 days against the 90 before)
    or stopped (none for 60 days), not touched for 30 days, with no open rekindle task.
    One query: the counts, dates and last next step are correlated subqueries."""
    inbound = (
        Referral.objects.counted()
        .filter(provider=OuterRef("pk"), direction=Referral.Direction.INBOUND)
        .order_by()
        .values("provider")
    )

    def referrals_between(start: datetime, end: datetime) -> Coalesce:
        return Coalesce(
            Subquery(
                inbound.filter(received_at__gte=start, received_at__lt=end)
                .annotate(n=Count("pk"))
                .values("n")[:1],
                output_field=IntegerField(),
            ),
            0,
        )

    touches = Activity.objects.filter(providers=OuterRef("pk")).order_by("-occurred_at")
    # One Exists, not exclude(tasks__kind=..., tasks__status=...): exclude() across a
    # to-many relation tests each condition on any task, so a done rekindle task beside an
    # open follow-up kept the partner out of the queue.
    # Why a partner stopped may be in the NPPES registry (once loaded): retired, moved
    # away, died. Said first, so the liaison checks before courting them.
    deactivated_on = RegistryProvider.objects.filter(npi=OuterRef("npi"), deactivated=True)
    open_rekindle = Task.objects.filter(
        provider=OuterRef("pk"), kind=Task.Kind.REKINDLE, status=Task.Status.OPEN
    )
    return list(
        Provider.objects.filter(owner__isnull=False)
        .exclude(Exists(open_rekindle))
        .annotate(
            recent=referrals_between(now - REKINDLE_WINDOW, now),
            prior=referrals_between(now - 2 * REKINDLE_WINDOW, now - REKINDLE_WINDOW),
            last_referral_at=Subquery(inbound.order_by("-received_at").values("received_at")[:1]),
            last_touch_at=Subquery(touches.values("occurred_at")[:1]),
            last_next_step=Subquery(touches.exclude(next_step="").values("next_step")[:1]),
            npi_deactivated_on=Subquery(deactivated_on.values("deactivation_date")[:1]),
        )
        .filter(
            Q(prior__gte=2, recent__lte=F("prior") / 2)
            | Q(last_referral_at__lt=now - REKINDLE_SILENT)
        )
        .filter(Q(last_touch_at__isnull=True) | Q(last_touch_at__lt=now - REKINDLE_UNTOUCHED))
        .select_related("owner")
        .order_by("pk")
    )


def rekindle_reasons(provider: RekindleCandidate, *, now: datetime) -> list[str]:
    reasons = []
    if provider.npi_deactivated_on:
        gone_on = format_date(provider.npi_deactivated_on, "M j, Y")
        reasons.append(
            f"The NPPES registry lists their NPI as deactivated since {gone_on}: they may have "
            "retired or left practice. Check before courting them; if they have, set them "
            "dormant."
        )
    if provider.prior >= 2 and provider.recent <= provider.prior / 2:
        reasons.append(
            f"Referrals dropped from {provider.prior} to {provider.recent} "
            "(the last 90 days against the 90 before)."
        )
    if provider.last_referral_at:
        since = now - provider.last_referral_at
        if since >= REKINDLE_SILENT:
            reasons.append(f"No referral for {since.days} days.")
        else:
            # Here for a drop only: a referral this week is no silence.
            plural = "" if since.days == 1 else "s"
            reasons.append(f"Last referral {since.days} day{plural} ago.")
    if provider.last_touch_at:
        reasons.append(f"Last touch {(now - provider.last_touch_at).days} days ago.")
    else:
        reasons.append("Never visited or called.")
    if provider.last_next_step:
        reasons.append(f"Last next step: {provider.last_next_step}")
    return reasons


@transaction.atomic
def rekindle_queue_build(*, now: datetime | None = None) -> list[Task]:
    """Give each partner that needs attention a rekindle task for their owner, with the
    reasons. Idempotent: a partner with an open rekindle task gets no second one."""
    now = now or timezone.now()
    candidates = rekindle_candidates(now=now)
    tasks = [
        Task(
            kind=Task.Kind.REKINDLE,
            title=f"Rekindle {provider.display_name}"[:200],
            detail="\n".join(rekindle_reasons(provider, now=now)),
            due_on=timezone.localdate(now),
            assignee=provider.owner,
            provider=provider,
        )
        for provider in candidates
    ]
    # The partial unique constraint drops a task another run created meanwhile.
    Task.objects.bulk_create(tasks, ignore_conflicts=True)
    # Re-read: rows inserted with ignore_conflicts come back without primary keys.
    return list(
        Task.objects.filter(
            kind=Task.Kind.REKINDLE,
            status=Task.Status.OPEN,
            provider__in=[provider.pk for provider in candidates],
        ).order_by("pk")
    )
