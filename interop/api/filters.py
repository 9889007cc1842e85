"""The REST API's list filters (django-filter): what an integration asks for when it syncs
partners or referrals. A value a filter cannot read is a 400 naming the parameter."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from django import forms
from django.core.validators import RegexValidator
from django.db.models import Q, QuerySet
from django.http import QueryDict
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django_filters import rest_framework as filters
from drf_spectacular.utils import extend_schema_field

from core.filters import LocalDayFilter
from core.ids import MAX_ID, parse_id
from partners.models import Provider, ProviderRemoval
from referrals.models import Referral

npi_validator = RegexValidator(r"^[0-9]{10}\Z", "An NPI is 10 digits.")


class StrictForm(forms.Form):
    """A parameter sent empty (`?provider_npi=`) is an error, not "no filter": a sync job
    whose variable came out empty must not quietly receive every row."""

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        for name, field in self.fields.items():
            if name not in self.data:
                continue
            values = _values(self.data, name)
            # A required parameter sent empty already says so.
            if "" in values and not field.required:
                # Said as what it is: a choice field would say "  is not one of the
                # available choices", naming nothing.
                self.errors.pop(name, None)
                self.add_error(name, "Empty: leave the parameter out not to filter by it.")
            # Django reads the last of several values: the others would be dropped unsaid.
            elif (
                len(values) > 1
                and not self.has_error(name)
                and not isinstance(field, forms.MultipleChoiceField)
            ):
                self.add_error(name, "Give it once: it takes one value.")
        return cleaned


def _values(data: Mapping[str, Any], name: str) -> list[Any]:
    """Every value sent for `name` (a query string may repeat a parameter)."""
    return data.getlist(name) if isinstance(data, QueryDict) else [data[name]]


class IsoTimeField(forms.DateTimeField):
    """An ISO 8601 time; one without an offset is in the practice's time zone. A valid
    time outside UTC's years 1-9999 once turned to UTC (year 1 at +05:00), which SQLite
    could not compare, reads as before (or after) every row there is."""

    default_error_messages = {
        "invalid": "Not an ISO 8601 time: give one such as 2026-03-01T00:00:00Z.",
    }

    def to_python(self, value: Any) -> datetime | None:
        if value in self.empty_values:
            return None
        try:
            parsed = parse_datetime(str(value).strip())
        except ValueError:
            parsed = None
        if parsed is None:
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid")
        if timezone.is_naive(parsed):
            parsed = self.naive(parsed)
        try:
            parsed.astimezone(UTC)
        except OverflowError:
            edge = datetime.min if parsed.year == 1 else datetime.max
            return edge.replace(tzinfo=UTC)
        return parsed

    def naive(self, parsed: datetime) -> datetime:
        """A time given without its offset: in the practice's time zone."""
        try:
            return timezone.make_aware(parsed)
        except OverflowError:
            # Its UTC offset pushes it past year 1 or 9999: the edge of time, as above.
            return parsed.replace(tzinfo=UTC)


class AwareDateTimeField(IsoTimeField):
    """An ISO 8601 time that carries its offset. updated_since reads a time without one in
    the practice's zone; here that is refused, since a sync whose clock and ours disagree
    about the zone (or the hour a daylight-saving change repeats) would never hear of the
    removals in the gap."""

    default_error_messages = {
        "invalid": "Not an ISO 8601 time: give one with its offset (e.g. 2026-03-01T00:00:00Z).",
        "naive": "Give the time's offset (Z for UTC, or e.g. -05:00): without one the time is "
        "ambiguous, and a removal could be missed.",
    }

    def naive(self, parsed: datetime) -> datetime:
        raise forms.ValidationError(self.error_messages["naive"], code="naive")


class IsoTimeFilter(filters.IsoDateTimeFilter):
    field_class = IsoTimeField


class AwareDateTimeFilter(filters.IsoDateTimeFilter):
    field_class = AwareDateTimeField


class StrictFilterSet(filters.FilterSet):
    # Both partners and referrals: what a sync job asks for each time it runs.
    updated_since = IsoTimeFilter(
        field_name="updated_at",
        lookup_expr="gte",
        help_text="Changed at or after this ISO 8601 time (the practice's time zone if none).",
    )

    class Meta:
        form = StrictForm


class IdField(forms.IntegerField):
    """A row id in ASCII digits: IntegerField's int() also reads '٣' as 3."""

    def to_python(self, value: Any) -> int | None:
        if value in self.empty_values:
            return None
        pk = parse_id(value)
        if pk is None:
            raise forms.ValidationError("Must be an id: a whole number in digits 0-9.")
        return pk


@extend_schema_field({"type": "integer", "minimum": 1, "maximum": MAX_ID})
class IdFilter(filters.NumberFilter):
    """A row id: a whole number (NumberFilter's decimal would read 1.5 as 1) that a
    bigint column can hold."""

    field_class = IdField

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, min_value=1, max_value=MAX_ID, **kwargs)


@extend_schema_field({"type": "string", "pattern": r"^[0-9]{10}$"})
class NpiFilter(filters.CharFilter):
    """Ten digits, nothing else."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, validators=[npi_validator], **kwargs)


class PartnerFilter(StrictFilterSet):
    # A partner's row carries their office: a change to the office changes the row too.
    updated_since = IsoTimeFilter(
        method="filter_updated_since",
        help_text="The partner or their office changed at or after this ISO 8601 time (the "
        "practice's time zone if none).",
    )
    npi = NpiFilter(help_text="The partner's NPI.")
    taxonomy = filters.CharFilter(
        field_name="taxonomy_code", max_length=10, help_text="NUCC taxonomy code, exactly."
    )
    specialty = filters.CharFilter(
        lookup_expr="icontains", max_length=100, help_text="Part of the specialty's name."
    )
    status = filters.MultipleChoiceFilter(
        choices=Provider.Status.choices, help_text="Relationship status; repeat for either."
    )
    tier = filters.MultipleChoiceFilter(choices=Provider.Tier.choices)
    health = filters.MultipleChoiceFilter(
        choices=Provider.Health.choices, help_text="Relationship health; repeat for either."
    )
    organization = IdFilter(field_name="organization_id", help_text="Office id.")

    class Meta(StrictFilterSet.Meta):
        model = Provider
        fields: list[str] = []

    def filter_updated_since(
        self, queryset: QuerySet[Provider], name: str, value: datetime
    ) -> QuerySet[Provider]:
        return queryset.filter(Q(updated_at__gte=value) | Q(organization__updated_at__gte=value))


class ReferralFilter(StrictFilterSet):
    status = filters.MultipleChoiceFilter(
        choices=Referral.Status.choices, help_text="Repeat for either."
    )
    direction = filters.ChoiceFilter(choices=Referral.Direction.choices)
    urgency = filters.MultipleChoiceFilter(choices=Referral.Urgency.choices)
    channel = filters.MultipleChoiceFilter(choices=Referral.Channel.choices)
    provider = IdFilter(field_name="provider_id", help_text="The partner's id.")
    provider_npi = NpiFilter(field_name="provider__npi", help_text="The partner's NPI.")
    # Whole days in the practice's time zone, both ends included, as on the referral list.
    received_after = LocalDayFilter(
        field_name="received_at", end="from", help_text="Received on or after."
    )
    received_before = LocalDayFilter(
        field_name="received_at", end="to", help_text="Received on or before."
    )
    # A choice, not a boolean: django-filter reads an unknown boolean ("yes") as no
    # filter at all, and a sync would count every row unawares.
    counted = filters.ChoiceFilter(
        choices=[("true", "true"), ("false", "false")],
        method="filter_counted",
        help_text="true: leave out the copies marked as duplicates of another referral "
        "(duplicate_of set), as every report and figure of the practice counts; false: "
        "only those copies.",
    )

    class Meta(StrictFilterSet.Meta):
        model = Referral
        fields: list[str] = []

    def filter_counted(
        self, queryset: QuerySet[Referral], name: str, value: str
    ) -> QuerySet[Referral]:
        return queryset.filter(duplicate_of__isnull=value == "true")


class PartnerRemovalFilter(filters.FilterSet):
    since = AwareDateTimeFilter(
        field_name="removed_at",
        lookup_expr="gte",
        required=True,
        error_messages={
            "required": "Required: the ISO 8601 time to list removals from, with its offset "
            "(e.g. 2026-03-01T00:00:00Z)."
        },
        help_text="Removed at or after this ISO 8601 time, which must carry its offset (Z or "
        "±HH:MM). Send the latest removed_at of the last run less a few minutes: a removal "
        "is stamped as its transaction runs and seen once that commits.",
    )

    class Meta:
        form = StrictForm
        model = ProviderRemoval
        fields: list[str] = []
