from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date, datetime
from typing import Any, cast

import django_filters
from django import forms
from django.contrib.auth import get_user_model
from django.db.models import F, Q
from django.utils import timezone
from django.utils.text import capfirst

from core.filters import PersonFilter, StyledFilterSet
from core.forms import UserChoiceField, parse_version
from core.phones import PHONE_FORMAT, clean_us_phone
from core.roles import PARTNER_OWNER_ROLES, role_holders
from core.usps import us_state_code, us_zip_code
from partners.models import OPTED_OUT_OF_MARKETING, Organization, Provider, StaffMember
from partners.spreadsheets.reading import ENCODINGS


def liaison_choices() -> Any:
    return (
        get_user_model()
        .objects.filter(role_holders(*PARTNER_OWNER_ROLES), is_active=True)
        .order_by("first_name", "last_name", "username")
    )


# The shape of every NUCC Health Care Provider Taxonomy code: 207Q00000X, 363LF0000X.
TAXONOMY_CODE = re.compile(r"[0-9]{3}[0-9A-Z]{6}X")
TAXONOMY_SHAPE = (
    "A NUCC taxonomy code is 10 characters: 3 digits, 6 digits or letters, and X (e.g. 207Q00000X)."
)


class VersionedModelForm(forms.ModelForm):
    """An edit form that remembers the record as the page showed it (its updated_at, in a
    hidden field), so that a save over a colleague's later change can be refused instead
    of undoing it (partners.views._changed_since_opened)."""

    version = forms.CharField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk is not None:
            self.initial["version"] = self.instance.updated_at.isoformat()

    def clean_version(self) -> datetime | None:
        return parse_version(self, self.cleaned_data["version"])


class ProviderForm(VersionedModelForm):
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
            "in_network",
            "notes",
            "preferred_channel",
            "thank_you_by",
            "report_cadence",
            "letters_opt_out",
            "marketing_opt_out",
        ]
        widgets = {"notes": forms.Textarea(attrs={"rows": 3})}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.owner_id is not None:
            # The owner it has stays on offer (someone deactivated, or whose role changed
            # since), so saving another change never drops them without a word.
            owners = cast(UserChoiceField, self.fields["owner"])
            owners.queryset = (
                get_user_model()
                .objects.filter(
                    Q(pk__in=liaison_choices().values("pk")) | Q(pk=self.instance.owner_id)
                )
                .order_by("first_name", "last_name", "username")
            )
        self.fields["npi"].widget.attrs.update({"inputmode": "numeric", "autocomplete": "off"})
        # An NPI pasted with a space around it must reach clean_npi whole: a box that stops
        # at 10 characters would keep " 167957672" and the error would name the wrong digits.
        self.fields["npi"].widget.attrs.pop("maxlength", None)
        # Imports and older clients post no preferences: they keep the defaults.
        for name in ("preferred_channel", "thank_you_by", "report_cadence"):
            self.fields[name].required = False

    def clean_phone(self) -> str:
        # As the office form and the import check it: a number the office can be called on.
        return clean_us_phone(self.cleaned_data["phone"])

    def clean_preferred_channel(self) -> str:
        return self.cleaned_data["preferred_channel"] or Provider.PreferredChannel.EMAIL

    def clean_report_cadence(self) -> str:
        return self.cleaned_data["report_cadence"] or Provider.ReportCadence.EACH

    def clean_thank_you_by(self) -> str:
        return self.cleaned_data["thank_you_by"] or Provider.ThankYouBy.LETTER

    def _kept(self, field: str, value: str) -> bool:
        """The partner's stored value, sent back unchanged. It is not checked again: a
        code NUCC has since retired, or a value from before a rule, must not stop anyone
        correcting the partner's phone number."""
        return bool(self.instance.pk) and value == (getattr(self.instance, field) or "")

    def clean_npi(self) -> str:
        npi = self.cleaned_data["npi"].strip()
        if npi and not self._kept("npi", npi):
            from registry.models import RegistryProvider

            office = (
                RegistryProvider.objects.filter(npi=npi, entity_type=2)
                .values_list("organization_name", flat=True)
                .first()
            )
            if office is not None:
                raise forms.ValidationError(
                    f"NPI {npi} is an organization's in the NPPES registry ({office}): a "
                    "partner here is a clinician, with their own NPI. Give this one to the "
                    "office instead."
                )
        return npi

    def clean_taxonomy_code(self) -> str:
        code = self.cleaned_data["taxonomy_code"].strip().upper()
        if not code or self._kept("taxonomy_code", code):
            return code
        if not TAXONOMY_CODE.fullmatch(code):
            raise forms.ValidationError(TAXONOMY_SHAPE)
        from registry.models import Taxonomy

        # Checked against the NUCC list once it is loaded (manage.py import_taxonomy).
        if Taxonomy.objects.exists() and not Taxonomy.objects.filter(code=code).exists():
            raise forms.ValidationError(f"{code} is not in the NUCC taxonomy list.")
        return code


class TierForm(forms.Form):
    tier = forms.ChoiceField(choices=[("", "No tier"), *Provider.Tier.choices], required=False)
    reason = forms.CharField(
        max_length=300, help_text="Why the tier changes; kept in the partner's history."
    )
    pinned_until = forms.DateField(
        required=False,
        label="Keep until",
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text="Nightly tiering leaves your tier alone until this date; empty: until cleared.",
    )

    def clean_pinned_until(self) -> date | None:
        until = self.cleaned_data["pinned_until"]
        if until and until < timezone.localdate():
            raise forms.ValidationError("Choose today or a later date.")
        return until


# On a phone these bring up the keypad. Not for a phone number: its extension ("x12")
# cannot be typed there. "off": the browser would offer the user's own ZIP or number.
DIGITS_INPUT = forms.TextInput(attrs={"inputmode": "numeric", "autocomplete": "off"})
FAX_INPUT = forms.TextInput(attrs={"type": "tel", "autocomplete": "off"})


class OrganizationForm(VersionedModelForm):
    # Not a model field of the form: the view hands it to organization_set_letters_opt_out,
    # which stamps when and by whom and keeps the history.
    letters_opt_out = forms.BooleanField(
        label=capfirst(Organization._meta.get_field("letters_opt_out").verbose_name),
        help_text=Organization._meta.get_field("letters_opt_out").help_text,
        required=False,
    )

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
            "marketing_opt_out",
        ]
        widgets = {
            "npi": DIGITS_INPUT,
            "fax": FAX_INPUT,
            "zip_code": DIGITS_INPUT,
            "notes": forms.Textarea(attrs={"rows": 3}),
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["letters_opt_out"].initial = self.instance.letters_opt_out

    # The same rules as the partner import, so what is typed here exports and imports back.
    def clean_state(self) -> str:
        typed = self.cleaned_data["state"].strip()
        if typed and us_state_code(typed) is None:
            raise forms.ValidationError(
                "Not a US state or territory: its two-letter code, e.g. NE."
            )
        return us_state_code(typed) or ""

    def clean_zip_code(self) -> str:
        return self._read("zip_code", us_zip_code, "Not a ZIP code: 5 digits, or ZIP+4.")

    def clean_phone(self) -> str:
        return clean_us_phone(self.cleaned_data["phone"])

    def clean_fax(self) -> str:
        return clean_us_phone(self.cleaned_data["fax"], error=PHONE_FORMAT.replace("phone", "fax"))

    def _read(self, name: str, read: Callable[[str], str | None], error: str) -> str:
        typed = self.cleaned_data[name].strip()
        if not typed:
            return ""
        written = read(typed)
        if written is None:
            raise forms.ValidationError(error)
        return written


class StaffMemberForm(VersionedModelForm):
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

    def clean_phone(self) -> str:
        # As the provider and office forms check it: a number the liaison can call.
        return clean_us_phone(self.cleaned_data["phone"])


class ProviderFilter(StyledFilterSet):
    static_form = True

    q = django_filters.CharFilter(method="filter_search", label="Search")
    status = django_filters.ChoiceFilter(choices=Provider.Status.choices, empty_label="Any status")
    tier = django_filters.ChoiceFilter(choices=Provider.Tier.choices, empty_label="Any tier")
    health = django_filters.ChoiceFilter(choices=Provider.Health.choices, empty_label="Any health")
    owner = PersonFilter(queryset=liaison_choices(), empty_label="Any owner", label="Owner")
    letters = django_filters.ChoiceFilter(
        choices=[
            ("taking", "Taking letters"),
            ("opted_out", "Opted out of letters (or their office)"),
            ("no_newsletters", "No newsletters or invitations"),
        ],
        empty_label="Letters or not",
        method="filter_letters",
        label="Letters",
    )
    # Partners the NPPES registry (once loaded) lists as deactivated: a physician who
    # retired, moved away or died, for the manager to confirm and set dormant.
    registry = django_filters.ChoiceFilter(
        choices=[("npi_deactivated", "NPI deactivated in the NPPES registry")],
        empty_label="Registry: any",
        method="filter_registry",
        label="Registry",
    )
    sort = django_filters.ChoiceFilter(
        choices=[
            ("most", "Most referrals (12 mo) first"),
            ("latest", "Latest referral first"),
            ("quiet", "Quiet longest first"),
        ],
        empty_label="Sorted by name",
        method="sort_by",
        label="Sort",
    )

    class Meta:
        model = Provider
        fields = ["q", "status", "tier", "health", "owner", "letters", "registry", "sort"]

    def filter_search(self, queryset: Any, name: str, value: str) -> Any:
        return queryset.search(value)

    def filter_letters(self, queryset: Any, name: str, value: str) -> Any:
        if value == "opted_out":
            return queryset.opted_out_of_letters()
        if value == "no_newsletters":
            return queryset.filter(OPTED_OUT_OF_MARKETING)
        return queryset.taking_letters()

    def filter_registry(self, queryset: Any, name: str, value: str) -> Any:
        return queryset.npi_deactivated()

    def sort_by(self, queryset: Any, name: str, value: str) -> Any:
        """Who sends us the most, who sent last, and whose referrals stopped longest ago
        (partners that never referred come after those that did, in every order)."""
        if "last_referral_at" not in queryset.query.annotations:
            queryset = queryset.with_referral_stats()
        first = {
            "most": F("referrals_12m").desc(nulls_last=True),
            "latest": F("last_referral_at").desc(nulls_last=True),
            "quiet": F("last_referral_at").asc(nulls_last=True),
        }[value]
        return queryset.order_by(first, "last_name", "first_name", "pk")


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


class MergeSearchForm(forms.Form):
    q = forms.CharField(max_length=100, required=False, label="Find the duplicate")
    duplicate = forms.IntegerField(min_value=1, max_value=2**62, required=False)


class MergeConfirmForm(forms.Form):
    duplicate = forms.IntegerField(min_value=1, max_value=2**62, widget=forms.HiddenInput)
    confirm = forms.BooleanField(
        label="I checked that these are the same, and the record kept has the right NPI.",
        error_messages={"required": "Tick the box to confirm the merge."},
    )


class PartnerUploadForm(forms.Form):
    file = forms.FileField(
        label="Spreadsheet",
        help_text="A .csv or .xlsx file with a header row; the first sheet of a workbook.",
        widget=forms.ClearableFileInput(attrs={"accept": ".csv,.xlsx,.txt"}),
    )
    encoding = forms.ChoiceField(
        label="Text encoding (CSV only)",
        choices=[("", "Automatic"), *ENCODINGS.items()],
        required=False,
        help_text="Automatic reads files from Excel on Windows or a Mac and from DOS "
        "systems. If accented names come out wrong on the preview, upload the file again "
        "choosing how it was saved.",
    )

    def clean_file(self) -> Any:
        from partners.spreadsheets.reading import MAX_UPLOAD_BYTES

        upload = self.cleaned_data["file"]
        if upload.size > MAX_UPLOAD_BYTES:
            raise forms.ValidationError(
                f"The file is larger than {MAX_UPLOAD_BYTES // (1024 * 1024)} MB; split it."
            )
        return upload


class ImportConfirmForm(forms.Form):
    """The preview's confirmation: the mapping it was computed from
    (PartnerImport.mapping_version), so the import applies what was seen."""

    previewed = forms.CharField(max_length=64)


class ColumnMappingForm(forms.Form):
    """One choice per column of the uploaded file: which partner field it fills."""

    def __init__(self, *args: Any, headers: list[str], samples: list[str], **kwargs: Any):
        from partners.spreadsheets.columns import TARGETS

        super().__init__(*args, **kwargs)
        choices = [("", "Ignore this column"), *TARGETS.items()]
        for index, header in enumerate(headers):
            self.fields[f"column_{index}"] = forms.ChoiceField(
                label=header,
                choices=choices,
                required=False,
                help_text=f"e.g. {samples[index][:60]}" if samples[index] else "",
            )
        self.fields["new_owner"] = UserChoiceField(
            queryset=liaison_choices(),
            required=False,
            label="Owner of the partners this import adds",
            empty_label="Nobody yet (give them owners later)",
            help_text="Partners already on file keep their owner.",
        )

    def mapping(self) -> dict[str, str]:
        return {
            name.removeprefix("column_"): target
            for name, target in self.cleaned_data.items()
            if name.startswith("column_") and target
        }

    def clean(self) -> dict[str, Any]:
        from partners.services.imports import check_partner_import_mapping

        super().clean()
        cleaned = self.cleaned_data
        if not self.errors:
            for problem in check_partner_import_mapping(self.mapping()):
                self.add_error(None, problem)
        return cleaned
