"""Helpers the partner services share: batching bulk writes and the inbound-referral windows."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, time, timedelta
from typing import Any

from django.db.models import Q
from django.utils import timezone

# Locks and bulk writes go in batches so no statement outgrows SQLite's variable limit.
BATCH_SIZE = 500


def _batches(items: list[Any], size: int = BATCH_SIZE) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _end_of_day(day: date) -> datetime:
    """The first instant after `day` in the practice's time zone: windows end here."""
    return datetime.combine(
        day + timedelta(days=1), time.min, tzinfo=timezone.get_current_timezone()
    )


def _inbound(start: datetime, end: datetime) -> Q:
    from referrals.models import Referral

    return Q(
        referrals__direction=Referral.Direction.INBOUND,
        referrals__received_at__gte=start,
        referrals__received_at__lt=end,
        # A copy cancelled as a duplicate is not a second referral (Referral.duplicate_of).
        referrals__duplicate_of__isnull=True,
    )
