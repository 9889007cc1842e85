"""Relationship health: the nightly assessment of every partner and its history."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from django.db import transaction
from django.db.models import Count, Max, Min
from django.utils import timezone

from partners.models import HealthChange, Provider
from partners.services._common import BATCH_SIZE, _batches, _inbound, _volume_windows

DORMANT_DAYS = 180  # no referral for half a year: dormant
CADENCE_MIN_REFERRALS = 3  # fewer referrals than this in 12 months give no usual gap
OVERDUE_FACTOR = 2  # at risk when the silence is twice the usual gap...
OVERDUE_MIN_DAYS = 30  # ...and at least a month (weekly referrers skip a week on holiday)
DROP_MIN_PRIOR = 4  # a volume drop needs a prior half-year worth comparing
DROP_SHARE = 0.5  # at risk when the last 6 months bring half or less of the 6 before
NO_TOUCH_DAYS = 90  # an active partner nobody has visited or called for a quarter


def assess_health(
    *,
    as_of: date,
    last_referral_on: date | None,
    first_12m_on: date | None,
    last_12m: int,
    last_6m: int,
    last_touch_on: date | None,
) -> tuple[str, list[dict[str, Any]]]:
    """A partner's health and the reasons behind it, as codes with their facts (the
    template partners/jinja2/partners/includes/health.html puts them into words). Facts are dates,
    not day counts, so the reasons stay the same from night to night until something
    happens, and the nightly run rewrites only the partners that moved.

    Dormant: no referral for DORMANT_DAYS. At risk: silent for more than twice its own
    usual gap between referrals (the mean gap over the last 12 months, from 3 referrals
    up), or the last 6 months brought half or less of the 6 before, or nobody touched
    the relationship for NO_TOUCH_DAYS. Active otherwise. No referral ever: new.
    """
    Health = Provider.Health
    reasons: list[dict[str, Any]] = []
    if last_referral_on is None:
        health = Health.NEW
        reasons.append({"code": "never_referred"})
    else:
        days = (as_of - last_referral_on).days
        if days >= DORMANT_DAYS:
            health = Health.DORMANT
            reasons.append({"code": "silent", "last": last_referral_on.isoformat()})
        else:
            at_risk = False
            if last_12m >= CADENCE_MIN_REFERRALS and first_12m_on is not None:
                gap = max(1, round((last_referral_on - first_12m_on).days / (last_12m - 1)))
                overdue = days > max(OVERDUE_FACTOR * gap, OVERDUE_MIN_DAYS)
                reasons.append(
                    {
                        "code": "overdue" if overdue else "on_cadence",
                        "last": last_referral_on.isoformat(),
                        "gap": gap,
                    }
                )
                at_risk = overdue
            else:
                reasons.append(
                    {
                        "code": "few_referrals",
                        "last": last_referral_on.isoformat(),
                        "count": last_12m,
                    }
                )
            prior_6m = last_12m - last_6m
            if prior_6m >= DROP_MIN_PRIOR and last_6m <= DROP_SHARE * prior_6m:
                reasons.append({"code": "volume_drop", "recent": last_6m, "prior": prior_6m})
                at_risk = True
            health = Health.AT_RISK if at_risk else Health.ACTIVE
    if last_touch_on is None:
        reasons.append({"code": "never_touched"})
        stale = True
    else:
        touch_days = (as_of - last_touch_on).days
        stale = touch_days > NO_TOUCH_DAYS
        reasons.append(
            {"code": "no_touch" if stale else "touched", "last": last_touch_on.isoformat()}
        )
    if stale and health == Health.ACTIVE:
        health = Health.AT_RISK
    return health, reasons


@dataclass(frozen=True)
class HealthResult:
    assessed: int
    changed: int  # partners whose status moved (reasons alone may move more)


def providers_assess_health(*, as_of: date) -> HealthResult:
    """Assess every partner's health (see assess_health) from two set-wise queries, store
    it on the provider (only where status or reasons moved: health_checked_at is when they
    last did) and write a HealthChange row where the status moves. Re-running it changes
    nothing."""
    from outreach.models import Activity

    # Before the reads: a touch logged while the run is under way is not counted by it,
    # and the partner page must go on saying that the next run will.
    started = timezone.now()
    start_12m, start_6m, end = _volume_windows(as_of)
    everything = _inbound(datetime(1900, 1, 1, tzinfo=timezone.get_current_timezone()), end)
    rows = (
        Provider.objects.order_by()
        .annotate(
            last_referral_at=Max("referrals__received_at", filter=everything),
            first_12m_at=Min("referrals__received_at", filter=_inbound(start_12m, end)),
            last_12m=Count("referrals", filter=_inbound(start_12m, end)),
            last_6m=Count("referrals", filter=_inbound(start_6m, end)),
        )
        .values_list(
            "pk",
            "health",
            "health_reasons",
            "last_referral_at",
            "first_12m_at",
            "last_12m",
            "last_6m",
        )
    )
    # django-stubs lose the annotation `last` made after values(), so they refuse it in
    # values_list() (their bug: values() then annotate() loses the names).
    touches = dict(
        Activity.providers.through.objects.filter(activity__occurred_at__lt=end)  # type: ignore[misc]
        .order_by()
        .values("provider_id")
        .annotate(last=Max("activity__occurred_at"))
        .values_list("provider_id", "last")
    )

    def local(moment: datetime | None) -> date | None:
        return timezone.localdate(moment) if moment else None

    assessed: dict[int, tuple[str, list[dict[str, Any]]]] = {}
    count = 0
    for pk, health, reasons, last_at, first_at, last_12m, last_6m in rows:
        count += 1
        result = assess_health(
            as_of=as_of,
            last_referral_on=local(last_at),
            first_12m_on=local(first_at),
            last_12m=last_12m,
            last_6m=last_6m,
            last_touch_on=local(touches.get(pk)),
        )
        if result != (health, reasons):
            assessed[pk] = result
    changed = _apply_health(assessed)
    # Every partner was assessed, changed or not: one statement, and updated_at left alone
    # (nothing an API sync needs to hear of).
    Provider.objects.update(health_assessed_at=started)
    return HealthResult(assessed=count, changed=changed)


@transaction.atomic
def _apply_health(assessed: dict[int, tuple[str, list[dict[str, Any]]]]) -> int:
    now = timezone.now()
    updated: list[Provider] = []
    changes: list[HealthChange] = []
    for batch in _batches(list(assessed)):
        for pk, current in (
            Provider.objects.select_for_update().filter(pk__in=batch).values_list("pk", "health")
        ):
            health, reasons = assessed[pk]
            # updated_at too: health is part of the partner's row in the API, whose sync
            # jobs ask for what changed since they last ran (as nightly tiering does).
            updated.append(
                Provider(
                    pk=pk,
                    health=health,
                    health_reasons=reasons,
                    health_checked_at=now,
                    updated_at=now,
                )
            )
            if health != current:
                changes.append(
                    HealthChange(
                        provider_id=pk,
                        from_health=current,
                        to_health=health,
                        reasons=reasons,
                        changed_at=now,
                    )
                )
    Provider.objects.bulk_update(
        updated,
        ["health", "health_reasons", "health_checked_at", "updated_at"],
        batch_size=BATCH_SIZE,
    )
    HealthChange.objects.bulk_create(changes, batch_size=BATCH_SIZE)
    return len(changes)
