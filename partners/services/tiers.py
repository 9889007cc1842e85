"""Provider tiers: a manager's override and the nightly A/B/C tiering."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Count
from django.utils import timezone

from partners.models import Provider, TierChange
from partners.services._common import BATCH_SIZE, _batches, _inbound, _volume_windows

# --- Tiers set by a manager -------------------------------------------------------------


@transaction.atomic
def provider_set_tier(
    *,
    provider: Provider,
    tier: str,
    reason: str,
    actor: User | None,
    pinned_until: date | None = None,
) -> TierChange | None:
    """A manager's override: set the tier and pin it, so the nightly tiering leaves it
    alone until `pinned_until` has passed (no date: until a manager clears the pin).
    Returns None when neither the tier nor the pin changes (nothing to record)."""
    locked = Provider.objects.select_for_update().get(pk=provider.pk)
    if locked.tier == tier and locked.tier_pinned and locked.tier_pinned_until == pinned_until:
        return None
    change = TierChange(
        provider=locked,
        kind=TierChange.Kind.OVERRIDE,
        from_tier=locked.tier,
        to_tier=tier,
        pinned_until=pinned_until,
        reason=reason,
        changed_by=actor,
        changed_at=timezone.now(),
    )
    change.full_clean()
    change.save()
    locked.tier = tier
    locked.tier_pinned = True
    locked.tier_pinned_until = pinned_until
    locked.save(update_fields=["tier", "tier_pinned", "tier_pinned_until", "updated_at"])
    provider.tier, provider.tier_pinned, provider.tier_pinned_until = tier, True, pinned_until
    return change


@transaction.atomic
def provider_unpin_tier(
    *, provider: Provider, actor: User | None, reason: str = ""
) -> TierChange | None:
    """Hand the tier back to the nightly tiering (which recomputes it tonight)."""
    locked = Provider.objects.select_for_update().get(pk=provider.pk)
    if not locked.tier_pinned:
        return None
    change = TierChange.objects.create(
        provider=locked,
        kind=TierChange.Kind.PIN_CLEARED,
        from_tier=locked.tier,
        to_tier=locked.tier,
        reason=reason or "Returned to nightly tiering",
        changed_by=actor,
        changed_at=timezone.now(),
    )
    locked.tier_pinned = False
    locked.tier_pinned_until = None
    locked.save(update_fields=["tier_pinned", "tier_pinned_until", "updated_at"])
    provider.tier_pinned, provider.tier_pinned_until = False, None
    return change


# --- Nightly tiering --------------------------------------------------------------------

TIER_A_SHARE = 0.8  # A: the top partners who together send this share of referrals
TIER_B_STEADY = 4  # B without growth: about one referral a quarter
GROWTH_MIN_RECENT = 2  # growth needs at least this many referrals in the last 6 months...
GROWTH_FACTOR = 1.5  # ...and half again as many as in the 6 months before


@dataclass(frozen=True)
class TierVolume:
    pk: int
    last_12m: int
    last_6m: int

    @property
    def prior_6m(self) -> int:
        return self.last_12m - self.last_6m

    @property
    def growing(self) -> bool:
        return self.last_6m >= GROWTH_MIN_RECENT and self.last_6m >= GROWTH_FACTOR * self.prior_6m


def classify_tiers(volumes: Iterable[TierVolume]) -> dict[int, tuple[str, str]]:
    """Tier and the reason in words for each partner, from inbound volume.

    A: rank partners by referrals in the trailing 12 months; the top ones who together
       send 80% of all referrals are A (the partner that crosses 80% is included, and so
       is anyone tied with it, so equal partners never land in different tiers).
    B: outside A, partners with growth potential: growing (at least 2 referrals in the last
       6 months and 1.5 times the 6 months before) or steady (4+ in 12 months).
    C: everyone else who sent at least one referral in 12 months.
    No tier: no referrals in 12 months.
    """
    volumes = list(volumes)
    total = sum(v.last_12m for v in volumes)
    ranked = sorted((v for v in volumes if v.last_12m), key=lambda v: (-v.last_12m, v.pk))
    top: set[int] = set()
    running, last_added = 0, float("inf")
    for volume in ranked:
        if running >= TIER_A_SHARE * total and volume.last_12m < last_added:
            break
        top.add(volume.pk)
        running += volume.last_12m
        last_added = volume.last_12m
    result: dict[int, tuple[str, str]] = {}
    for v in volumes:
        if v.pk in top:
            share = v.last_12m / total
            result[v.pk] = (
                "A",
                f"{v.last_12m} referrals in 12 months ({share:.0%} of all): among the top "
                f"partners who together send {TIER_A_SHARE:.0%} of referrals",
            )
        elif v.last_12m and v.growing:
            result[v.pk] = (
                "B",
                f"Growing: {v.last_6m} referrals in the last 6 months against {v.prior_6m} "
                "in the 6 months before",
            )
        elif v.last_12m >= TIER_B_STEADY:
            result[v.pk] = ("B", f"Steady: {v.last_12m} referrals in 12 months")
        elif v.last_12m:
            result[v.pk] = ("C", f"Occasional: {v.last_12m} referrals in 12 months, not growing")
        else:
            result[v.pk] = ("", "No referrals in 12 months")
    return result


@dataclass(frozen=True)
class RetierResult:
    changed: int
    pinned: int
    referrals: int


def _pin_holds(pinned: bool, until: date | None, as_of: date) -> bool:
    return pinned and (until is None or until >= as_of)


def providers_retier(*, as_of: date) -> RetierResult:
    """Classify every partner A/B/C (see classify_tiers) from one aggregate query, and
    write a TierChange (changed_by empty: the nightly tiering) only where the tier moves.
    A manager's pin is respected while it holds; an expired pin is cleared and recorded."""
    start_12m, start_6m, end = _volume_windows(as_of)
    volumes = (
        Provider.objects.order_by()
        .annotate(
            last_12m=Count("referrals", filter=_inbound(start_12m, end)),
            last_6m=Count("referrals", filter=_inbound(start_6m, end)),
        )
        .values_list("pk", "tier", "tier_pinned", "tier_pinned_until", "last_12m", "last_6m")
    )
    current: dict[int, tuple[str, bool, date | None]] = {}
    tier_volumes = []
    for pk, tier, pinned, until, last_12m, last_6m in volumes:
        current[pk] = (tier, pinned, until)
        tier_volumes.append(TierVolume(pk, last_12m, last_6m))
    decisions = classify_tiers(tier_volumes)
    candidates = [
        pk
        for pk, (tier, pinned, until) in current.items()
        if (pinned and not _pin_holds(pinned, until, as_of))
        or (not pinned and tier != decisions[pk][0])
    ]
    changed = _apply_tiers(candidates, decisions, as_of=as_of)
    return RetierResult(
        changed=changed,
        pinned=sum(1 for _, p, u in current.values() if _pin_holds(p, u, as_of)),
        referrals=sum(v.last_12m for v in tier_volumes),
    )


@transaction.atomic
def _apply_tiers(
    candidates: list[int], decisions: dict[int, tuple[str, str]], *, as_of: date
) -> int:
    now = timezone.now()
    changes: list[TierChange] = []
    updated: list[Provider] = []
    for batch in _batches(candidates):
        # Re-read under lock: a manager may have pinned a tier since the aggregate ran.
        for provider in Provider.objects.select_for_update().filter(pk__in=batch).order_by("pk"):
            tier, reason = decisions[provider.pk]
            if _pin_holds(provider.tier_pinned, provider.tier_pinned_until, as_of):
                continue
            if provider.tier_pinned:
                expired = provider.tier_pinned_until
                changes.append(
                    TierChange(
                        provider=provider,
                        kind=TierChange.Kind.PIN_CLEARED,
                        from_tier=provider.tier,
                        to_tier=provider.tier,
                        reason=f"The manager's tier was kept until {expired:%b %-d, %Y}",
                        changed_at=now,
                    )
                )
                provider.tier_pinned, provider.tier_pinned_until = False, None
            if provider.tier != tier:
                changes.append(
                    TierChange(
                        provider=provider,
                        kind=TierChange.Kind.NIGHTLY,
                        from_tier=provider.tier,
                        to_tier=tier,
                        reason=reason[:300],
                        changed_at=now,
                    )
                )
                provider.tier = tier
            provider.updated_at = now
            updated.append(provider)
    Provider.objects.bulk_update(
        updated, ["tier", "tier_pinned", "tier_pinned_until", "updated_at"], batch_size=BATCH_SIZE
    )
    TierChange.objects.bulk_create(changes, batch_size=BATCH_SIZE)
    return sum(1 for change in changes if change.kind == TierChange.Kind.NIGHTLY)
