"""Helpers the partner services share: batching bulk writes and the inbound-referral windows."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, time, timedelta
from typing import Any

from django.db.models import Q
from django.utils import timezone

from core.dates import TWELVE_MONTHS

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


def _volume_windows(as_of: date) -> tuple[datetime, datetime, datetime]:
    """(start of the 12 months, start of their last 6 months, end) as of the end of
    `as_of`. The 12 months are those every other figure counts (core.dates: from the
    start of that day a year ago), so a tier's or health's reason gives the number the
    partner page and the reports show; its two halves have 183 days each."""
    zone = timezone.get_current_timezone()
    start_12m = datetime.combine(as_of - TWELVE_MONTHS, time.min, tzinfo=zone)
    start_6m = datetime.combine(as_of - timedelta(days=182), time.min, tzinfo=zone)
    return start_12m, start_6m, _end_of_day(as_of)


def _inbound(start: datetime, end: datetime) -> Q:
    from referrals.models import Referral

    return Q(
        referrals__direction=Referral.Direction.INBOUND,
        referrals__received_at__gte=start,
        referrals__received_at__lt=end,
        # A copy cancelled as a duplicate is not a second referral (Referral.duplicate_of).
        referrals__duplicate_of__isnull=True,
    )
