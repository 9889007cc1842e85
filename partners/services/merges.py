"""Merging a duplicate provider or office into its survivor, and the preview of it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.db.models import Exists, ManyToManyRel, OuterRef, Q, UniqueConstraint
from django.utils import timezone
from django.utils.text import capfirst
from simple_history.models import HistoricalChanges

from core.meta import own_field
from partners.models import Organization, PartnerMerge, Provider

# How the partner asked to be written to (see _merged_value).
PREFERENCES = ("preferred_channel", "report_cadence", "thank_you_by")
PROVIDER_MERGE_FIELDS = [
    "credential",
    "taxonomy_code",
    "specialty",
    "organization",
    "phone",
    "email",
    "owner",
    "tier",
    "in_network",
    "letters_opt_out",
    "marketing_opt_out",
    *PREFERENCES,
]
ORGANIZATION_MERGE_FIELDS = [
    "npi",
    "phone",
    "fax",
    "email",
    "address_line1",
    "address_line2",
    "city",
    "state",
    "zip_code",
    "letters_opt_out",
    "marketing_opt_out",
]


@dataclass(frozen=True)
class MergeField:
    label: str
    survivor: Any
    duplicate: Any
    result: Any


@dataclass(frozen=True)
class MergePreview:
    fields: list[MergeField]
    moves: dict[str, int]  # related rows that will move to the survivor, by table
    problems: list[str]  # reasons the merge is refused; empty when it may go ahead


def _merged_value(survivor: models.Model, duplicate: models.Model, name: str) -> Any:
    """The survivor's value wins; where the survivor has none, it takes the duplicate's.
    An opt-out on either record is the partner's wish, so the merged record keeps it; and
    a specialist the practice made a preferred partner on either record stays one (else
    every patient sent to them would count as leakage)."""
    mine = getattr(survivor, name)
    if name in ("letters_opt_out", "marketing_opt_out", "in_network"):
        return mine or getattr(duplicate, name)
    if name == "tier" and _pin_comes_over(survivor, duplicate):
        return getattr(duplicate, name)
    if name in PREFERENCES:
        # How the partner asked to be written to: a choice made on either record, not the
        # default a record was created with (the record kept's own choice first).
        default = own_field(survivor, name).default
        return mine if mine != default else getattr(duplicate, name)
    return mine if mine not in ("", None) else getattr(duplicate, name)


def _pin_comes_over(survivor: models.Model, duplicate: models.Model) -> bool:
    """A tier a manager pinned on the duplicate, where the survivor's is not pinned, is a
    decision the merge keeps: the tier and its pin come over, or the nightly tiering
    would overwrite it."""
    return (
        isinstance(survivor, Provider)
        and isinstance(duplicate, Provider)
        and duplicate.tier_pin_holds
        and not survivor.tier_pin_holds
    )


def _related_counts(instance: models.Model) -> dict[str, int]:
    # One count per related table (a fixed handful), not per row.
    counts = {}
    for rel in _pointing_at(instance):
        if isinstance(rel, ManyToManyRel):
            assert rel.through is not None, "Django sets it when the models are loaded"
            through = rel.through._base_manager
            n = through.filter(**{rel.field.m2m_reverse_field_name(): instance}).count()
        else:
            n = rel.related_model._base_manager.filter(**{rel.field.name: instance}).count()
        if n:
            counts[str(rel.related_model._meta.verbose_name_plural)] = n
    return counts


# Rules of one row per partner that the merge settles itself before moving rows (the
# duplicate's newsletter and summary letters give up their key; its open rekindle or
# annual-meeting task is cancelled where the survivor has one): see partner_merge.
SETTLED_BY_MERGE = frozenset(
    {
        "letter_one_per_newsletter_provider",
        "letter_one_summary_per_provider_period",
        "task_one_open_rekindle_per_provider",
        "task_one_open_annual_meeting_per_provider",
    }
)


def _unique_rules(model: type[models.Model]) -> list[tuple[list[str], Q | None]]:
    """The model's one-row rules: unique fields, unique_together and unique constraints
    on fields (with the condition a row must meet for the rule to apply)."""
    rules: list[tuple[list[str], Q | None]] = [
        ([field.name], None)
        for field in model._meta.local_fields
        if field.unique and not field.primary_key
    ]
    rules += [(list(together), None) for together in model._meta.unique_together]
    for constraint in model._meta.constraints:
        if (
            isinstance(constraint, UniqueConstraint)
            and constraint.fields
            and constraint.name not in SETTLED_BY_MERGE
        ):
            rules.append((list(constraint.fields), constraint.condition))
    return rules


def _clashes(survivor: models.Model, duplicate: models.Model) -> list[str]:
    """Rows of the duplicate that cannot point at the survivor: a one-row rule of their
    table (one plan entry per liaison, office and day; one share of a lunch per physician;
    one invitation per event) already holds a row of the survivor's with the same values.
    Which of the two is right is the user's call, so the merge is refused naming them."""
    problems = []
    for rel in _pointing_at(duplicate):
        if isinstance(rel, ManyToManyRel):
            continue  # _repoint keeps one link where both records had one
        model, key = rel.related_model, rel.field.name
        for fields, condition in _unique_rules(model):
            if key not in fields:
                continue
            others = [name for name in fields if name != key]
            rows = model._base_manager.filter(condition or Q())
            theirs = rows.filter(**{key: survivor}, **{name: OuterRef(name) for name in others})
            count = rows.filter(**{key: duplicate}).filter(Exists(theirs)).count()
            if count:
                plural = str(model._meta.verbose_name_plural)
                same = " and ".join(
                    str(model._meta.get_field(name).verbose_name) for name in others
                )
                problems.append(
                    f"{count} of the duplicate's {plural} and the survivor's have the same "
                    f"{same or 'record'}, and only one may stay: change or remove the "
                    "duplicate's first, then merge."
                )
    return problems


def _check_merge(
    survivor: Provider | Organization, duplicate: Provider | Organization
) -> list[str]:
    problems = []
    if survivor.pk == duplicate.pk:
        problems.append("Choose two different records: a record cannot merge into itself.")
    if (
        isinstance(survivor, Organization)
        and survivor.npi
        and duplicate.npi
        and survivor.npi != duplicate.npi
    ):
        problems.append(
            f"Both offices have an organization NPI ({survivor.npi} and {duplicate.npi}): "
            "they are different billing entities. If one NPI was entered by mistake, clear "
            "it on that office first."
        )
    if survivor.pk != duplicate.pk:
        problems += _clashes(survivor, duplicate)
    return problems


def partner_merge_preview(
    *, survivor: Provider | Organization, duplicate: Provider | Organization
) -> MergePreview:
    """What a merge would keep, field by field, and what would move; see partner_merge."""
    names = PROVIDER_MERGE_FIELDS if isinstance(survivor, Provider) else ORGANIZATION_MERGE_FIELDS
    fields = [
        MergeField(
            label=capfirst(str(field.verbose_name)),
            survivor=_shown(getattr(survivor, name), field),
            duplicate=_shown(getattr(duplicate, name), field),
            result=_shown(_merged_value(survivor, duplicate, name), field),
        )
        for name in names
        for field in [own_field(survivor, name)]
    ]
    return MergePreview(
        fields=fields, moves=_related_counts(duplicate), problems=_check_merge(survivor, duplicate)
    )


def _shown(value: Any, field: Any) -> Any:
    # A yes/no field reads "Yes", or a dash like an empty one (not "True" or "False"); a
    # choice, by its name ("A monthly summary", not "monthly").
    if isinstance(value, bool):
        return "Yes" if value else ""
    if getattr(field, "choices", None) and value not in ("", None):
        return dict(field.flatchoices).get(value, value)
    return value


def _pointing_at(record: models.Model) -> list[Any]:
    """Every relation of another table to this record's table: the model's reverse
    relations, hidden ones (related_name="+", as an event invitation names its provider)
    included, which Django's related_objects leaves out; the tables Django makes for a
    many-to-many field are reached through that field instead."""
    return [
        field
        for field in record._meta.get_fields(include_hidden=True)
        if field.auto_created
        and not field.concrete
        and field.related_model is not None
        and (field.many_to_many or not field.related_model._meta.auto_created)
        # A history row keeps the office as it was then: re-pointing it would rewrite
        # what the Changes pages say happened before the merge.
        and not issubclass(field.related_model, HistoricalChanges)
    ]


def _repoint_with_history(
    rel: Any,
    rows: models.QuerySet[Any],
    survivor: models.Model,
    duplicate: models.Model,
    history: str,
    touched: dict[str, Any],
) -> int:
    """Re-point rows whose model keeps a history (a partner moving to the office kept, its
    staff too): an update() writes none, so each moved row gets its history row, naming
    the merge (and, through the request, who merged)."""
    ids = list(rows.values_list("pk", flat=True))
    n = int(
        rel.related_model._base_manager.filter(pk__in=ids).update(
            **{rel.field.name: survivor}, **touched
        )
    )
    moved = list(rel.related_model._base_manager.filter(pk__in=ids).order_by("pk"))
    getattr(rel.related_model, history).bulk_history_create(
        moved,
        update=True,
        default_change_reason=f"Moved when record {duplicate.pk} was merged into record "
        f"{survivor.pk}",
    )
    return n


def _repoint(survivor: models.Model, duplicate: models.Model) -> dict[str, int]:
    """Every row that points at the duplicate points at the survivor afterwards. Walks the
    model's reverse relations, so tables other apps add later are carried along too."""
    moved = {}
    for rel in _pointing_at(duplicate):
        if isinstance(rel, ManyToManyRel):
            assert rel.through is not None, "Django sets it when the models are loaded"
            through = rel.through._base_manager
            target, source = rel.field.m2m_reverse_field_name(), rel.field.m2m_field_name()
            rows = through.filter(**{target: duplicate})
            # An activity that met both records keeps one link, to the survivor.
            shared = through.filter(**{target: survivor}).values(source)
            n, _ = rows.filter(**{f"{source}__in": shared}).delete()
            n += rows.update(**{target: survivor})
        else:
            # update() leaves auto_now fields alone, but a re-pointed row has changed (a
            # referral's partner, a partner's office): updated_at says so to API syncs.
            now = timezone.now()
            touched = {
                field.name: now
                for field in rel.related_model._meta.concrete_fields
                if getattr(field, "auto_now", False)
            }
            rows = rel.related_model._base_manager.filter(**{rel.field.name: duplicate})
            history = getattr(rel.related_model._meta, "simple_history_manager_attribute", None)
            if history is None:
                n = rows.update(**{rel.field.name: survivor}, **touched)
            else:
                n = _repoint_with_history(rel, rows, survivor, duplicate, history, touched)
        if n:
            moved[str(rel.related_model._meta.verbose_name_plural)] = n
    return moved


@transaction.atomic
def partner_merge(
    *, survivor: Provider | Organization, duplicate: Provider | Organization, actor: User | None
) -> PartnerMerge:
    """Fold `duplicate` (a Provider or an Organization) into `survivor` in one transaction:
    re-point every related row (referrals, activities, tasks, letters, tier and health
    history, staff, providers, ...), fill the survivor's empty fields from the duplicate,
    record a PartnerMerge and delete the duplicate.

    NPI rules: a type-1 NPI belongs to one clinician for life, so of two provider records
    for one person at most one NPI is right; the survivor's is kept and the duplicate's is
    recorded on the PartnerMerge (pick the record with the right NPI as the survivor).
    Offices: two different organization NPIs mean two billing entities and the merge is
    refused; when only the duplicate has one, the survivor takes it.
    """
    model = type(survivor)
    if type(duplicate) is not model or model not in (Provider, Organization):
        raise ValidationError("Only two providers or two offices can be merged.")
    # Lock both rows in primary-key order so two merges of the same pair cannot deadlock.
    locked = {
        row.pk: row
        for row in model.objects.select_for_update()
        .filter(pk__in=[survivor.pk, duplicate.pk])
        .order_by("pk")
    }
    if len(locked) != 2:
        raise ValidationError("One of the records no longer exists (merged or deleted).")
    keep, gone = locked[survivor.pk], locked[duplicate.pk]
    problems = _check_merge(keep, gone)
    if problems:
        raise ValidationError(problems)
    if isinstance(gone, Provider):  # and so is keep: both are rows of `model`
        names, kind = PROVIDER_MERGE_FIELDS, PartnerMerge.Kind.PROVIDER
        label, npi = gone.display_name, gone.npi
    else:
        names, kind = ORGANIZATION_MERGE_FIELDS, PartnerMerge.Kind.ORGANIZATION
        label, npi = gone.name, gone.npi
    values = {name: _merged_value(keep, gone, name) for name in names}
    if isinstance(gone, Organization) and gone.letters_opt_out and not keep.letters_opt_out:
        # The office's opt-out comes with its date and author (and its history rows move).
        values["letters_opt_out_at"] = gone.letters_opt_out_at
        values["letters_opt_out_by_id"] = gone.letters_opt_out_by_id
    if _pin_comes_over(keep, gone):
        assert isinstance(gone, Provider), "a pin is a provider's"
        values["tier_pinned"] = True
        values["tier_pinned_until"] = gone.tier_pinned_until
    if gone.notes and gone.notes not in keep.notes:
        values["notes"] = "\n\n".join(part for part in (keep.notes, gone.notes) if part)
    if isinstance(keep, Provider):
        from outreach.services.letters import letter_keys_release_for_merge
        from outreach.services.tasks import task_keys_release_for_merge

        letter_keys_release_for_merge(survivor_id=keep.pk, duplicate_id=gone.pk)
        task_keys_release_for_merge(survivor_id=keep.pk, duplicate_id=gone.pk)
    moved = _repoint(keep, gone)
    gone_pk = gone.pk
    # First, so a unique NPI can move to the survivor. Either leaves a removal record
    # naming the survivor, so API syncs and FHIR reads learn where it went.
    # Each record's history says why it changed or went (partners/history.py).
    # (simple-history reads `_change_reason` from the instance it saves.)
    setattr(gone, "_change_reason", f"Merged into record {keep.pk}")  # noqa: B010
    setattr(keep, "_change_reason", f"Merged with its duplicate, record {gone_pk}")  # noqa: B010
    if isinstance(gone, Provider):
        gone.delete(merged_into=cast(Provider, keep))
    else:
        gone.delete(merged_into=cast(Organization, keep))
    for name, value in values.items():
        setattr(keep, name, value)
    keep.full_clean()
    keep.save()
    if isinstance(keep, Provider) and keep.owner_id is not None:
        from outreach.services.tasks import owner_tasks_hand_over

        # The duplicate's open rekindle or meeting task came with it: the owner's now.
        owner_tasks_hand_over(provider_id=keep.pk, owner_id=keep.owner_id)
    merge = PartnerMerge.objects.create(
        kind=kind,
        survivor_provider=keep if isinstance(keep, Provider) else None,
        survivor_organization=keep if isinstance(keep, Organization) else None,
        survivor_id_at_merge=keep.pk,
        duplicate_id=gone_pk,
        duplicate_name=label[:300],
        duplicate_npi=npi,
        moved=moved,
        merged_by=actor,
        merged_at=timezone.now(),
    )
    return merge
