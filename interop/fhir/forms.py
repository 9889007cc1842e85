"""Search parameters, read through forms like every other input. A value the facade
cannot read is a 400 naming the parameter; parameters it does not support are ignored,
as FHIR's default (lenient) search handling says, and left out of the Bundle's links (or,
asked for with `Prefer: handling=strict`, a 400 naming them)."""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta
from typing import Any

from django import forms
from django.db.models import Q
from django.http import QueryDict
from django.utils import timezone

from interop.fhir.resources import (
    CONTENT_SENDER,
    ENTERED_IN_ERROR,
    NPI_SYSTEM,
    ORDER_SENDER_PREFIX,
    STATUSES_BY_REQUEST_STATUS,
)

DEFAULT_COUNT = 20
MAX_COUNT = 100
MAX_OFFSET = 100_000


class SearchForm(forms.Form):
    """`_count` (page size) and `_offset` (where the page starts; the next link sets it)."""

    # Other fields are declared in __init__: FHIR's names are not Python identifiers.
    extra_fields: dict[str, forms.Field] = {}

    def __init__(self, data: QueryDict) -> None:
        super().__init__(data)
        self.query = data
        self.fields["_count"] = forms.IntegerField(required=False, min_value=1, max_value=MAX_COUNT)
        self.fields["_offset"] = forms.IntegerField(
            required=False, min_value=0, max_value=MAX_OFFSET
        )
        for name, field in self.extra_fields.items():
            self.fields[name] = field

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        for name, field in self.fields.items():
            # Django reads the last of several values: a filter would be dropped unsaid.
            if not isinstance(field, MultipleValueField) and len(self.query.getlist(name)) > 1:
                self.add_error(name, "Give it once: it takes one value.")
        return cleaned

    @property
    def count(self) -> int:
        return self.cleaned_data.get("_count") or DEFAULT_COUNT

    @property
    def offset(self) -> int:
        return self.cleaned_data.get("_offset") or 0

    def next_offset(self, total: int) -> int | None:
        """Where the next page starts, if there is one this form would accept: a search
        pages at most MAX_OFFSET rows deep, and a next link past it would be a 400."""
        offset = self.offset + self.count
        return offset if offset < total and offset <= MAX_OFFSET else None

    def unsupported(self) -> list[str]:
        """The parameters given that this search does not read (_format is read by the
        content negotiation)."""
        return sorted(name for name in self.query if name not in self.fields and name != "_format")

    def used(self) -> dict[str, Any]:
        """The parameters given (as sent), for the Bundle's self and next links."""
        return {
            name: self.query.getlist(name)
            for name in self.fields
            if name != "_offset" and name in self.query
        }

    def error_text(self) -> str:
        return " ".join(
            f"Search parameter {name}: {' '.join(str(message) for message in messages)}"
            for name, messages in self.errors.items()
        )

    def filters(self) -> Q:
        return Q()


def _token(value: str, *, system: str) -> str | None:
    """A token search's code: `system|code` or `code`; None when the system is another
    one (nothing can match)."""
    if "|" in value:
        given_system, _, code = value.partition("|")
        return code if given_system in ("", system) else None
    return value


def _reference_id(value: str, resource_type: str) -> int:
    """A reference search's target: `Type/123`, a full URL ending so, or `123`."""
    # ASCII digits only: \d and int() also read '٣' as 3.
    match = re.fullmatch(rf"(?:(?:.*/)?{resource_type}/)?([0-9]{{1,18}})", value.strip())
    if match is None:
        raise forms.ValidationError(f"“{value[:50]}” is not a {resource_type} reference.")
    return int(match.group(1))


# At most this many words in a name search (each is one more condition on the query).
MAX_NAME_WORDS = 5


def _words(value: str) -> list[str]:
    words = value.split()
    if len(words) > MAX_NAME_WORDS:
        # Refused, not cut short: the Bundle's links name every word as applied.
        raise forms.ValidationError(
            f"Give at most {MAX_NAME_WORDS} words (it has {len(words)}): each must start "
            "the given or the family name."
        )
    return words


class PractitionerSearchForm(SearchForm):
    extra_fields = {
        "identifier": forms.CharField(required=False, max_length=100),
        "name": forms.CharField(required=False, max_length=100),
    }

    def clean_name(self) -> str:
        name: str = self.cleaned_data.get("name") or ""
        _words(name)
        return name

    def filters(self) -> Q:
        query = Q()
        if identifier := self.cleaned_data.get("identifier"):
            npi = _token(identifier, system=NPI_SYSTEM)
            query &= Q(npi=npi) if npi is not None else Q(pk__in=[])
        # FHIR string search: each word starts the given or the family name.
        for word in _words(self.cleaned_data.get("name") or ""):
            query &= Q(first_name__istartswith=word) | Q(last_name__istartswith=word)
        return query


class OrganizationSearchForm(SearchForm):
    extra_fields = {
        "name": forms.CharField(required=False, max_length=200),
        "identifier": forms.CharField(required=False, max_length=100),
    }

    def filters(self) -> Q:
        query = Q()
        if name := (self.cleaned_data.get("name") or "").strip():
            query &= Q(name__istartswith=name) | Q(name__icontains=f" {name}")
        if identifier := self.cleaned_data.get("identifier"):
            npi = _token(identifier, system=NPI_SYSTEM)
            query &= Q(npi=npi) if npi else Q(pk__in=[])
        return query


class PractitionerRoleSearchForm(SearchForm):
    extra_fields = {
        "practitioner": forms.CharField(required=False, max_length=200),
        "organization": forms.CharField(required=False, max_length=200),
    }

    def clean_practitioner(self) -> int | None:
        value = self.cleaned_data.get("practitioner")
        return _reference_id(value, "Practitioner") if value else None

    def clean_organization(self) -> int | None:
        value = self.cleaned_data.get("organization")
        return _reference_id(value, "Organization") if value else None

    def filters(self) -> Q:
        query = Q()
        if (practitioner := self.cleaned_data.get("practitioner")) is not None:
            query &= Q(pk=practitioner)
        if (organization := self.cleaned_data.get("organization")) is not None:
            query &= Q(organization_id=organization)
        return query


class MultipleValueField(forms.Field):
    """A parameter that may repeat (`authored=ge2025-01-01&authored=lt2025-02-01`), up to
    MAX_REPEATS times: more is refused, not cut short, since the Bundle's links name every
    value given as applied."""

    MAX_REPEATS = 4
    widget = forms.MultipleHiddenInput

    def to_python(self, value: Any) -> list[str]:
        values = [str(item) for item in value or []]
        if len(values) > self.MAX_REPEATS:
            raise forms.ValidationError(
                f"Give it at most {self.MAX_REPEATS} times (it was given {len(values)}): "
                "two bound a period."
            )
        return values


DATE_PARAMETER = re.compile(r"(eq|ne|gt|lt|ge|le)?([0-9]{4}-[0-9]{2}-[0-9]{2})")


def _date_filter(field: str, value: str) -> Q:
    """A FHIR date search on a datetime column, to the day (in the practice's time zone)."""
    match = DATE_PARAMETER.fullmatch(value.strip())
    if match is None:
        raise forms.ValidationError(
            f"“{value[:30]}” is not a date search: use YYYY-MM-DD, optionally after "
            "eq, ne, gt, lt, ge or le."
        )
    prefix, day = match.group(1) or "eq", match.group(2)
    try:
        parsed = date.fromisoformat(day)
    except ValueError:
        raise forms.ValidationError(f"“{day}” is not a date.") from None
    start = timezone.make_aware(datetime.combine(parsed, time.min))
    on_or_after = Q(**{f"{field}__gte": start})
    # 9999-12-31 has no next day in Python's calendar: nothing comes after it.
    if parsed == date.max:
        on_day, after = on_or_after, Q(pk__in=[])
    else:
        end = timezone.make_aware(datetime.combine(parsed + timedelta(days=1), time.min))
        on_day = on_or_after & Q(**{f"{field}__lt": end})
        after = Q(**{f"{field}__gte": end})
    return {
        "eq": on_day,
        "ne": ~on_day,
        "gt": after,
        "ge": on_or_after,
        "lt": ~on_or_after,
        "le": ~after,
    }[prefix]


def _order_identifier(value: str) -> Q:
    """A ServiceRequest posted with this identifier (`system|value`, `|value` for one
    without a system, or `value` under any system)."""
    if "|" in value:
        system, _, code = value.partition("|")
        return Q(
            hl7_import__sending_application=ORDER_SENDER_PREFIX + system,
            hl7_import__message_control_id=code,
        )
    return Q(
        hl7_import__sending_application__startswith=ORDER_SENDER_PREFIX,
        hl7_import__message_control_id=value,
    ) & ~Q(hl7_import__sending_application=CONTENT_SENDER)


class ServiceRequestSearchForm(SearchForm):
    extra_fields = {
        "identifier": forms.CharField(required=False, max_length=400),
        "status": forms.CharField(required=False, max_length=100),
        "requester": forms.CharField(required=False, max_length=200),
        "requester:identifier": forms.CharField(required=False, max_length=100),
        # The same, written as a chain to the Practitioner's identifier.
        "requester.identifier": forms.CharField(required=False, max_length=100),
        "authored": MultipleValueField(required=False),
    }

    def clean_status(self) -> Q | None:
        """The referrals the FHIR statuses asked for: none (Q(pk__in=[])) when every code
        asked for is one this server never holds, such as draft. A duplicate is
        entered-in-error and nothing else."""
        value = self.cleaned_data.get("status")
        if not value:
            return None
        query = Q(pk__in=[])
        # Comma-separated values are alternatives.
        for code in (code.strip() for code in value.split(",")):
            if code not in STATUSES_BY_REQUEST_STATUS:
                raise forms.ValidationError(
                    f"“{code[:30]}” is not a status this server uses "
                    f"({', '.join(sorted(STATUSES_BY_REQUEST_STATUS))})."
                )
            if code == ENTERED_IN_ERROR:
                query |= Q(duplicate_of__isnull=False)
            elif STATUSES_BY_REQUEST_STATUS[code]:
                query |= Q(status__in=STATUSES_BY_REQUEST_STATUS[code], duplicate_of__isnull=True)
        return query

    def clean_requester(self) -> int | None:
        value = self.cleaned_data.get("requester")
        return _reference_id(value, "Practitioner") if value else None

    def clean_authored(self) -> Q:
        query = Q()
        for value in self.cleaned_data.get("authored") or []:
            query &= _date_filter("received_at", value)
        return query

    def filters(self) -> Q:
        query = self.cleaned_data.get("authored") or Q()
        if identifier := self.cleaned_data.get("identifier"):
            query &= _order_identifier(identifier)
        if (statuses := self.cleaned_data.get("status")) is not None:
            query &= statuses
        # The requester is the partner of an inbound referral (outbound ones we request).
        if (requester := self.cleaned_data.get("requester")) is not None:
            query &= Q(direction="inbound", provider_id=requester)
        identifier = self.cleaned_data.get("requester:identifier") or self.cleaned_data.get(
            "requester.identifier"
        )
        if identifier:
            npi = _token(identifier, system=NPI_SYSTEM)
            query &= Q(direction="inbound", provider__npi=npi) if npi else Q(pk__in=[])
        return query
