from datetime import UTC, datetime, timedelta

import pytest

from core.templatetags.elapsed import elapsed

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("delta", "expected"),
    [
        (timedelta(seconds=30), "0\xa0minutes"),
        (timedelta(minutes=1), "1\xa0minute"),
        (timedelta(hours=2, minutes=5), "2\xa0hours, 5\xa0minutes"),
        (timedelta(days=3, hours=4), "3\xa0days, 4\xa0hours"),
        (timedelta(days=3), "3\xa0days"),
        (timedelta(days=15), "2\xa0weeks, 1\xa0day"),
        (timedelta(days=65), "2\xa0months"),
        (timedelta(days=400), "1\xa0year, 1\xa0month"),
        (timedelta(hours=-3), "0\xa0minutes"),
    ],
)
def test_elapsed_reads_like_timesince(delta, expected):
    assert elapsed(START, START + delta) == expected


def test_elapsed_of_nothing_is_empty():
    assert elapsed(None) == ""


def test_elapsed_defaults_to_now():
    assert elapsed(datetime.now(UTC) - timedelta(days=1, hours=1)) == "1\xa0day, 1\xa0hour"
