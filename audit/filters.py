from __future__ import annotations

import django_filters
from django import forms
from django.contrib.auth import get_user_model
from django.core.validators import MaxValueValidator

from audit.models import PatientDataAccess
from core.filters import DateRangeFilterForm, LocalDayFilter, PersonFilter, StyledFilterSet

NO_SUCH_REFERRAL = "No referral has that number."


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
    after = LocalDayFilter(
        field_name="at", end="from", label="From", widget=forms.DateInput(attrs={"type": "date"})
    )
    before = LocalDayFilter(
        field_name="at", end="to", label="To", widget=forms.DateInput(attrs={"type": "date"})
    )

    class Meta:
        model = PatientDataAccess
        fields = ["user", "referral", "action", "source"]
        # A From date after the To date is said, not shown as an empty trail.
        form = DateRangeFilterForm
