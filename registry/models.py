"""Public reference data about US providers (NPPES, NUCC taxonomy), kept apart from our own
partners and linked to them only by NPI, plus the practice's own locations that distance
searches start from."""

from __future__ import annotations

import math
from functools import cache
from typing import TYPE_CHECKING, cast

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection, models
from django.db.models import ExpressionWrapper, F, FloatField, Q, Value
from django.urls import reverse

from core.npi import validate_npi
from registry.geo import MILES_PER_DEGREE_LAT, bounding_box, zip_centroid

if TYPE_CHECKING:
    from collections.abc import Iterable


class TaxonomyQuerySet(models.QuerySet["Taxonomy"]):
    def matching(self, selector: str) -> TaxonomyQuerySet:
        """The codes a specialty selector stands for. A selector is an exact code
        (`207Q00000X`), a whole grouping (`grouping:Allopathic & Osteopathic Physicians`) or a
        classification with all its specializations
        (`classification:Allopathic & Osteopathic Physicians/Family Medicine`)."""
        kind, _, value = selector.partition(":")
        if kind == "grouping":
            return self.filter(grouping=value)
        if kind == "classification":
            grouping, _, classification = value.partition("/")
            return self.filter(grouping=grouping, classification=classification)
        return self.filter(code=selector)


class Taxonomy(models.Model):
    """One code of the NUCC Health Care Provider Taxonomy: Grouping → Classification →
    Specialization."""

    code = models.CharField(max_length=10, primary_key=True)
    grouping = models.CharField(max_length=200)
    classification = models.CharField(max_length=200)
    specialization = models.CharField(max_length=200, blank=True)
    definition = models.TextField(blank=True)
    notes = models.TextField(blank=True)
    display_name = models.CharField(max_length=300, blank=True)
    section = models.CharField(max_length=50, blank=True)

    objects = TaxonomyQuerySet.as_manager()

    class Meta:
        ordering = ["grouping", "classification", "specialization"]
        verbose_name_plural = "taxonomies"

    def __str__(self) -> str:
        return f"{self.code} {self.label}"

    @property
    def label(self) -> str:
        return self.display_name or " - ".join(
            part for part in (self.classification, self.specialization) if part
        )


@cache
def _lookup_columns() -> tuple[str, list[str]]:
    fields = RegistryProvider._meta.concrete_fields
    # A concrete field is one with a column (the stubs type `column` as optional).
    return ", ".join(connection.ops.quote_name(cast(str, f.column)) for f in fields), [
        f.attname for f in fields
    ]


class RegistryProviderQuerySet(models.QuerySet["RegistryProvider"]):
    def active(self) -> RegistryProviderQuerySet:
        return self.filter(deactivated=False)

    def with_specialty(self, codes: Iterable[str]) -> RegistryProviderQuerySet:
        return self.filter(primary_taxonomy_code__in=list(codes))

    def near(self, lat: float, lng: float, miles: float) -> RegistryProviderQuerySet:
        """Providers within `miles` of a point, nearest first. The bounding box lets the
        latitude indexes do the work; the flat-Earth distance inside it is within a fraction
        of a percent of the great circle at these ranges and needs no trigonometry in SQL,
        so it runs the same on SQLite and Postgres. Views show the exact haversine."""
        min_lat, max_lat, min_lng, max_lng = bounding_box(lat, lng, miles)
        shrink = math.cos(math.radians(lat))
        dlat = F("latitude") - Value(lat)
        dlng = (F("longitude") - Value(lng)) * Value(shrink)
        return (
            self.filter(latitude__range=(min_lat, max_lat), longitude__range=(min_lng, max_lng))
            .alias(
                degrees_sq=ExpressionWrapper(dlat * dlat + dlng * dlng, output_field=FloatField())
            )
            .filter(degrees_sq__lte=(miles / MILES_PER_DEGREE_LAT) ** 2)
            .order_by("degrees_sq", "pk")
        )

    def by_npi(self, npi: str) -> RegistryProvider | None:
        """The record of one NPI, or None: the registry's hottest single-row read (partner
        forms, the finder's "add", imports matching partners). The SELECT is built once per
        process; compiling it through the ORM each time cost more than the lookup itself."""
        columns, attnames = _lookup_columns()
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT {columns} FROM {RegistryProvider._meta.db_table} WHERE npi = %s",  # noqa: S608
                [npi],
            )
            row = cursor.fetchone()
        return RegistryProvider.from_db(self.db, attnames, row) if row else None

    def search_name(self, text: str) -> RegistryProviderQuerySet:
        # NPPES stores names in capitals; a prefix match on them can use the pattern indexes.
        query = Q()
        for word in text.upper().split():
            query &= (
                Q(last_name__startswith=word)
                | Q(first_name__startswith=word)
                | Q(organization_name__startswith=word)
            )
        return self.filter(query)


class RegistryProvider(models.Model):
    """One NPI as the latest NPPES monthly file describes it."""

    class EntityType(models.IntegerChoices):
        INDIVIDUAL = 1, "Individual"
        ORGANIZATION = 2, "Organization"

    npi = models.CharField("NPI", max_length=10, unique=True, validators=[validate_npi])
    # Empty for a deactivated NPI: CMS publishes only the NPI and the deactivation date.
    entity_type = models.PositiveSmallIntegerField(
        choices=EntityType.choices, null=True, blank=True
    )
    organization_name = models.CharField(max_length=300, blank=True)
    last_name = models.CharField(max_length=100, blank=True)
    first_name = models.CharField(max_length=100, blank=True)
    middle_name = models.CharField(max_length=100, blank=True)
    name_prefix = models.CharField(max_length=20, blank=True)
    name_suffix = models.CharField(max_length=20, blank=True)
    credential = models.CharField(max_length=100, blank=True)
    # "Provider Sex Code" (older files: "Provider Gender Code"): M, F or blank.
    sex = models.CharField(max_length=1, blank=True)
    primary_taxonomy_code = models.CharField(max_length=10, blank=True)
    # All 15 taxonomy slots in file order, space-separated: portable (no ArrayField) and
    # compared as one value when a newer file is loaded.
    taxonomy_codes = models.CharField(max_length=170, blank=True)

    address_line1 = models.CharField("practice address", max_length=100, blank=True)
    address_line2 = models.CharField("practice address line 2", max_length=100, blank=True)
    city = models.CharField("practice city", max_length=100, blank=True)
    state = models.CharField("practice state", max_length=40, blank=True)
    postal_code = models.CharField("practice postal code", max_length=20, blank=True)
    country = models.CharField(max_length=2, blank=True)
    zip5 = models.CharField("practice ZIP", max_length=5, blank=True)
    phone = models.CharField("practice phone", max_length=20, blank=True)
    fax = models.CharField("practice fax", max_length=20, blank=True)
    # Centroid of the practice ZIP (zipcodes package): good to a mile or two, enough to
    # decide who is worth a visit.
    latitude = models.FloatField(null=True, blank=True)
    longitude = models.FloatField(null=True, blank=True)

    mailing_address_line1 = models.CharField(max_length=100, blank=True)
    mailing_address_line2 = models.CharField(max_length=100, blank=True)
    mailing_city = models.CharField(max_length=100, blank=True)
    mailing_state = models.CharField(max_length=40, blank=True)
    mailing_postal_code = models.CharField(max_length=20, blank=True)

    enumeration_date = models.DateField(null=True, blank=True)
    last_update_date = models.DateField(null=True, blank=True)
    deactivation_date = models.DateField(null=True, blank=True)
    reactivation_date = models.DateField(null=True, blank=True)
    deactivated = models.BooleanField(default=False)

    objects = RegistryProviderQuerySet.as_manager()

    class Meta:
        ordering = ["npi"]
        verbose_name = "registry provider"
        indexes = [
            # The finder filters active providers by specialty and a latitude band, and
            # orders by distance: with longitude and id in the index, counting and picking a
            # page are index-only scans; only the page's 25 rows are read from the table.
            models.Index(
                fields=["primary_taxonomy_code", "latitude", "longitude"],
                include=["id"],
                condition=Q(deactivated=False),
                name="regprov_taxonomy_geo_idx",
            ),
            # Distance searches without a specialty.
            models.Index(
                fields=["latitude", "longitude"],
                include=["id"],
                condition=Q(deactivated=False),
                name="regprov_geo_idx",
            ),
            models.Index(fields=["state", "city"], name="regprov_state_city_idx"),
            # Prefix searches on upper-case names (LIKE 'SMI%') need pattern ops on Postgres.
            models.Index(
                fields=["last_name"],
                name="regprov_last_name_idx",
                opclasses=["varchar_pattern_ops"],
            ),
            models.Index(
                fields=["organization_name"],
                name="regprov_org_name_idx",
                opclasses=["varchar_pattern_ops"],
            ),
        ]

    def __str__(self) -> str:
        return f"{self.display_name} ({self.npi})"

    @property
    def display_name(self) -> str:
        if self.entity_type == self.EntityType.ORGANIZATION:
            return self.organization_name
        name = " ".join(p for p in (self.first_name, self.middle_name, self.last_name) if p)
        return f"{name}, {self.credential}" if self.credential else name

    @property
    def all_taxonomy_codes(self) -> list[str]:
        return self.taxonomy_codes.split()


class RegistryEndpoint(models.Model):
    """A Direct address or FHIR endpoint from the bundle's endpoint_pfile."""

    provider = models.ForeignKey(
        RegistryProvider,
        to_field="npi",
        db_column="npi",
        # Loaded from a separate file that may arrive before or without its provider row.
        db_constraint=False,
        on_delete=models.DO_NOTHING,
        related_name="endpoints",
    )
    endpoint_type = models.CharField(max_length=20, blank=True)
    endpoint_type_description = models.CharField(max_length=100, blank=True)
    endpoint = models.CharField(max_length=500)
    affiliation = models.CharField(max_length=1, blank=True)
    endpoint_description = models.CharField(max_length=500, blank=True)
    affiliation_legal_business_name = models.CharField(max_length=300, blank=True)
    use_code = models.CharField(max_length=20, blank=True)
    content_type = models.CharField(max_length=20, blank=True)
    # md5 of the row's values: a re-run recognises the rows it already has.
    row_hash = models.CharField(max_length=32)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["provider", "row_hash"], name="regendpoint_row_unique")
        ]

    def __str__(self) -> str:
        return f"{self.endpoint_type} {self.endpoint}"


class RegistryLocation(models.Model):
    """A secondary practice location from the bundle's pl_pfile."""

    provider = models.ForeignKey(
        RegistryProvider,
        to_field="npi",
        db_column="npi",
        db_constraint=False,
        on_delete=models.DO_NOTHING,
        related_name="secondary_locations",
    )
    address_line1 = models.CharField(max_length=100, blank=True)
    address_line2 = models.CharField(max_length=100, blank=True)
    city = models.CharField(max_length=100, blank=True)
    state = models.CharField(max_length=40, blank=True)
    postal_code = models.CharField(max_length=20, blank=True)
    country = models.CharField(max_length=2, blank=True)
    zip5 = models.CharField(max_length=5, blank=True)
    phone = models.CharField(max_length=20, blank=True)
    phone_extension = models.CharField(max_length=10, blank=True)
    fax = models.CharField(max_length=20, blank=True)
    latitude = models.FloatField(null=True, blank=True)
    longitude = models.FloatField(null=True, blank=True)
    row_hash = models.CharField(max_length=32)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["provider", "row_hash"], name="reglocation_row_unique")
        ]

    def __str__(self) -> str:
        return f"{self.address_line1}, {self.city} {self.state}"


class PracticeLocation(models.Model):
    """One of our own clinics: the centre of distance searches."""

    name = models.CharField(max_length=200, unique=True)
    address_line1 = models.CharField("address", max_length=200, blank=True)
    address_line2 = models.CharField("address line 2", max_length=200, blank=True)
    city = models.CharField(max_length=100, blank=True)
    state = models.CharField(max_length=2, blank=True)
    zip_code = models.CharField("ZIP code", max_length=10)
    latitude = models.FloatField(null=True, blank=True, editable=False)
    longitude = models.FloatField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("registry:location_update", args=[self.pk])

    def clean(self) -> None:
        centroid = zip_centroid(self.zip_code)
        if centroid is None:
            raise ValidationError({"zip_code": "This is not a US ZIP code we know."})
        self.latitude, self.longitude = centroid


class SharedPatientDataset(models.Model):
    """One CMS "Physician Shared Patient Patterns" file loaded: a year's pairs of
    physicians who saw the same Medicare patients within a window of days."""

    class Window(models.IntegerChoices):
        DAYS_30 = 30, "30 days"
        DAYS_60 = 60, "60 days"
        DAYS_90 = 90, "90 days"
        DAYS_180 = 180, "180 days"

    year = models.PositiveSmallIntegerField()
    window_days = models.PositiveSmallIntegerField(choices=Window.choices)
    file_name = models.CharField(max_length=255)
    pair_count = models.PositiveIntegerField(default=0)
    imported_at = models.DateTimeField()

    class Meta:
        # The newest year first and, within it, the shortest window: the closest to a
        # referral (a patient seen by one physician, then sent on to the other).
        ordering = ["-year", "window_days"]
        constraints = [
            models.UniqueConstraint(fields=["year", "window_days"], name="sharedpatients_once")
        ]

    def __str__(self) -> str:
        return f"CMS shared patients {self.year}, {self.window_days}-day window"


class SharedPatientPair(models.Model):
    """Two physicians who saw the same Medicare patients, `npi_from` first. CMS publishes
    only pairs with at least 11 patients. NPIs, not keys: most are in no table of ours."""

    dataset = models.ForeignKey(SharedPatientDataset, on_delete=models.CASCADE, related_name="+")
    npi_from = models.CharField("initial physician NPI", max_length=10)
    npi_to = models.CharField("secondary physician NPI", max_length=10)
    # "Shared Count": the visits the pair shared; "Number Unique Beneficiaries": patients.
    shared_count = models.PositiveIntegerField()
    patients = models.PositiveIntegerField()
    same_day_visits = models.PositiveIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["dataset", "npi_from", "npi_to"], name="sharedpatientpair_once"
            )
        ]
        indexes = [
            # A partner's page reads where their patients went next, and where from.
            models.Index(fields=["npi_from", "dataset", "patients"], name="sharedpair_from_idx"),
            models.Index(fields=["npi_to", "dataset", "patients"], name="sharedpair_to_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.npi_from} → {self.npi_to}: {self.patients} patients"


class ImportJob(models.Model):
    """A public data file (NPPES, or CMS shared patient patterns) uploaded in the browser and
    loaded by a worker. The row is the state of the work: the task reads it by primary key
    and writes its progress back."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    class Kind(models.TextChoices):
        NPPES = "nppes", "NPPES monthly file"
        SHARED_PATIENTS = "shared_patients", "CMS shared patient patterns"

    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.NPPES)
    file = models.FileField(upload_to="registry/imports/")
    original_name = models.CharField(max_length=255)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Share of the file read so far, 0-100.
    progress = models.PositiveSmallIntegerField(default=0)
    # Written with every progress step: a running job whose heartbeat stops was lost with its
    # worker, and the sweep runs it again (the import is idempotent).
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    # Shared patient patterns only: the year and window the file's pairs are loaded as.
    year = models.PositiveSmallIntegerField(null=True, blank=True)
    window_days = models.PositiveSmallIntegerField(
        choices=SharedPatientDataset.Window.choices, null=True, blank=True
    )
    imported = models.PositiveIntegerField(default=0)
    updated = models.PositiveIntegerField(default=0)
    unchanged = models.PositiveIntegerField(default=0)
    deactivated = models.PositiveIntegerField(default=0)
    rejected = models.PositiveIntegerField(default=0)
    # Shared patient patterns: pairs the file repeats, kept once, and the first rejected
    # lines quoted by number ("Line 7: …"); the rest are counted in `rejected`.
    repeated = models.PositiveIntegerField(default=0)
    rejections = models.JSONField(default=list, blank=True)
    rejects_path = models.CharField(max_length=500, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at"]
        permissions = [("import_nppes", "Can import NPPES files")]
        constraints = [
            models.CheckConstraint(condition=Q(progress__lte=100), name="importjob_progress_pct"),
            # A shared patient patterns file replaces one year and window, so it cannot be
            # queued without them; an NPPES file has neither.
            models.CheckConstraint(
                condition=Q(kind="nppes", year__isnull=True, window_days__isnull=True)
                | Q(
                    kind="shared_patients",
                    year__isnull=False,
                    window_days__in=SharedPatientDataset.Window.values,
                ),
                name="importjob_kind_year_window",
            ),
        ]

    def __str__(self) -> str:
        return f"Import of {self.original_name} ({self.get_status_display()})"

    @property
    def is_finished(self) -> bool:
        return self.status in (self.Status.DONE, self.Status.FAILED)

    @property
    def is_shared_patients(self) -> bool:
        return self.kind == self.Kind.SHARED_PATIENTS

    @property
    def unlisted_rejections(self) -> int:
        """Rejected lines counted but not quoted on the job's page."""
        return max(0, self.rejected - len(self.rejections))
