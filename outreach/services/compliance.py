"""The gifts and meals limit: may a cost be logged for these physicians?"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from outreach import ledger
from outreach.models import Activity
from partners.models import Provider


class ComplianceLimitExceeded(ValidationError):
    """Logging this cost would take a physician over the year's limit."""

    def __init__(self, over: list[ledger.Allowance], *, can_override: bool = False) -> None:
        self.over = over
        names = ", ".join(
            f"{a.provider.display_name} (${a.spent} so far + ${a.share} = ${a.after} of ${a.limit})"
            for a in over
        )
        # A manager is told where to give the reason, not to ask a manager.
        way_out = (
            "give the reason for exceeding the yearly limit"
            if can_override
            else "ask a manager to log it with a reason"
        )
        super().__init__(
            f"This would take {names} over the {over[0].year} gifts and meals limit. "
            f"Lower the cost or the attendees, or {way_out}.",
            code="over_limit",
        )


def check_activity_cost(
    *,
    activity: Activity,
    providers: list[Provider],
    staff_count: int,
    actor: User,
) -> list[ledger.Allowance]:
    """May this cost be logged? Returns every attending physician's allowance; raises
    when one would go over the limit and no manager gave a reason for the override."""
    if not activity.cost:
        return []
    year = timezone.localtime(activity.occurred_at).year
    share = ledger.share_per_head(cost=activity.cost, headcount=len(providers) + staff_count)
    found = ledger.allowances(providers, year=year, share=share, exclude_activity_ids=[activity.pk])
    _enforce_limit(found, reason_for=lambda _: activity.limit_override_reason, actor=actor)
    return found


def _enforce_limit(
    found: list[ledger.Allowance],
    *,
    reason_for: Callable[[ledger.Allowance], str],
    actor: User,
) -> None:
    """A share over the yearly limit needs a reason on its activity, given by a manager."""
    over = [a for a in found if a.over]
    unexplained = [a for a in over if not reason_for(a).strip()]
    if unexplained:
        raise ComplianceLimitExceeded(
            unexplained, can_override=actor.has_perm("outreach.override_compliance_limit")
        )
    if over and not actor.has_perm("outreach.override_compliance_limit"):
        raise PermissionDenied("Only a manager may log a cost over the yearly limit.")


def _lock_providers(providers: Iterable[Provider]) -> None:
    """Lock the physicians so two liaisons logging costs for the same doctor at the same
    moment cannot both slip under the limit."""
    list(
        Provider.objects.select_for_update()
        .filter(pk__in=[p.pk for p in providers])
        .order_by("pk")
        .values_list("pk", flat=True)
    )
