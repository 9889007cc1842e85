from datetime import date

from core.dates import add_business_days, is_business_day


def test_weekends_are_not_business_days():
    assert not is_business_day(date(2026, 11, 21))  # Saturday
    assert is_business_day(date(2026, 11, 23))  # Monday


def test_thanksgiving_is_skipped():
    # Wednesday Nov 25 2026 + 2 business days skips Thanksgiving (Thu 26).
    assert add_business_days(date(2026, 11, 25), 2) == date(2026, 11, 30)


def test_zero_days_from_a_saturday_is_the_next_monday():
    assert add_business_days(date(2026, 11, 21), 0) == date(2026, 11, 23)
