"""Who changed a partner's or office's record, when, and what from and to.

django-simple-history keeps a row of the whole record at every save (`Provider.history`,
`Organization.history`): by a form, the REST API, the admin, a spreadsheet import (which
names itself and its uploader) or a merge. This module reads one page of those rows as
changes a person can check: a fax number typed wrong sends patients' letters to a
stranger, and the practice must be able to say who changed it and when.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.core.paginator import Page
from django.db import models
from django.db.models import Q
from django.utils.text import capfirst

from core.templatetags.people import person

WHAT_HAPPENED = {"+": "Added", "~": "Changed", "-": "Removed"}


@dataclass(frozen=True)
class FieldChange:
    label: str
    old: str
    new: str


@dataclass(frozen=True)
class RecordChange:
    at: datetime
    by: User | None
    what: str
    reason: str
    fields: list[FieldChange]


# The changes kept apart from the record's history between two moments (from `since`,
# before `until`; None: no bound), as RecordChanges: see tier_and_health_changes.
KeptApart = Callable[[datetime | None, datetime | None], list["RecordChange"]]


def record_changes(
    page: Page, history: models.QuerySet[Any], *, kept_apart: KeptApart | None = None
) -> list[RecordChange]:
    """The changes on `page` (a page of `history`, newest first), each against the row
    before it: the page's rows, the one row older than the page, and the people and offices
    they name, in four queries. A save that changed nothing shown (a tier change, kept with
    its own history) is left out.

    `kept_apart` adds the changes kept in tables of their own that fall on this page: from
    the row just older than the page (none: the beginning) to the page's newest row (the
    first page: to now), so each is on exactly one page, among the changes around it."""
    rows = list(page.object_list)
    if not rows:
        return []
    last = rows[-1]
    older = (
        history.filter(
            Q(history_date__lt=last.history_date)
            | Q(history_date=last.history_date, history_id__lt=last.history_id)
        )
        .order_by("-history_date", "-history_id")
        .first()
    )
    befores = [*rows[1:], older]
    shown = [
        field
        for field in history.model.tracked_fields
        if field.name not in ("id",) and field.editable
    ]
    diffs = []
    for row, before in zip(rows, befores, strict=True):
        if row.history_type == "~" and before is not None:
            names = [f for f in shown if _raw(row, f) != _raw(before, f)]
        else:
            names = []
        diffs.append((row, before, names))
    names_of = _names_of_related(diffs)
    changes = []
    for row, before, fields in diffs:
        if row.history_type == "~" and not fields and before is not None:
            continue
        changes.append(
            RecordChange(
                at=row.history_date,
                by=row.history_user,
                what=WHAT_HAPPENED[row.history_type],
                reason=row.history_change_reason or "",
                fields=[
                    FieldChange(
                        label=capfirst(str(field.verbose_name)),
                        old=_shown(before, field, names_of),
                        new=_shown(row, field, names_of),
                    )
                    for field in fields
                ],
            )
        )
    if kept_apart is not None:
        since = older.history_date if older is not None else None
        until = rows[0].history_date if page.number > 1 else None
        changes.extend(kept_apart(since, until))
        changes.sort(key=lambda change: change.at, reverse=True)
    return changes


def tier_and_health_changes(provider_pk: int) -> KeptApart:
    """A partner's tier and health changes, for its Changes page. They are kept apart
    from the record's history (TierChange, HealthChange): the nightly tiering and health
    check write them in bulk with their reasons, and a manager's override with theirs. Two
    queries for a page."""
    from partners.models import HealthChange, Provider, TierChange

    tiers = dict(Provider.Tier.choices)
    healths = dict(Provider.Health.choices)

    def between(since: datetime | None, until: datetime | None) -> list[RecordChange]:
        window = Q()
        if since is not None:
            window &= Q(changed_at__gte=since)
        if until is not None:
            window &= Q(changed_at__lt=until)
        found = []
        for tier in TierChange.objects.filter(window, provider_id=provider_pk).select_related(
            "changed_by"
        ):
            fields = []
            if tier.from_tier != tier.to_tier:
                fields.append(
                    FieldChange("Tier", tiers.get(tier.from_tier, ""), tiers.get(tier.to_tier, ""))
                )
            if tier.kind == TierChange.Kind.OVERRIDE:
                kept = f"until {tier.pinned_until:%b %-d, %Y}" if tier.pinned_until else "Yes"
                fields.append(FieldChange("Kept from the nightly tiering", "", kept))
            elif tier.kind == TierChange.Kind.PIN_CLEARED:
                fields.append(FieldChange("Kept from the nightly tiering", "Yes", "No"))
            found.append(
                RecordChange(
                    at=tier.changed_at,
                    by=tier.changed_by,
                    what="Changed",
                    reason=f"{tier.get_kind_display()}: {tier.reason}",
                    fields=fields,
                )
            )
        for health in HealthChange.objects.filter(window, provider_id=provider_pk):
            found.append(
                RecordChange(
                    at=health.changed_at,
                    by=None,
                    what="Changed",
                    reason="Nightly health check (the reasons are on the partner's page)",
                    fields=[
                        FieldChange(
                            "Health",
                            healths.get(health.from_health, ""),
                            healths.get(health.to_health, ""),
                        )
                    ],
                )
            )
        return found

    return between


def _raw(row: Any, field: models.Field[Any, Any]) -> Any:
    return getattr(row, field.attname)


def _names_of_related(diffs: list[Any]) -> dict[Any, dict[Any, str]]:
    """The names of the people and offices the changed foreign keys point at, read once
    per kind of record for the whole page."""
    wanted: dict[Any, set[Any]] = {}
    for row, before, fields in diffs:
        for field in fields:
            if field.is_relation:
                for record in (row, before):
                    if _raw(record, field) is not None:
                        wanted.setdefault(field.related_model, set()).add(_raw(record, field))
    names: dict[Any, dict[Any, str]] = {}
    for related, ids in wanted.items():
        found = related._default_manager.filter(pk__in=ids)
        if related is get_user_model():
            names[related] = {user.pk: person(user) for user in found}
        else:
            names[related] = {record.pk: str(record) for record in found}
    return names


def _shown(row: Any, field: models.Field[Any, Any], names_of: dict[Any, dict[Any, str]]) -> str:
    if row is None:
        return ""
    value = _raw(row, field)
    if value is None or value == "":
        return ""
    if field.is_relation:
        return names_of.get(field.related_model, {}).get(value, f"a record since removed ({value})")
    if field.choices:
        return str(dict(field.flatchoices).get(value, value))
    if isinstance(value, bool):
        return "Yes" if value else "No"
    return str(value)
