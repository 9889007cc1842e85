from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth import get_user_model

from core.forms import UserChoiceField
from outreach.models import MERGE_FIELDS, Activity, LetterTemplate, Task, unknown_merge_fields
from partners.models import Organization, Provider, StaffMember


class ActivityForm(forms.ModelForm):
    occurred_at = forms.DateTimeField(
        label="When",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )

    class Meta:
        model = Activity
        fields = [
            "kind",
            "occurred_at",
            "providers",
            "staff",
            "notes",
            "next_step",
            "next_step_due",
        ]
        widgets = {
            "providers": forms.CheckboxSelectMultiple,
            "staff": forms.CheckboxSelectMultiple,
            "notes": forms.Textarea(attrs={"rows": 4}),
            "next_step_due": forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        }

    def __init__(
        self,
        *args: Any,
        organization: Organization | None,
        provider: Provider | None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        # Attendees come from the office being visited, not from the whole network.
        if organization is not None:
            self.fields["providers"].queryset = Provider.objects.filter(organization=organization)
            self.fields["staff"].queryset = StaffMember.objects.filter(organization=organization)
        else:
            self.fields["providers"].queryset = Provider.objects.filter(
                pk=provider.pk if provider else None
            )
            self.fields["staff"].queryset = StaffMember.objects.none()

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if cleaned.get("next_step_due") and not cleaned.get("next_step"):
            self.add_error("next_step", "Say what the next step is, or clear its due date.")
        return cleaned


class PartnerContextForm(forms.Form):
    """Which partner or office a page is about, from its query string."""

    provider = forms.IntegerField(required=False, min_value=1, max_value=2**63 - 1)
    organization = forms.IntegerField(required=False, min_value=1, max_value=2**63 - 1)

    def value(self, name: str) -> int | None:
        return self.cleaned_data.get(name) if self.is_valid() else None


class TaskForm(forms.ModelForm):
    assignee = UserChoiceField(queryset=get_user_model().objects.filter(is_active=True))

    class Meta:
        model = Task
        fields = ["title", "due_on", "assignee"]
        widgets = {"due_on": forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")}


class TaskFilterForm(forms.Form):
    SCOPES = [("mine", "My tasks"), ("all", "Everyone's tasks"), ("unassigned", "Unassigned")]
    STATES = [("open", "Open"), ("overdue", "Overdue"), ("done", "Done")]

    scope = forms.ChoiceField(choices=SCOPES, required=False)
    state = forms.ChoiceField(choices=STATES, required=False)


class LetterTemplateForm(forms.ModelForm):
    class Meta:
        model = LetterTemplate
        fields = ["subject", "body", "delay_business_days"]
        widgets = {"body": forms.Textarea(attrs={"rows": 12})}

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        for field in ("subject", "body"):
            unknown = unknown_merge_fields(cleaned.get(field) or "")
            if unknown:
                self.add_error(
                    field,
                    "Unknown merge field(s): "
                    + ", ".join(unknown)
                    + ". Available: "
                    + ", ".join(MERGE_FIELDS)
                    + ".",
                )
        return cleaned
