"""The gifts and meals ledger: how a cost becomes each physician's share, and how much
of the yearly non-monetary compensation limit each physician has used.

The rule implemented here
-------------------------
Stark law (42 CFR 411.357(k)) caps the non-monetary compensation (meals, gifts, event
tickets) a practice may give each referring *physician* in a calendar year; CMS publishes
the figure every year and the practice enters it as a `ComplianceLimit`.

* A cost is split evenly **per head** across everyone recorded as attending: providers
  and staff alike count for the headcount, because a lunch for a physician and five staff
  members is six lunches, not one physician's lunch.
* Only providers' shares go in the ledger (`ActivityShare`): the limit applies to the
  physicians who refer, not to their staff. Every attending provider accrues, including
  NPs and PAs: the limit does not strictly apply to them, but counting them is the
  conservative choice and costs nothing.
* A share is rounded *up* to the cent, so the ledger never understates what was given.
* The year is the calendar year of the activity's date in the practice's time zone.
* The form warns from 80% of the limit and refuses a share that would take a physician
  over it, unless a manager records a reason for the override.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import ROUND_UP, Decimal

from django.db.models import Sum

from outreach.models import ActivityShare, ComplianceLimit
from partners.models import Provider

CENT = Decimal("0.01")
WARN_AT = Decimal("0.80")


def share_per_head(*, cost: Decimal | None, headcount: int) -> Decimal:
    """Each attendee's share, rounded up to the cent: a physician's yearly total is never
    understated against the limit, so the shares of an uneven split add up to a cent or
    two more than the cost ($4,000 among 7: 7 x $571.43 = $4,000.01)."""
    if not cost or headcount <= 0:
        return Decimal("0.00")
    return (cost / headcount).quantize(CENT, rounding=ROUND_UP)


@dataclass(frozen=True)
class Allowance:
    """Where one physician stands for a year, and where a new share would take them."""

    provider: Provider
    year: int
    spent: Decimal
    share: Decimal
    limit: Decimal | None

    @property
    def after(self) -> Decimal:
        return self.spent + self.share

    @property
    def percent_after(self) -> int | None:
        if not self.limit:
            return None
        return int(self.after / self.limit * 100)

    @property
    def percent_spent(self) -> int | None:
        if not self.limit:
            return None
        return int(self.spent / self.limit * 100)

    @property
    def over(self) -> bool:
        return self.limit is not None and self.after > self.limit

    @property
    def warn(self) -> bool:
        return self.limit is not None and not self.over and self.after >= self.limit * WARN_AT


def spent_by_provider(
    provider_ids: Iterable[int],
    *,
    year: int,
    exclude_activity_ids: Iterable[int | None] = (),
) -> dict[int, Decimal]:
    """Each provider's ledger total for the year, in one query, leaving out the activities
    being rewritten (None for one not saved yet)."""
    shares = ActivityShare.objects.filter(year=year, provider_id__in=list(provider_ids))
    excluded = [pk for pk in exclude_activity_ids if pk is not None]
    if excluded:
        shares = shares.exclude(activity_id__in=excluded)
    totals = shares.order_by().values("provider_id").annotate(total=Sum("amount"))
    # SQLite drops trailing zeros from decimal sums; money always shows its cents.
    return {row["provider_id"]: Decimal(row["total"]).quantize(CENT) for row in totals}


def allowances(
    providers: Iterable[Provider],
    *,
    year: int,
    share: Decimal,
    exclude_activity_ids: Iterable[int | None] = (),
) -> list[Allowance]:
    providers = list(providers)
    limit = ComplianceLimit.for_year(year)
    spent = spent_by_provider(
        [p.pk for p in providers],
        year=year,
        exclude_activity_ids=exclude_activity_ids,
    )
    return [
        Allowance(
            provider=provider,
            year=year,
            spent=spent.get(provider.pk, Decimal("0.00")),
            share=share,
            limit=limit,
        )
        for provider in providers
    ]
