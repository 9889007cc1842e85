"""What a bulk action on the work queue tells the coordinator: what was done to which rows,
and which rows were left alone and why, grouped by reason."""

from __future__ import annotations

from typing import Any

from core.templatetags.people import person
from referrals.models import Status
from referrals.services.bulk import SKIP_CHANGED, SKIP_NOT_YOURS, BulkResult

# "Declined 3 referrals", "Put 2 referrals on hold".
STATUS_VERBS: dict[str, tuple[str, str]] = {
    Status.ACCEPTED: ("Accepted", ""),
    Status.DECLINED: ("Declined", ""),
    Status.ON_HOLD: ("Put", " on hold"),
    Status.CANCELLED: ("Cancelled", ""),
    Status.CLOSED: ("Closed", ""),
}

# What to do about rows left alone for each reason.
SKIP_ADVICE = {
    SKIP_CHANGED: "reload the page to see their changes, then try again",
    SKIP_NOT_YOURS: "they may have been deleted, or your role cannot change them",
}


def _referrals(ids: list[int]) -> str:
    numbers = ", ".join(f"#{pk}" for pk in ids)
    return f"{len(ids)} referral{'s' if len(ids) != 1 else ''} ({numbers})"


def bulk_summary(result: BulkResult, data: dict[str, Any]) -> tuple[str, list[str]]:
    """(what was done, one line per reason rows were skipped)."""
    done = ""
    if result.applied:
        rows = _referrals(result.applied)
        to_status = data.get("to_status")
        if to_status:
            verb, tail = STATUS_VERBS[to_status]
            done = f"{verb} {rows}{tail}"
            reason = data.get("reason", "").strip()
            if to_status in (Status.DECLINED, Status.CANCELLED):
                done += f" (reason: {reason})"
            elif to_status == Status.ON_HOLD and reason:
                done += f" (waiting for: {reason})"
            them = "them" if len(result.applied) > 1 else "it"
            if data.get("assign_to"):
                done += f" and assigned {them} to {person(data['assign_to'])}"
            elif data.get("unassign"):
                done += f" and unassigned {them}"
        elif data.get("assign_to"):
            done = f"Assigned {rows} to {person(data['assign_to'])}"
        else:
            done = f"Unassigned {rows}"
        done += "."
    by_reason: dict[str, list[int]] = {}
    for pk, why in result.skipped.items():
        by_reason.setdefault(why, []).append(pk)
    skipped = []
    for why, ids in by_reason.items():
        line = f"Left {_referrals(ids)} unchanged: {why}"
        if why in SKIP_ADVICE:
            line += f"; {SKIP_ADVICE[why]}"
        skipped.append(line + ".")
    return done, skipped
