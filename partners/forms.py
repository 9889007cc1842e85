from __future__ import annotations

from typing import Any

import django_filters
from django import forms
from django.contrib.auth import get_user_model
from django.db.models import Q

from core.filters import StyledFilterSet
from core.forms import UserChoiceField
from core.roles import Role
from partners.models import Organization, Provider, StaffMember


def liaison_choices() -> Any:
    return (
        get_user_model()
        .objects.filter(is_active=True, groups__name__in=[Role.LIAISON, Role.MANAGER])
        .distinct()
        .order_by("first_name", "last_name", "username")
    )


class ProviderForm(forms.ModelForm):
    owner = UserChoiceField(
        queryset=liaison_choices(),
        required=False,
        label="Relationship owner",
        help_text="The liaison who looks after this relationship.",
    )

    class Meta:
        model = Provider
        fields = [
            "npi",
            "first_name",
            "last_name",
            "credential",
            "taxonomy_code",
            "specialty",
            "organization",
            "phone",
            "email",
            "owner",
            "status",
            "notes",
            "preferred_channel",
            "thank_you_by",
            "letters_opt_out",
        ]
        widgets = {"notes": forms.Textarea(attrs={"rows": 3})}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["npi"].widget.attrs.update({"inputmode": "numeric", "autocomplete": "off"})
        # Imports and older clients post no preferences: they keep the defaults.
        for name in ("preferred_channel", "thank_you_by"):
            self.fields[name].required = False

    def clean_preferred_channel(self) -> str:
        return self.cleaned_data["preferred_channel"] or Provider.PreferredChannel.EMAIL

    def clean_thank_you_by(self) -> str:
        return self.cleaned_data["thank_you_by"] or Provider.ThankYouBy.LETTER

    def clean_npi(self) -> str:
        return self.cleaned_data["npi"].strip()


class TierForm(forms.Form):
    tier = forms.ChoiceField(choices=[("", "No tier"), *Provider.Tier.choices], required=False)
    reason = forms.CharField(
        max_length=300, help_text="Why the tier changes; kept in the partner's history."
    )


class OrganizationForm(forms.ModelForm):
    class Meta:
        model = Organization
        fields = [
            "name",
            "npi",
            "phone",
            "fax",
            "email",
            "address_line1",
            "address_line2",
            "city",
            "state",
            "zip_code",
            "notes",
        ]
        widgets = {"notes": forms.Textarea(attrs={"rows": 3})}

    def clean_state(self) -> str:
        return self.cleaned_data["state"].strip().upper()


class StaffMemberForm(forms.ModelForm):
    class Meta:
        model = StaffMember
        fields = [
            "first_name",
            "last_name",
            "role",
            "phone",
            "email",
            "birthday",
            "preferences",
            "notes",
        ]
        widgets = {
            "birthday": forms.DateInput(attrs={"type": "date"}),
            "notes": forms.Textarea(attrs={"rows": 3}),
        }


class ProviderFilter(StyledFilterSet):
    q = django_filters.CharFilter(method="filter_search", label="Search")
    status = django_filters.ChoiceFilter(choices=Provider.Status.choices, empty_label="Any status")
    tier = django_filters.ChoiceFilter(choices=Provider.Tier.choices, empty_label="Any tier")
    owner = django_filters.ModelChoiceFilter(
        queryset=lambda request: liaison_choices(), empty_label="Any owner", label="Owner"
    )

    class Meta:
        model = Provider
        fields = ["q", "status", "tier", "owner"]

    def filter_search(self, queryset: Any, name: str, value: str) -> Any:
        return queryset.search(value)


class OrganizationFilter(StyledFilterSet):
    q = django_filters.CharFilter(method="filter_search", label="Search")

    class Meta:
        model = Organization
        fields = ["q"]

    def filter_search(self, queryset: Any, name: str, value: str) -> Any:
        query = Q()
        for word in value.split():
            query &= Q(name__icontains=word) | Q(city__icontains=word)
        return queryset.filter(query)
