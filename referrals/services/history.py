"""The writers of referral history: status moves, changes of coordinator and edits."""

from __future__ import annotations

from datetime import datetime

from django.contrib.auth.models import User

from referrals.models import ReferralEvent


def _record_event(
    *,
    referral_id: int,
    actor: User | None,
    at: datetime,
    from_status: str = "",
    to_status: str = "",
    note: str = "",
    details: list[dict[str, str]] | None = None,
) -> ReferralEvent:
    """The single writer of referral history: a status move, with what it decided
    (`details`: the reason given, the appointment booked) as the history shows it."""
    return ReferralEvent.objects.create(
        referral_id=referral_id,
        kind=ReferralEvent.Kind.STATUS,
        from_status=from_status,
        to_status=to_status,
        actor=actor,
        at=at,
        note=note,
        changes=details or None,
    )


def _record_assignments(
    *,
    moves: list[tuple[int, int | None]],
    to_assignee: User | None,
    actor: User | None,
    at: datetime,
    note: str = "",
) -> None:
    """History of who holds a referral: one event per (referral id, previous assignee id)
    in `moves`, written in one query."""
    ReferralEvent.objects.bulk_create(
        ReferralEvent(
            referral_id=referral_id,
            kind=ReferralEvent.Kind.ASSIGNMENT,
            from_assignee_id=from_id,
            to_assignee=to_assignee,
            actor=actor,
            at=at,
            note=note,
        )
        for referral_id, from_id in moves
    )


def _record_edit(
    *,
    referral_id: int,
    changes: list[dict[str, str | None]],
    actor: User | None,
    at: datetime,
) -> ReferralEvent:
    return ReferralEvent.objects.create(
        referral_id=referral_id,
        kind=ReferralEvent.Kind.EDIT,
        changes=changes,
        actor=actor,
        at=at,
    )
