"""Django's `date` filter for the handful of formats the busiest pages use, without its
per-call machinery.

Django's DateFormat builds an object and looks every letter up through translation on
each call; the work queue formats fifty dates a page, and that was about 4 % of its time.
A format string made only of the letters below is compiled once into a list of small
functions; any other format, and any value that is not a date, goes to Django's filter.
English only, like the rest of the app (translation is off), so the names are fixed.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import date, datetime
from typing import Any

from django.template import defaultfilters
from django.utils import timezone

_MONTHS = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
]
_DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]


def _hour12(value: datetime) -> int:
    return value.hour % 12 or 12


def _meridiem(value: datetime) -> str:
    return "a.m." if value.hour < 12 else "p.m."


# Django's meaning of each letter (django.utils.dateformat).
_DATE_CODES: dict[str, Callable[[Any], str]] = {
    "Y": lambda value: f"{value.year:04d}",
    "M": lambda value: _MONTHS[value.month - 1][:3],
    "F": lambda value: _MONTHS[value.month - 1],
    "n": lambda value: str(value.month),
    "m": lambda value: f"{value.month:02d}",
    "j": lambda value: str(value.day),
    "d": lambda value: f"{value.day:02d}",
    "D": lambda value: _DAYS[value.weekday()][:3],
    "l": lambda value: _DAYS[value.weekday()],
}
_TIME_CODES: dict[str, Callable[[Any], str]] = {
    "g": lambda value: str(_hour12(value)),
    "G": lambda value: str(value.hour),
    "H": lambda value: f"{value.hour:02d}",
    "i": lambda value: f"{value.minute:02d}",
    "s": lambda value: f"{value.second:02d}",
    "a": _meridiem,
}


@functools.lru_cache(maxsize=64)
def _compile(format_string: str, with_time: bool) -> tuple[Any, ...] | None:
    """The format as a tuple of literal strings and functions, or None when it uses a
    letter this module does not know (or a backslash escape)."""
    codes = {**_DATE_CODES, **_TIME_CODES} if with_time else _DATE_CODES
    parts: list[Any] = []
    for char in format_string:
        if char in codes:
            parts.append(codes[char])
        elif char.isalpha() or char == "\\":
            return None
        else:
            parts.append(char)
    return tuple(parts)


def format_date(value: Any, format_string: str | None) -> str:
    """`value|date:format_string` as Django renders it (the value already in local time;
    no format means Django's DATE_FORMAT)."""
    is_datetime = isinstance(value, datetime)
    if format_string is not None and (is_datetime or isinstance(value, date)):
        parts = _compile(format_string, is_datetime)
        if parts is not None:
            return "".join(part if isinstance(part, str) else part(value) for part in parts)
    return defaultfilters.date(value, format_string)


# A day further than this from today shows its year: "due Jan 2" must not pass for this
# coming January when it is a typo's year, nor last year's for this year's.
NEAR_DAYS = 182


def near_date(value: Any, format_string: str = "M j") -> str:
    """A day as lists show it (month and day), with the year when it is not within half
    a year of today. Aware datetimes in the current time zone."""
    if value in (None, ""):
        return ""
    if isinstance(value, datetime) and timezone.is_aware(value):
        value = timezone.localtime(value)
    day = value.date() if isinstance(value, datetime) else value
    if abs((day - timezone.localdate()).days) > NEAR_DAYS:
        format_string += ", Y"
    return format_date(value, format_string)
