"""Outreach against referrals: does the liaisons' work show in what their partners send?"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import Case, Count, Q, Value, When

from outreach.models import Activity
from partners.models import Provider
from referrals.models import Referral

# Lift compares two growth rates; from a handful of referrals either rate is noise (2 → 8
# is +300 %), so it is given only where both groups had at least this many before.
LIFT_BASE = 20


def _change(before: int, now: int) -> float | None:
    return (now - before) / before * 100 if before else None


def _flow(before: int, now: int) -> dict[str, Any]:
    return {"before": before, "now": now, "change": _change(before, now)}


def outreach_lift(*, start: datetime, end: datetime) -> dict[str, Any]:
    """Per relationship owner: their partners, the activities they logged in [start, end)
    and how many of their partners those reached, and the inbound referrals of their
    partners in the period against the same length of time before, for the partners
    reached by outreach in the period and for the others. A partner is reached when an
    activity of the period named them or was logged at their office. Four queries however
    many liaisons and partners: each partner's owner and reach (one row a partner), the
    activities and the referrals grouped, and the owners."""
    before = start - (end - start)
    activities = Activity.objects.filter(occurred_at__gte=start, occurred_at__lt=end)
    met = Activity.providers.through.objects.filter(activity__in=activities).values("provider_id")
    offices = activities.exclude(organization=None).values("organization_id")
    reached = Q(pk__in=met) | Q(organization__in=offices)
    # Each partner's owner and whether outreach reached them, asked once per partner: the
    # referrals are then counted by partner alone (asked of each referral, joined to its
    # partner, it took a second over two periods of a million referrals).
    owner_of: dict[int, tuple[Any, bool]] = {}
    partners: dict[Any, dict[str, Any]] = {}
    for pk, owner, was_reached in (
        Provider.objects.order_by()
        .annotate(
            was_reached=Case(When(reached, then=Value(True)), default=Value(False)),
        )
        .values_list("pk", "owner", "was_reached")
        .iterator(chunk_size=5000)
    ):
        owner_of[pk] = (owner, was_reached)
        into = partners.setdefault(owner, {"owner": owner, "partners": 0, "reached": 0})
        into["partners"] += 1
        into["reached"] += was_reached
    logged = {
        row["logged_by"]: row["n"]
        for row in activities.order_by().values("logged_by").annotate(n=Count("pk"))
    }
    flows: dict[Any, dict[bool, dict[str, Any]]] = {}
    for provider, now, earlier in (
        Referral.objects.counted()
        .filter(direction=Referral.Direction.INBOUND, received_at__gte=before, received_at__lt=end)
        .order_by()
        .values_list("provider")
        .annotate(
            now=Count("pk", filter=Q(received_at__gte=start)),
            before=Count("pk", filter=Q(received_at__lt=start)),
        )
    ):
        if provider not in owner_of:
            continue  # a partner added since the partners were read
        owner, was_reached = owner_of[provider]
        counts = flows.setdefault(owner, {}).setdefault(was_reached, {"now": 0, "before": 0})
        counts["now"] += now
        counts["before"] += earlier
    owners = {*partners, *logged, *flows} - {None}
    people = get_user_model().objects.in_bulk(list(owners))
    rows = [
        _lift_row(people[pk], partners.get(pk), logged.get(pk, 0), flows.get(pk, {}))
        for pk in owners
        if pk in people
    ]
    rows.sort(key=lambda row: (-row["activities"], row["person"].get_full_name(), row["person"].pk))
    if None in partners or None in flows:
        rows.append(_lift_row(None, partners.get(None), 0, flows.get(None, {})))
    total_partners = {
        "partners": sum(p["partners"] for p in partners.values()),
        "reached": sum(p["reached"] for p in partners.values()),
    }
    every_flow: dict[bool, dict[str, Any]] = {}
    for by_reach in flows.values():
        for was_reached, counts in by_reach.items():
            into = every_flow.setdefault(was_reached, {"now": 0, "before": 0})
            into["now"] += counts["now"]
            into["before"] += counts["before"]
    total = _lift_row(None, total_partners, sum(logged.values()), every_flow)
    return {"rows": rows, "total": total}


def _lift_row(
    person: Any,
    partners: dict[str, Any] | None,
    activities: int,
    flows: dict[bool, dict[str, Any]],
) -> dict[str, Any]:
    empty = {"now": 0, "before": 0}
    reached, others = flows.get(True, empty), flows.get(False, empty)
    reached_flow = _flow(reached["before"], reached["now"])
    others_flow = _flow(others["before"], others["now"])
    lift = None
    if min(reached["before"], others["before"]) >= LIFT_BASE:
        lift = reached_flow["change"] - others_flow["change"]
    return {
        "person": person,
        "partners": partners["partners"] if partners else 0,
        "reached_partners": partners["reached"] if partners else 0,
        "activities": activities,
        "all": _flow(reached["before"] + others["before"], reached["now"] + others["now"]),
        "reached": reached_flow,
        "others": others_flow,
        # Percentage points: how much faster referrals grew from partners reached.
        "lift": lift,
    }
