from __future__ import annotations

from datetime import date, datetime, time, timedelta

import django_filters
from django import forms
from django.contrib.auth import get_user_model
from django.core.validators import MaxValueValidator
from django.db.models import QuerySet
from django.utils import timezone

from audit.models import PatientDataAccess
from core.filters import DateRangeFilterForm, PersonFilter, StyledFilterSet

NO_SUCH_REFERRAL = "No referral has that number."


def _day_start(day: date) -> datetime:
    """Midnight at the start of `day` on the practice's clock."""
    return timezone.make_aware(datetime.combine(day, time.min))


class PatientDataAccessFilter(StyledFilterSet):
    user = PersonFilter(
        queryset=get_user_model().objects.order_by("first_name", "last_name", "username"),
        empty_label="Anyone",
    )
    # The upper bound keeps a typed number inside the id column. It is a validator rather
    # than max_value so the page never shows it (as an input's max, or the browser's "less
    # than or equal to 4611686018427387904"); whoever types past it is told so in words.
    referral = django_filters.NumberFilter(
        field_name="referral_id",
        label="Referral #",
        min_value=1,
        decimal_places=0,
        validators=[MaxValueValidator(2**62, message=NO_SUCH_REFERRAL)],
        error_messages={
            "min_value": NO_SUCH_REFERRAL,
            "max_decimal_places": "A referral number is a whole number.",
        },
    )
    action = django_filters.ChoiceFilter(
        choices=PatientDataAccess.Action.choices, empty_label="Any action"
    )
    source = django_filters.ChoiceFilter(
        choices=PatientDataAccess.Source.choices, empty_label="Any way in", label="Through"
    )
    # The practice's days as ranges of the indexed time: turning each row's time into a
    # date instead made "To" an old date read every newer row of millions first.
    after = django_filters.DateFilter(
        method="filter_after", label="From", widget=forms.DateInput(attrs={"type": "date"})
    )
    before = django_filters.DateFilter(
        method="filter_before", label="To", widget=forms.DateInput(attrs={"type": "date"})
    )

    def filter_after(
        self, queryset: QuerySet[PatientDataAccess], name: str, value: date
    ) -> QuerySet[PatientDataAccess]:
        return queryset.filter(at__gte=_day_start(value))

    def filter_before(
        self, queryset: QuerySet[PatientDataAccess], name: str, value: date
    ) -> QuerySet[PatientDataAccess]:
        if value == date.max:
            return queryset  # every entry is before the calendar's last day ends
        return queryset.filter(at__lt=_day_start(value + timedelta(days=1)))

    class Meta:
        model = PatientDataAccess
        fields = ["user", "referral", "action", "source"]
        # A From date after the To date is said, not shown as an empty trail.
        form = DateRangeFilterForm
