"""Dates people type, held to what they can mean: a moment that happened is not still to
come, and nothing the practice plans or logs lies decades away. Beyond keeping typos out
(0202 for 2026), this keeps every stored moment one that Python and Postgres can read back:
9999-12-31 at 11 pm Eastern is already year 10000 in UTC, which Postgres stores and no
page could then load."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from django import forms
from django.utils import timezone

# Nothing the practice logs (an activity, a referral) is older than this.
EARLIEST = date(2000, 1, 1)
# How far ahead anything is planned or due.
YEARS_AHEAD = 5


def not_in_future(value: datetime, label: Any) -> datetime:
    """A moment typed as when something happened: not later than now (a minute's leeway
    for the clock of the browser that filled in "now"), nor before EARLIEST."""
    if value > timezone.now() + timedelta(minutes=1):
        raise forms.ValidationError(
            f"{label} cannot be in the future: it is when it happened "
            f"({timezone.localtime(value):%b %-d, %Y %-I:%M %p} is still to come)."
        )
    return within_reach(value, label)


def within_reach(value: date | datetime, label: Any) -> Any:
    """A date or moment between EARLIEST and YEARS_AHEAD years from today."""
    day = timezone.localtime(value).date() if isinstance(value, datetime) else value
    today = timezone.localdate()
    try:
        latest = today.replace(year=today.year + YEARS_AHEAD)
    except ValueError:  # February 29th, five years on
        latest = today.replace(year=today.year + YEARS_AHEAD, day=28)
    if not EARLIEST <= day <= latest:
        raise forms.ValidationError(
            f"{label}: choose a date between {EARLIEST:%b %-d, %Y} and {latest:%b %-d, %Y} "
            f"({day:%b %-d, %Y} is out of range; check the year)."
        )
    return value
