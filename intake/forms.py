from __future__ import annotations

import re
import unicodedata
import uuid
from datetime import timedelta
from typing import Any, cast

from django import forms
from django.core.exceptions import NON_FIELD_ERRORS
from django.http import QueryDict
from django.utils import timezone

from core.npi import validate_npi
from core.phones import clean_us_phone
from intake.services import NewProvider
from intake.uploads import DocumentsField, KeepsDocumentsMixin
from partners.models import Organization, Provider
from partners.widgets import ProviderPicker
from referrals.forms import no_autofill
from referrals.models import REASON_MAX_LENGTH, Referral
from registry.models import RegistryProvider

OTHER = "other"
REASON_MAX = REASON_MAX_LENGTH


class IntakeLinkForm(forms.Form):
    label = forms.CharField(
        required=False,
        max_length=100,
        help_text="Who the link is for, e.g. “front desk”. The office does not see it.",
    )
    valid_for_days = forms.TypedChoiceField(
        label="Valid for",
        coerce=int,
        choices=[(30, "30 days"), (90, "90 days"), (365, "One year"), (0, "Until revoked")],
        initial=365,
    )

    def expires_at(self) -> Any:
        days = self.cleaned_data["valid_for_days"]
        return timezone.now() + timedelta(days=days) if days else None


def _same_name(registered: str, typed: str) -> bool:
    """Whether a typed last name is the registered one, whatever its case, accents, spaces
    or punctuation ("O'Brien-Smith" and "OBRIEN SMITH"), or one part of it."""

    def letters(name: str) -> str:
        plain = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
        return "".join(c for c in plain.casefold() if c.isalpha())

    registered_letters, typed_letters = letters(registered), letters(typed)
    if not registered_letters or not typed_letters:
        return False
    return typed_letters in registered_letters or registered_letters in typed_letters


# OfficeReferralForm.form_key, as the form makes it.
FORM_KEY = re.compile(r"[0-9a-f]{32}")


class OfficeReferralForm(KeepsDocumentsMixin, forms.ModelForm):
    """The form a referring office fills in through its link, often on a phone."""

    # The section is headed "Referring provider"; the choice asks the question, not repeats it.
    provider_choice = forms.ChoiceField(
        label="Who is referring the patient?", widget=forms.RadioSelect
    )
    other_first_name = forms.CharField(label="Provider first name", required=False, max_length=100)
    other_last_name = forms.CharField(label="Provider last name", required=False, max_length=100)
    other_npi = forms.CharField(
        label="Provider NPI",
        required=False,
        max_length=10,
        help_text="10 digits. Name and NPI are both needed for a provider not listed.",
        # The keypad on a phone: an NPI is digits only.
        widget=forms.TextInput(attrs={"inputmode": "numeric", "autocomplete": "off"}),
    )
    reason = forms.CharField(
        label="Reason for referral",
        max_length=REASON_MAX,
        widget=forms.Textarea(attrs={"rows": 4}),
    )
    contact_name = forms.CharField(label="Your name", max_length=100)
    contact_phone = forms.CharField(
        label="Call-back phone",
        max_length=30,
        required=False,
        widget=forms.TextInput(attrs={"type": "tel", "autocomplete": "tel"}),
    )
    documents = DocumentsField(label="Documents (optional)")
    # One per opening of the form: the same form sent twice (a phone's retry on a weak
    # connection, a double tap) is one referral (intake_submit).
    form_key = forms.CharField(
        required=False,
        # Checked by clean_form_key, which says what went wrong without marking a field
        # the office cannot see.
        # Not restored by a browser's Back or a reopened tab, where it would be sent again
        # with another patient (intake_submit refuses that rather than drop the referral).
        widget=forms.HiddenInput(attrs={"autocomplete": "off"}),
        initial=lambda: uuid.uuid4().hex,
    )

    class Meta:
        model = Referral
        fields = [
            "patient_first_name",
            "patient_last_name",
            "patient_dob",
            "patient_phone",
            "reason",
            "urgency",
        ]
        widgets = {
            "patient_dob": forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
            "patient_phone": forms.TextInput(attrs={"type": "tel"}),
            "urgency": forms.RadioSelect,
        }

    def __init__(self, *args: Any, organization: Organization, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        no_autofill(self)
        self.providers = {str(p.pk): p for p in Provider.objects.filter(organization=organization)}
        provider_choice = cast(forms.ChoiceField, self.fields["provider_choice"])
        provider_choice.choices = [
            *((pk, p.display_name) for pk, p in self.providers.items()),
            (OTHER, "Someone not listed"),
        ]
        provider_choice.error_messages["invalid_choice"] = (
            "Choose a provider from the list, or “Someone not listed”."
        )
        provider_choice.error_messages["required"] = (
            "Choose who is referring the patient, or “Someone not listed”."
        )
        self.fields["urgency"].initial = Referral.Urgency.ROUTINE
        cast(forms.ChoiceField, self.fields["urgency"]).choices = Referral.Urgency.choices

    def clean_patient_phone(self) -> str:
        return clean_us_phone(self.cleaned_data["patient_phone"])

    @property
    def has_field_errors(self) -> bool:
        """Errors on fields the office sees (the page says to correct those marked), not
        only on the form as a whole."""
        return any(name != NON_FIELD_ERRORS for name in self.errors)

    def clean_form_key(self) -> str:
        """The hidden key as the form made it (32 hex digits), or an error for the whole
        form: a damaged one (an extension rewriting the page, a tampered post) is nothing
        the office can see or correct, so a fresh one goes into the form sent back."""
        key = self.cleaned_data.get("form_key", "")
        if key and not FORM_KEY.fullmatch(key):
            self.add_error(
                None,
                "This form could not be read whole (a hidden part of it was changed on the "
                "way), so nothing has been sent yet. Check it and send it again.",
            )
            data = cast(QueryDict, self.data).copy()
            data["form_key"] = uuid.uuid4().hex
            self.data = data
            return ""
        return key

    def clean_contact_phone(self) -> str:
        return clean_us_phone(self.cleaned_data["contact_phone"])

    def clean_other_npi(self) -> str:
        npi = self.cleaned_data["other_npi"].strip()
        if npi:
            validate_npi(npi)
        return npi

    def clean(self) -> dict[str, Any]:
        super().clean()
        cleaned = self.cleaned_data
        if cleaned.get("provider_choice") == OTHER:
            for name in ("other_first_name", "other_last_name", "other_npi"):
                if not str(cleaned.get(name) or "").strip() and name not in self.errors:
                    self.add_error(name, "Needed when the provider is not listed.")
            if cleaned.get("other_npi") and cleaned.get("other_last_name"):
                self._check_against_registry(cleaned["other_npi"], cleaned["other_last_name"])
        elif cleaned.get("provider_choice"):
            self.instance.provider = self.providers[cleaned["provider_choice"]]
        return cleaned

    def _check_against_registry(self, npi: str, last_name: str) -> None:
        """A provider named here becomes a partner who is sent letters: when the national
        registry (NPPES, if loaded) knows the NPI, it must be a clinician's, still active,
        and registered to the name typed. An NPI it does not know is taken as typed."""
        record = RegistryProvider.objects.by_npi(npi)
        if record is None:
            return
        if record.deactivated:
            self.add_error("other_npi", "The national registry lists this NPI as deactivated.")
        elif record.entity_type == RegistryProvider.EntityType.ORGANIZATION:
            self.add_error(
                "other_npi",
                f"This NPI is an organization's ({record.organization_name.title()}): give "
                "the referring clinician's own NPI.",
            )
        elif not _same_name(record.last_name, last_name):
            self.add_error(
                "other_last_name",
                f"The national registry lists NPI {npi} as {record.first_name.title()} "
                f"{record.last_name.title()}: check the name or the NPI.",
            )

    def new_provider(self) -> NewProvider | None:
        if self.cleaned_data["provider_choice"] != OTHER:
            return None
        return NewProvider(
            first_name=self.cleaned_data["other_first_name"].strip(),
            last_name=self.cleaned_data["other_last_name"].strip(),
            npi=self.cleaned_data["other_npi"],
        )


class AttachmentForm(forms.Form):
    documents = DocumentsField(label="Add documents", required=True)


class Hl7UploadForm(forms.Form):
    message = forms.FileField(
        label="HL7 v2 message (OMG^O19)",
        help_text="A 360X referral order as a .hl7 or .txt file.",
    )
    provider = forms.ModelChoiceField(
        queryset=Provider.objects.all(),
        required=False,
        widget=ProviderPicker(),
        label="Referring partner",
        help_text="Leave empty unless the import asks for it: needed only when the "
        "message's provider has no NPI that matches one of our partners.",
    )
