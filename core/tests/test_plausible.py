from datetime import date, datetime, timedelta

import pytest
from django import forms
from django.utils import timezone

from core.plausible import not_in_future, within_reach


def test_a_day_within_reach_passes_and_one_out_of_it_is_refused_with_the_range(monkeypatch):
    monkeypatch.setattr(timezone, "localdate", lambda: date(2028, 2, 29))
    assert within_reach(date(2033, 2, 28), "Due") == date(2033, 2, 28)
    assert within_reach(date(2000, 1, 1), "Due") == date(2000, 1, 1)
    with pytest.raises(forms.ValidationError, match="between Jan 1, 2000 and Feb 28, 2033"):
        within_reach(date(2033, 3, 1), "Due")
    with pytest.raises(forms.ValidationError, match="Dec 31, 1999 is out of range"):
        within_reach(date(1999, 12, 31), "Due")


def test_the_last_day_of_a_month_keeps_its_day_five_years_on(monkeypatch):
    monkeypatch.setattr(timezone, "localdate", lambda: date(2026, 12, 30))
    assert within_reach(date(2031, 12, 30), "Due") == date(2031, 12, 30)


def test_a_moment_that_happened_is_not_still_to_come():
    now = timezone.now()
    assert not_in_future(now, "When") == now
    with pytest.raises(forms.ValidationError, match="When cannot be in the future"):
        not_in_future(now + timedelta(hours=1), "When")
    with pytest.raises(forms.ValidationError, match="out of range"):
        not_in_future(timezone.make_aware(datetime(1999, 6, 1, 12)), "When")
