from __future__ import annotations

from typing import Any

import django_filters
from django import forms
from django.contrib.auth import get_user_model
from django.db.models import Q
from django.utils import timezone

from core.filters import StyledFilterSet
from core.forms import UserChoiceField
from core.roles import Role
from intake.uploads import DocumentsField
from partners.models import Provider
from partners.widgets import ProviderPicker
from referrals.models import Referral, Status


def coordinator_choices() -> Any:
    return (
        get_user_model()
        .objects.filter(is_active=True, groups__name__in=[Role.COORDINATOR, Role.MANAGER])
        .distinct()
        .order_by("first_name", "last_name", "username")
    )


class ReferralForm(forms.ModelForm):
    received_at = forms.DateTimeField(
        label="Received",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )

    assigned_to = UserChoiceField(
        queryset=coordinator_choices(), required=False, label="Coordinator"
    )

    class Meta:
        model = Referral
        fields = [
            "direction",
            "provider",
            "channel",
            "urgency",
            "received_at",
            "patient_first_name",
            "patient_last_name",
            "patient_dob",
            "patient_phone",
            "reason",
            "assigned_to",
        ]
        widgets = {
            "provider": ProviderPicker(),
            "patient_dob": forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
            "reason": forms.Textarea(attrs={"rows": 3}),
            "patient_phone": forms.TextInput(attrs={"type": "tel"}),
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk is None:
            self.initial.setdefault(
                "received_at", timezone.localtime().replace(second=0, microsecond=0)
            )
        self.fields["provider"].error_messages["invalid_choice"] = (
            "Choose a partner from the list (type two or more letters of a name or an NPI)."
        )
        self.fields["provider"].error_messages["invalid_choice"] = (
            "Choose a partner from the list (type two or more letters of a name or an NPI)."
        )


class ReferralEntryForm(ReferralForm):
    """Logging a new referral: the referral, any faxed or scanned documents beside it,
    and the confirmation that a possible duplicate is really a new referral."""

    documents = DocumentsField(label="Faxed or scanned documents")
    confirm_duplicate = forms.BooleanField(
        required=False,
        label="This is a new referral, not one of those above: save it anyway",
        widget=forms.HiddenInput,
    )

    def ask_to_confirm_duplicate(self) -> None:
        self.fields["confirm_duplicate"].widget = forms.CheckboxInput()


class TransitionForm(forms.Form):
    to_status = forms.ChoiceField(choices=Status.choices, widget=forms.HiddenInput)
    note = forms.CharField(
        required=False, max_length=2000, widget=forms.Textarea(attrs={"rows": 2})
    )
    decline_reason = forms.CharField(required=False, max_length=300)
    appointment_at = forms.DateTimeField(
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )


class ReferralFilter(StyledFilterSet):
    number = django_filters.NumberFilter(field_name="pk", label="Referral #")
    status = django_filters.MultipleChoiceFilter(
        choices=Status.choices, widget=forms.CheckboxSelectMultiple
    )
    open = django_filters.BooleanFilter(
        method="filter_open", label="Open only", widget=forms.CheckboxInput
    )
    direction = django_filters.ChoiceFilter(
        choices=Referral.Direction.choices, empty_label="Both directions"
    )
    urgency = django_filters.ChoiceFilter(
        choices=Referral.Urgency.choices, empty_label="Any urgency"
    )
    provider = django_filters.ModelChoiceFilter(
        queryset=Provider.objects.all(), widget=ProviderPicker(), label="Partner"
    )
    received_after = django_filters.DateFilter(
        field_name="received_at",
        lookup_expr="date__gte",
        label="Received from",
        widget=forms.DateInput(attrs={"type": "date"}),
    )
    received_before = django_filters.DateFilter(
        field_name="received_at",
        lookup_expr="date__lte",
        label="Received to",
        widget=forms.DateInput(attrs={"type": "date"}),
    )
    mine = django_filters.BooleanFilter(
        method="filter_mine", label="Assigned to me", widget=forms.CheckboxInput
    )

    class Meta:
        model = Referral
        fields = ["number", "status", "direction", "urgency", "provider"]

    def filter_open(self, queryset: Any, name: str, value: bool) -> Any:
        return queryset.open() if value else queryset

    def filter_mine(self, queryset: Any, name: str, value: bool) -> Any:
        return queryset.filter(Q(assigned_to=self.request.user)) if value else queryset
