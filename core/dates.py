"""Business-day arithmetic for due dates (weekends and US federal holidays are skipped),
and the period every "last 12 months" figure counts."""

from datetime import date, datetime, time, timedelta
from functools import cache

import holidays
from django.utils import timezone

# The last twelve months: from the start of this day a year ago (in the practice's time
# zone) to now, as the reports count them by default, so a partner's page, the partner list
# and a report opened from them give the same number.
TWELVE_MONTHS = timedelta(days=365)


def local_day_start(day: date) -> datetime:
    """Midnight at the start of `day` on the practice's clock: a day as a range of times
    (from its start to the next day's), which an index on the time can serve, where
    turning every row's time into a date cannot."""
    return timezone.make_aware(datetime.combine(day, time.min))


def twelve_months_start() -> datetime:
    return timezone.make_aware(datetime.combine(timezone.localdate() - TWELVE_MONTHS, time.min))


@cache
def _us_holidays(year: int) -> holidays.HolidayBase:
    return holidays.country_holidays("US", years=year)


def is_business_day(day: date) -> bool:
    return day.weekday() < 5 and day not in _us_holidays(day.year)


def add_business_days(start: date, days: int) -> date:
    """The date `days` business days after `start` (0 means the next business day on or
    after `start`)."""
    if days < 0:
        raise ValueError("days must be zero or more")
    day = start
    while not is_business_day(day):
        day += timedelta(days=1)
    remaining = days
    while remaining:
        day += timedelta(days=1)
        if is_business_day(day):
            remaining -= 1
    return day
