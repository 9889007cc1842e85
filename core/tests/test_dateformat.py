from datetime import date, datetime, timedelta

import pytest
from django.template import defaultfilters

from core.dateformat import format_date
from core.jinja_env import date as jinja_date

# Every format the templates use, and some they may.
FORMATS = [
    "M j, Y",
    "M j",
    "M j, Y g:i a",
    "M j g:i a",
    "D M j, Y g:i a",
    "l M j, Y g:i a",
    "l F j",
    "l",
    "g:i a",
    "g:i:s a",
    "Y",
    "Y-m-d H:i",
    "n/d/Y G:i",
]
# Every hour of the day (midnight and noon included), every month and weekday.
MOMENTS = [
    datetime(2026, 1, 1, 0, 0, 5) + timedelta(days=n * 9, hours=n, minutes=n * 7) for n in range(60)
]


@pytest.mark.parametrize("format_string", FORMATS)
def test_reads_exactly_as_djangos_date_filter(format_string):
    for moment in MOMENTS:
        assert format_date(moment, format_string) == defaultfilters.date(moment, format_string)
        if not set(format_string) & set("gGHisa"):
            day = moment.date()
            assert format_date(day, format_string) == defaultfilters.date(day, format_string)


def test_formats_it_does_not_know_go_to_django():
    moment = datetime(2026, 9, 15, 12, 0)
    # "P" (noon), "N" (Sept.), an escaped letter.
    for format_string in ("P", "N j", r"\Y Y"):
        assert format_date(moment, format_string) == defaultfilters.date(moment, format_string)
    assert format_date(moment, "P") == "noon"
    # A time on a date is refused as Django refuses it.
    with pytest.raises(TypeError):
        format_date(moment.date(), "M j g:i a")


def test_the_jinja_filter_shows_local_time_and_blank_for_nothing(settings):
    from zoneinfo import ZoneInfo

    settings.TIME_ZONE = "America/New_York"
    moment = datetime(2026, 7, 4, 16, 30, tzinfo=ZoneInfo("UTC"))
    assert jinja_date(moment, "M j, Y g:i a") == "Jul 4, 2026 12:30 p.m."
    assert jinja_date(None, "M j") == ""
    assert jinja_date(date(2026, 5, 1), "D M j") == "Fri May 1"


def test_a_day_shows_its_year_when_it_is_not_within_half_a_year_of_today():
    from datetime import timedelta

    from django.utils import timezone

    from core.dateformat import near_date

    today = timezone.localdate()
    soon, far, past = (
        today + timedelta(days=40),
        today + timedelta(days=400),
        today - timedelta(days=200),
    )
    assert near_date(today) == f"{today:%b} {today.day}"
    assert near_date(soon) == f"{soon:%b} {soon.day}"
    assert near_date(far) == f"{far:%b} {far.day}, {far.year}"
    assert near_date(past, "D M j") == f"{past:%a %b} {past.day}, {past.year}"
    assert near_date(None) == ""
