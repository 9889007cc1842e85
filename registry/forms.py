from __future__ import annotations

import zipfile
from datetime import timedelta
from typing import Any, cast

from django import forms
from django.contrib.auth import get_user_model
from django.core import signing
from django.core.files.storage import default_storage
from django.db.models import Q

from core.npi import validate_npi
from core.roles import Role, role_holders
from registry.geo import zip_centroid
from registry.importing.shared_patients import year_and_window
from registry.models import ImportJob, PracticeLocation, SharedPatientDataset, Taxonomy

Choices = list[tuple[str, Any]]


def specialty_choices() -> Choices:
    """Exact codes grouped under their NUCC Grouping (optgroups), each labelled
    "Classification - Specialization": the picker for a partner's specialty."""
    groups: dict[str, list[tuple[str, str]]] = {}
    for code, grouping, label in _taxonomy_rows():
        groups.setdefault(grouping, []).append((code, label))
    return list(groups.items())


def specialty_selector_label(selector: str, taxonomy: Taxonomy) -> str:
    if selector.startswith("grouping:"):
        return f"All {taxonomy.grouping}"
    if selector.startswith("classification:"):
        return f"{taxonomy.classification} (any)"
    return taxonomy.label


def search_specialties(text: str, *, limit: int = 20) -> list[tuple[str, str, str]]:
    """(selector, label, grouping) for the typeahead: whole groupings and classifications
    first, then exact codes, for every word typed."""
    words = text.split()
    if not words:
        return []
    query = Q()
    for word in words:
        query &= (
            Q(code__istartswith=word)
            | Q(grouping__icontains=word)
            | Q(classification__icontains=word)
            | Q(specialization__icontains=word)
            | Q(display_name__icontains=word)
        )
    groups: dict[str, tuple[str, str, str]] = {}
    classes: dict[str, tuple[str, str, str]] = {}
    codes: list[tuple[str, str, str]] = []
    lowered = [w.lower() for w in words]
    for taxonomy in Taxonomy.objects.filter(query).order_by("grouping", "classification", "code"):
        if all(w in taxonomy.grouping.lower() for w in lowered):
            key = f"grouping:{taxonomy.grouping}"
            groups.setdefault(key, (key, f"All {taxonomy.grouping}", taxonomy.grouping))
        if all(w in f"{taxonomy.grouping} {taxonomy.classification}".lower() for w in lowered):
            key = f"classification:{taxonomy.grouping}/{taxonomy.classification}"
            classes.setdefault(key, (key, f"{taxonomy.classification} (any)", taxonomy.grouping))
        codes.append((taxonomy.code, f"{taxonomy.label} · {taxonomy.code}", taxonomy.grouping))
    return [*groups.values(), *classes.values(), *codes][:limit]


def _taxonomy_rows() -> list[tuple[str, str, str]]:
    return [
        (taxonomy.code, taxonomy.grouping, taxonomy.label)
        for taxonomy in Taxonomy.objects.only(
            "code", "grouping", "classification", "specialization", "display_name"
        )
    ]


class SpecialtyField(forms.ChoiceField):
    """A NUCC taxonomy code picked from the Grouping → Classification → Specialization
    hierarchy; for partner forms."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("label", "Specialty")
        super().__init__(choices=lambda: [("", "---------"), *specialty_choices()], **kwargs)


class FinderForm(forms.Form):
    """The finder's query string. Every field is optional; a distance needs a centre."""

    # A selector (see TaxonomyQuerySet.matching), chosen with the specialty typeahead: a
    # <select> of ~1,100 options would cost more to render than the whole search.
    specialty = forms.CharField(required=False, max_length=300)
    # What was typed in the specialty box: shown again, and refused if nothing was picked.
    specialty_search = forms.CharField(required=False, max_length=100)
    location = forms.ModelChoiceField(
        queryset=PracticeLocation.objects.all(),
        required=False,
        empty_label="None: use ZIP",
        label="From our location",
        widget=forms.Select(attrs={"class": "form-select"}),
    )
    zip_code = forms.CharField(required=False, max_length=10, label="or from ZIP")
    miles = forms.IntegerField(required=False, min_value=1, max_value=500, label="Within miles")
    name = forms.CharField(required=False, max_length=100)
    city = forms.CharField(required=False, max_length=100)
    state = forms.CharField(required=False, max_length=2)
    # "Hide" rather than "include": an unticked box is absent from the query string, and
    # a search link without it should show everyone.
    hide_partners = forms.BooleanField(required=False, label="Hide current partners")
    # CMS shared patient patterns: whose Medicare patients already come on to our clinicians.
    sends_to_us = forms.BooleanField(
        required=False, label="Their Medicare patients come on to us (CMS)"
    )

    specialty_label = ""

    def clean_specialty(self) -> str:
        selector = self.cleaned_data["specialty"].strip()
        typed = str(self.data.get("specialty_search", "")).strip()
        if not selector and typed:
            # Typing is not choosing: searching without the specialty would mislead.
            raise forms.ValidationError(
                f"Pick a specialty from the list that opens as you type “{typed[:40]}”."
            )
        if not selector:
            return ""
        sample = Taxonomy.objects.matching(selector).order_by("code").first()
        if sample is None:
            raise forms.ValidationError("Pick a specialty from the list.")
        self.specialty_label = specialty_selector_label(selector, sample)
        return selector

    def clean_zip_code(self) -> str:
        value = self.cleaned_data["zip_code"].strip()
        if value and zip_centroid(value) is None:
            raise forms.ValidationError("This is not a US ZIP code we know.")
        return value

    def clean_state(self) -> str:
        return self.cleaned_data["state"].strip().upper()

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        if data.get("miles") and not (data.get("location") or data.get("zip_code")):
            self.add_error("miles", "Pick one of our locations or a ZIP code to measure from.")
        elif data.get("location") is not None and self.centre() is None:
            # A location whose ZIP code is not one we know has no place on the map: searched
            # from it, the distance (typed, or the default) would silently be no limit at all.
            self.add_error(
                "location",
                f"{data['location']} has no place on the map (its ZIP code is not one we "
                "know): correct it in the back office, or measure from a ZIP code.",
            )
        return data

    def centre(self) -> tuple[float, float] | None:
        location = self.cleaned_data.get("location")
        if location is not None and location.latitude is not None:
            return location.latitude, location.longitude
        if self.cleaned_data.get("zip_code"):
            return zip_centroid(self.cleaned_data["zip_code"])
        return None


def liaison_queryset() -> Any:
    return (
        get_user_model()
        .objects.filter(role_holders(Role.LIAISON, Role.MANAGER), is_active=True)
        .order_by("first_name", "last_name", "username")
    )


class AddProspectForm(forms.Form):
    npi = forms.CharField(max_length=10, validators=[validate_npi])
    owner = forms.ModelChoiceField(queryset=liaison_queryset(), label="Liaison")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cast(forms.ModelChoiceField, self.fields["owner"]).queryset = liaison_queryset()


class PracticeLocationForm(forms.ModelForm):
    class Meta:
        model = PracticeLocation
        fields = ["name", "address_line1", "address_line2", "city", "state", "zip_code"]


class ImportUploadForm(forms.Form):
    file = forms.FileField(
        help_text="The NPPES monthly zip, or its npidata_pfile_*.csv.",
    )

    def clean_file(self) -> Any:
        upload = self.cleaned_data["file"]
        name = upload.name.lower()
        if not name.endswith((".zip", ".csv")):
            raise forms.ValidationError("Upload the NPPES .zip or an npidata_pfile .csv file.")
        return upload


class SharedPatientUploadForm(forms.Form):
    """A CMS shared patient patterns file and the year and window its pairs are loaded as:
    read from CMS's file name when left empty, required when the name does not say them.

    A browser cannot put a chosen file back into a file input, and a national file is
    large: when the form comes back for its year or window, `keep_upload` stores the file
    and the next post sends a signed reference to it instead (`kept`)."""

    KEPT_SALT = "registry.shared-patients-upload"
    KEPT_MAX_AGE = timedelta(days=1)

    file = forms.FileField(
        required=False,
        widget=forms.FileInput(attrs={"accept": ".zip,.txt,.csv", "data-year-window": ""}),
        help_text=(
            "CMS's physician-shared-patient-patterns-YEAR-daysN download: the .zip as it "
            "comes, or the .txt inside it, or a .csv of the same five columns."
        ),
    )
    year = forms.IntegerField(
        required=False,
        min_value=2000,
        max_value=2100,
        help_text="Left empty, it is read from the file's name.",
    )
    window_days = forms.TypedChoiceField(
        label="Window",
        choices=[("", "From the file's name"), *SharedPatientDataset.Window.choices],
        coerce=int,
        empty_value=None,
        required=False,
    )

    def __init__(self, *args: Any, user: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.user = user
        # The file to load: stored already (kept from the last post) or just uploaded.
        self.kept_name = ""
        self.original_name = ""
        self.kept_reference = ""

    def clean_file(self) -> Any:
        upload = self.cleaned_data["file"]
        if upload is None:
            return None
        name = upload.name.lower()
        if not name.endswith((".zip", ".txt", ".csv")):
            raise forms.ValidationError(
                "Upload the shared patient patterns file: CMS's .zip, or the .txt or .csv."
            )
        if name.endswith(".zip") and not zipfile.is_zipfile(upload):
            raise forms.ValidationError(
                "That .zip is not a zip archive (damaged, or not the download from CMS)."
            )
        upload.seek(0)
        return upload

    def _kept(self) -> None:
        """The file kept from the last post, if its reference is good: this user's, recent,
        and still stored."""
        reference = str(self.data.get("kept", ""))[:1000]
        if not reference:
            return
        try:
            kept = signing.loads(reference, salt=self.KEPT_SALT, max_age=self.KEPT_MAX_AGE)
        except signing.BadSignature:
            kept = None
        if (
            not isinstance(kept, dict)
            or kept.get("user") != self.user.pk
            or not default_storage.exists(kept.get("name", ""))
        ):
            self.add_error("file", "The file kept from your last attempt is gone: choose it again.")
            return
        self.kept_name, self.original_name = kept["name"], kept["original"]
        self.kept_reference = reference

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        if data.get("file") is not None:
            self.original_name = data["file"].name[:255]
        elif "file" not in self.errors:
            self._kept()
            if not self.original_name and "file" not in self.errors:
                self.add_error("file", "Choose the file to upload.")
        if not self.original_name or "year" in self.errors or "window_days" in self.errors:
            return data
        named = year_and_window(self.original_name)
        if data.get("year") is None:
            if named is None:
                self.add_error("year", "The file's name does not say its year: enter it.")
            else:
                data["year"] = named[0]
        if data.get("window_days") is None:
            if named is None:
                self.add_error("window_days", "The file's name does not say its window: pick it.")
            elif named[1] not in SharedPatientDataset.Window.values:
                windows = ", ".join(str(days) for days in SharedPatientDataset.Window.values)
                self.add_error(
                    "window_days",
                    f"The file's name says a {named[1]}-day window, and CMS publishes "
                    f"windows of {windows} days: pick the window the file is.",
                )
            else:
                data["window_days"] = named[1]
        return data

    def keep_upload(self) -> None:
        """After a post refused for its year or window: store the good file it brought, so
        the form that comes back need not have it chosen and sent again."""
        upload = self.cleaned_data.get("file")
        if upload is None or "file" in self.errors:
            return
        # Where ImportJob keeps its files: the job made from it later takes it as it is, so
        # the stored name must fit its column (a long one is shortened, as for an upload
        # saved straight into the job; the original name is kept apart).
        self.kept_name = default_storage.save(
            f"registry/imports/{upload.name}",
            upload,
            max_length=ImportJob._meta.get_field("file").max_length,
        )
        self.kept_reference = signing.dumps(
            {"name": self.kept_name, "original": self.original_name, "user": self.user.pk},
            salt=self.KEPT_SALT,
        )

    @property
    def stored_file(self) -> Any:
        """What the job's file field is given: the upload, or the kept file's name."""
        return self.cleaned_data.get("file") or self.kept_name
