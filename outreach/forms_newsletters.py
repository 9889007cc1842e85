"""The newsletter form: the issue's text and its audience."""

from __future__ import annotations

import hashlib
import json
from typing import Any, cast

from django import forms
from django.core.exceptions import ValidationError

from core.forms import UserChoiceField
from outreach.models import NewsletterIssue
from outreach.newsletters import audience, check_newsletter_text
from partners.forms import liaison_choices
from partners.models import Provider


class NewsletterForm(forms.ModelForm):
    tiers = forms.MultipleChoiceField(
        choices=Provider.Tier.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="None ticked: every tier (and partners without one).",
    )
    health = forms.MultipleChoiceField(
        label="Relationship health",
        choices=Provider.Health.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="None ticked: whatever their health.",
    )
    owner = UserChoiceField(queryset=liaison_choices(), required=False, label="Relationship owner")
    # The audience the sender confirmed, its size and its filters: sent only when both are
    # still what they saw (another segment of the same size is asked about again).
    confirm_count = forms.IntegerField(required=False, widget=forms.HiddenInput)
    confirm_audience = forms.CharField(required=False, max_length=64, widget=forms.HiddenInput)

    class Meta:
        model = NewsletterIssue
        fields = ["subject", "body", "tiers", "health", "owner", "specialty"]
        widgets = {"body": forms.Textarea(attrs={"rows": 12})}
        help_texts = {"specialty": "Part of the specialty, e.g. Family; empty for any."}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cast(UserChoiceField, self.fields["owner"]).queryset = liaison_choices()

    def _check_text(self, field: str) -> str:
        text = self.cleaned_data[field]
        try:
            check_newsletter_text(text)
        except ValidationError as error:
            raise ValidationError(error.messages) from None
        return text

    def clean_subject(self) -> str:
        return self._check_text("subject")

    def clean_body(self) -> str:
        return self._check_text("body")

    def clean_specialty(self) -> str:
        return self.cleaned_data["specialty"].replace("\x00", "").strip()

    def clean(self) -> dict[str, Any]:
        super().clean()
        cleaned = self.cleaned_data
        if not self.errors:
            self.audience_count = self.audience().count()
            if not self.audience_count:
                raise ValidationError(
                    "No active partner is in this audience: untick a filter or clear the "
                    "specialty before sending."
                )
        return cleaned

    def confirmed(self) -> bool:
        """Did the sender see and confirm this very audience: its size and its filters?"""
        return (
            self.cleaned_data.get("confirm_count") == self.audience_count
            and self.cleaned_data.get("confirm_audience") == self.audience_key()
        )

    def audience_key(self) -> str:
        """A short fingerprint of the audience's filters, for the confirmation to carry."""
        data = self.cleaned_data
        owner = data.get("owner")
        segment = [
            sorted(data.get("tiers") or []),
            sorted(data.get("health") or []),
            owner.pk if owner else None,
            (data.get("specialty") or "").casefold(),
        ]
        return hashlib.sha256(json.dumps(segment).encode()).hexdigest()[:16]

    def audience(self, *, npi_deactivated: bool = False) -> Any:
        """The partners the audience fields reach, from whichever of them are valid (the
        live preview runs while the text is still being written); with `npi_deactivated`,
        those of the segment it leaves out because the NPPES registry lists them as
        deactivated."""
        data = getattr(self, "cleaned_data", {})
        owner = data.get("owner")
        return audience(
            tiers=data.get("tiers") or [],
            health=data.get("health") or [],
            owner_id=owner.pk if owner else None,
            specialty=data.get("specialty") or "",
            npi_deactivated=npi_deactivated,
        )
