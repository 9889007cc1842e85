from __future__ import annotations

import django_filters
from django import forms
from django.contrib.auth import get_user_model

from audit.models import PatientDataAccess
from core.filters import PersonFilter, StyledFilterSet


class PatientDataAccessFilter(StyledFilterSet):
    user = PersonFilter(
        queryset=get_user_model().objects.order_by("first_name", "last_name", "username"),
        empty_label="Anyone",
    )
    referral = django_filters.NumberFilter(
        field_name="referral_id", label="Referral #", min_value=1, max_value=2**62
    )
    action = django_filters.ChoiceFilter(
        choices=PatientDataAccess.Action.choices, empty_label="Any action"
    )
    after = django_filters.DateFilter(
        field_name="at",
        lookup_expr="date__gte",
        label="From",
        widget=forms.DateInput(attrs={"type": "date"}),
    )
    before = django_filters.DateFilter(
        field_name="at",
        lookup_expr="date__lte",
        label="To",
        widget=forms.DateInput(attrs={"type": "date"}),
    )

    class Meta:
        model = PatientDataAccess
        fields = ["user", "referral", "action"]
