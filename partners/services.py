"""Writes to the partner network that go beyond a plain form save: tiers and their
overrides, the nightly tiering and health assessment, and merging duplicates."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import IntegrityError, models, transaction
from django.db.models import Count, ManyToManyRel, Max, Min, Q
from django.utils import timezone

from core.meta import own_field
from partners.models import (
    HealthChange,
    Organization,
    PartnerImport,
    PartnerMerge,
    Provider,
    TierChange,
)

# Locks and bulk writes go in batches so no statement outgrows SQLite's variable limit.
BATCH_SIZE = 500


def _batches(items: list[Any], size: int = BATCH_SIZE) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _end_of_day(day: date) -> datetime:
    """The first instant after `day` in the practice's time zone: windows end here."""
    return datetime.combine(
        day + timedelta(days=1), time.min, tzinfo=timezone.get_current_timezone()
    )


# --- Tiers set by a manager -------------------------------------------------------------


@transaction.atomic
def provider_set_tier(
    *,
    provider: Provider,
    tier: str,
    reason: str,
    actor: User | None,
    pinned_until: date | None = None,
) -> TierChange | None:
    """A manager's override: set the tier and pin it, so the nightly tiering leaves it
    alone until `pinned_until` has passed (no date: until a manager clears the pin).
    Returns None when neither the tier nor the pin changes (nothing to record)."""
    locked = Provider.objects.select_for_update().get(pk=provider.pk)
    if locked.tier == tier and locked.tier_pinned and locked.tier_pinned_until == pinned_until:
        return None
    change = TierChange(
        provider=locked,
        kind=TierChange.Kind.OVERRIDE,
        from_tier=locked.tier,
        to_tier=tier,
        pinned_until=pinned_until,
        reason=reason,
        changed_by=actor,
        changed_at=timezone.now(),
    )
    change.full_clean()
    change.save()
    locked.tier = tier
    locked.tier_pinned = True
    locked.tier_pinned_until = pinned_until
    locked.save(update_fields=["tier", "tier_pinned", "tier_pinned_until", "updated_at"])
    provider.tier, provider.tier_pinned, provider.tier_pinned_until = tier, True, pinned_until
    return change


@transaction.atomic
def provider_unpin_tier(
    *, provider: Provider, actor: User | None, reason: str = ""
) -> TierChange | None:
    """Hand the tier back to the nightly tiering (which recomputes it tonight)."""
    locked = Provider.objects.select_for_update().get(pk=provider.pk)
    if not locked.tier_pinned:
        return None
    change = TierChange.objects.create(
        provider=locked,
        kind=TierChange.Kind.PIN_CLEARED,
        from_tier=locked.tier,
        to_tier=locked.tier,
        reason=reason or "Returned to nightly tiering",
        changed_by=actor,
        changed_at=timezone.now(),
    )
    locked.tier_pinned = False
    locked.tier_pinned_until = None
    locked.save(update_fields=["tier_pinned", "tier_pinned_until", "updated_at"])
    provider.tier_pinned, provider.tier_pinned_until = False, None
    return change


# --- Nightly tiering --------------------------------------------------------------------

TIER_A_SHARE = 0.8  # A: the top partners who together send this share of referrals
TIER_B_STEADY = 4  # B without growth: about one referral a quarter
GROWTH_MIN_RECENT = 2  # growth needs at least this many referrals in the last 6 months...
GROWTH_FACTOR = 1.5  # ...and half again as many as in the 6 months before


@dataclass(frozen=True)
class TierVolume:
    pk: int
    last_12m: int
    last_6m: int

    @property
    def prior_6m(self) -> int:
        return self.last_12m - self.last_6m

    @property
    def growing(self) -> bool:
        return self.last_6m >= GROWTH_MIN_RECENT and self.last_6m >= GROWTH_FACTOR * self.prior_6m


def classify_tiers(volumes: Iterable[TierVolume]) -> dict[int, tuple[str, str]]:
    """Tier and the reason in words for each partner, from inbound volume.

    A: rank partners by referrals in the trailing 12 months; the top ones who together
       send 80% of all referrals are A (the partner that crosses 80% is included, and so
       is anyone tied with it, so equal partners never land in different tiers).
    B: outside A, partners with growth potential: growing (at least 2 referrals in the last
       6 months and 1.5 times the 6 months before) or steady (4+ in 12 months).
    C: everyone else who sent at least one referral in 12 months.
    No tier: no referrals in 12 months.
    """
    volumes = list(volumes)
    total = sum(v.last_12m for v in volumes)
    ranked = sorted((v for v in volumes if v.last_12m), key=lambda v: (-v.last_12m, v.pk))
    top: set[int] = set()
    running, last_added = 0, float("inf")
    for volume in ranked:
        if running >= TIER_A_SHARE * total and volume.last_12m < last_added:
            break
        top.add(volume.pk)
        running += volume.last_12m
        last_added = volume.last_12m
    result: dict[int, tuple[str, str]] = {}
    for v in volumes:
        if v.pk in top:
            share = v.last_12m / total
            result[v.pk] = (
                "A",
                f"{v.last_12m} referrals in 12 months ({share:.0%} of all): among the top "
                f"partners who together send {TIER_A_SHARE:.0%} of referrals",
            )
        elif v.last_12m and v.growing:
            result[v.pk] = (
                "B",
                f"Growing: {v.last_6m} referrals in the last 6 months against {v.prior_6m} "
                "in the 6 months before",
            )
        elif v.last_12m >= TIER_B_STEADY:
            result[v.pk] = ("B", f"Steady: {v.last_12m} referrals in 12 months")
        elif v.last_12m:
            result[v.pk] = ("C", f"Occasional: {v.last_12m} referrals in 12 months, not growing")
        else:
            result[v.pk] = ("", "No referrals in 12 months")
    return result


@dataclass(frozen=True)
class RetierResult:
    changed: int
    pinned: int
    referrals: int


def _inbound(start: datetime, end: datetime) -> Q:
    from referrals.models import Referral

    return Q(
        referrals__direction=Referral.Direction.INBOUND,
        referrals__received_at__gte=start,
        referrals__received_at__lt=end,
    )


def _pin_holds(pinned: bool, until: date | None, as_of: date) -> bool:
    return pinned and (until is None or until >= as_of)


def providers_retier(*, as_of: date) -> RetierResult:
    """Classify every partner A/B/C (see classify_tiers) from one aggregate query, and
    write a TierChange (changed_by empty: the nightly tiering) only where the tier moves.
    A manager's pin is respected while it holds; an expired pin is cleared and recorded."""
    end = _end_of_day(as_of)
    volumes = (
        Provider.objects.order_by()
        .annotate(
            last_12m=Count("referrals", filter=_inbound(end - timedelta(days=365), end)),
            last_6m=Count("referrals", filter=_inbound(end - timedelta(days=182), end)),
        )
        .values_list("pk", "tier", "tier_pinned", "tier_pinned_until", "last_12m", "last_6m")
    )
    current: dict[int, tuple[str, bool, date | None]] = {}
    tier_volumes = []
    for pk, tier, pinned, until, last_12m, last_6m in volumes:
        current[pk] = (tier, pinned, until)
        tier_volumes.append(TierVolume(pk, last_12m, last_6m))
    decisions = classify_tiers(tier_volumes)
    candidates = [
        pk
        for pk, (tier, pinned, until) in current.items()
        if (pinned and not _pin_holds(pinned, until, as_of))
        or (not pinned and tier != decisions[pk][0])
    ]
    changed = _apply_tiers(candidates, decisions, as_of=as_of)
    return RetierResult(
        changed=changed,
        pinned=sum(1 for _, p, u in current.values() if _pin_holds(p, u, as_of)),
        referrals=sum(v.last_12m for v in tier_volumes),
    )


@transaction.atomic
def _apply_tiers(
    candidates: list[int], decisions: dict[int, tuple[str, str]], *, as_of: date
) -> int:
    now = timezone.now()
    changes: list[TierChange] = []
    updated: list[Provider] = []
    for batch in _batches(candidates):
        # Re-read under lock: a manager may have pinned a tier since the aggregate ran.
        for provider in Provider.objects.select_for_update().filter(pk__in=batch).order_by("pk"):
            tier, reason = decisions[provider.pk]
            if _pin_holds(provider.tier_pinned, provider.tier_pinned_until, as_of):
                continue
            if provider.tier_pinned:
                expired = provider.tier_pinned_until
                changes.append(
                    TierChange(
                        provider=provider,
                        kind=TierChange.Kind.PIN_CLEARED,
                        from_tier=provider.tier,
                        to_tier=provider.tier,
                        reason=f"The manager's tier was kept until {expired:%b %-d, %Y}",
                        changed_at=now,
                    )
                )
                provider.tier_pinned, provider.tier_pinned_until = False, None
            if provider.tier != tier:
                changes.append(
                    TierChange(
                        provider=provider,
                        kind=TierChange.Kind.NIGHTLY,
                        from_tier=provider.tier,
                        to_tier=tier,
                        reason=reason[:300],
                        changed_at=now,
                    )
                )
                provider.tier = tier
            provider.updated_at = now
            updated.append(provider)
    Provider.objects.bulk_update(
        updated, ["tier", "tier_pinned", "tier_pinned_until", "updated_at"], batch_size=BATCH_SIZE
    )
    TierChange.objects.bulk_create(changes, batch_size=BATCH_SIZE)
    return sum(1 for change in changes if change.kind == TierChange.Kind.NIGHTLY)


# --- Relationship health ----------------------------------------------------------------

DORMANT_DAYS = 180  # no referral for half a year: dormant
CADENCE_MIN_REFERRALS = 3  # fewer referrals than this in 12 months give no usual gap
OVERDUE_FACTOR = 2  # at risk when the silence is twice the usual gap...
OVERDUE_MIN_DAYS = 30  # ...and at least a month (weekly referrers skip a week on holiday)
DROP_MIN_PRIOR = 4  # a volume drop needs a prior half-year worth comparing
DROP_SHARE = 0.5  # at risk when the last 6 months bring half or less of the 6 before
NO_TOUCH_DAYS = 90  # an active partner nobody has visited or called for a quarter


def assess_health(
    *,
    as_of: date,
    last_referral_on: date | None,
    first_12m_on: date | None,
    last_12m: int,
    last_6m: int,
    last_touch_on: date | None,
) -> tuple[str, list[dict[str, Any]]]:
    """A partner's health and the reasons behind it, as codes with their facts (the
    template partners/jinja2/partners/includes/health.html puts them into words). Facts are dates,
    not day counts, so the reasons stay the same from night to night until something
    happens, and the nightly run rewrites only the partners that moved.

    Dormant: no referral for DORMANT_DAYS. At risk: silent for more than twice its own
    usual gap between referrals (the mean gap over the last 12 months, from 3 referrals
    up), or the last 6 months brought half or less of the 6 before, or nobody touched
    the relationship for NO_TOUCH_DAYS. Active otherwise. No referral ever: new.
    """
    Health = Provider.Health
    reasons: list[dict[str, Any]] = []
    if last_referral_on is None:
        health = Health.NEW
        reasons.append({"code": "never_referred"})
    else:
        days = (as_of - last_referral_on).days
        if days >= DORMANT_DAYS:
            health = Health.DORMANT
            reasons.append({"code": "silent", "last": last_referral_on.isoformat()})
        else:
            at_risk = False
            if last_12m >= CADENCE_MIN_REFERRALS and first_12m_on is not None:
                gap = max(1, round((last_referral_on - first_12m_on).days / (last_12m - 1)))
                overdue = days > max(OVERDUE_FACTOR * gap, OVERDUE_MIN_DAYS)
                reasons.append(
                    {
                        "code": "overdue" if overdue else "on_cadence",
                        "last": last_referral_on.isoformat(),
                        "gap": gap,
                    }
                )
                at_risk = overdue
            else:
                reasons.append(
                    {
                        "code": "few_referrals",
                        "last": last_referral_on.isoformat(),
                        "count": last_12m,
                    }
                )
            prior_6m = last_12m - last_6m
            if prior_6m >= DROP_MIN_PRIOR and last_6m <= DROP_SHARE * prior_6m:
                reasons.append({"code": "volume_drop", "recent": last_6m, "prior": prior_6m})
                at_risk = True
            health = Health.AT_RISK if at_risk else Health.ACTIVE
    if last_touch_on is None:
        reasons.append({"code": "never_touched"})
        stale = True
    else:
        touch_days = (as_of - last_touch_on).days
        stale = touch_days > NO_TOUCH_DAYS
        reasons.append(
            {"code": "no_touch" if stale else "touched", "last": last_touch_on.isoformat()}
        )
    if stale and health == Health.ACTIVE:
        health = Health.AT_RISK
    return health, reasons


@dataclass(frozen=True)
class HealthResult:
    assessed: int
    changed: int  # partners whose status moved (reasons alone may move more)


def providers_assess_health(*, as_of: date) -> HealthResult:
    """Assess every partner's health (see assess_health) from two set-wise queries, store
    it on the provider (only where status or reasons moved: health_checked_at is when they
    last did) and write a HealthChange row where the status moves. Re-running it changes
    nothing."""
    from outreach.models import Activity

    end = _end_of_day(as_of)
    start_12m, start_6m = end - timedelta(days=365), end - timedelta(days=182)
    everything = _inbound(datetime(1900, 1, 1, tzinfo=timezone.get_current_timezone()), end)
    rows = (
        Provider.objects.order_by()
        .annotate(
            last_referral_at=Max("referrals__received_at", filter=everything),
            first_12m_at=Min("referrals__received_at", filter=_inbound(start_12m, end)),
            last_12m=Count("referrals", filter=_inbound(start_12m, end)),
            last_6m=Count("referrals", filter=_inbound(start_6m, end)),
        )
        .values_list(
            "pk",
            "health",
            "health_reasons",
            "last_referral_at",
            "first_12m_at",
            "last_12m",
            "last_6m",
        )
    )
    # django-stubs lose the annotation `last` made after values(), so they refuse it in
    # values_list() (their bug: values() then annotate() loses the names).
    touches = dict(
        Activity.providers.through.objects.filter(activity__occurred_at__lt=end)  # type: ignore[misc]
        .order_by()
        .values("provider_id")
        .annotate(last=Max("activity__occurred_at"))
        .values_list("provider_id", "last")
    )

    def local(moment: datetime | None) -> date | None:
        return timezone.localdate(moment) if moment else None

    assessed: dict[int, tuple[str, list[dict[str, Any]]]] = {}
    count = 0
    for pk, health, reasons, last_at, first_at, last_12m, last_6m in rows:
        count += 1
        result = assess_health(
            as_of=as_of,
            last_referral_on=local(last_at),
            first_12m_on=local(first_at),
            last_12m=last_12m,
            last_6m=last_6m,
            last_touch_on=local(touches.get(pk)),
        )
        if result != (health, reasons):
            assessed[pk] = result
    return HealthResult(assessed=count, changed=_apply_health(assessed))


@transaction.atomic
def _apply_health(assessed: dict[int, tuple[str, list[dict[str, Any]]]]) -> int:
    now = timezone.now()
    updated: list[Provider] = []
    changes: list[HealthChange] = []
    for batch in _batches(list(assessed)):
        for pk, current in (
            Provider.objects.select_for_update().filter(pk__in=batch).values_list("pk", "health")
        ):
            health, reasons = assessed[pk]
            updated.append(
                Provider(pk=pk, health=health, health_reasons=reasons, health_checked_at=now)
            )
            if health != current:
                changes.append(
                    HealthChange(
                        provider_id=pk,
                        from_health=current,
                        to_health=health,
                        reasons=reasons,
                        changed_at=now,
                    )
                )
    Provider.objects.bulk_update(
        updated, ["health", "health_reasons", "health_checked_at"], batch_size=BATCH_SIZE
    )
    HealthChange.objects.bulk_create(changes, batch_size=BATCH_SIZE)
    return len(changes)


# --- Merging duplicates -----------------------------------------------------------------

PROVIDER_MERGE_FIELDS = [
    "credential",
    "taxonomy_code",
    "specialty",
    "organization",
    "phone",
    "email",
    "owner",
    "tier",
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
    """The survivor's value wins; where the survivor has none, it takes the duplicate's."""
    mine = getattr(survivor, name)
    return mine if mine not in ("", None) else getattr(duplicate, name)


def _related_counts(instance: models.Model) -> dict[str, int]:
    # One count per related table (a fixed handful), not per row.
    counts = {}
    for rel in instance._meta.related_objects:
        if isinstance(rel, ManyToManyRel):
            assert rel.through is not None, "Django sets it when the models are loaded"
            through = rel.through._base_manager
            n = through.filter(**{rel.field.m2m_reverse_field_name(): instance}).count()
        else:
            n = rel.related_model._base_manager.filter(**{rel.field.name: instance}).count()
        if n:
            counts[str(rel.related_model._meta.verbose_name_plural)] = n
    return counts


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
    return problems


def partner_merge_preview(
    *, survivor: Provider | Organization, duplicate: Provider | Organization
) -> MergePreview:
    """What a merge would keep, field by field, and what would move; see partner_merge."""
    names = PROVIDER_MERGE_FIELDS if isinstance(survivor, Provider) else ORGANIZATION_MERGE_FIELDS
    fields = [
        MergeField(
            label=str(own_field(survivor, name).verbose_name).capitalize(),
            survivor=getattr(survivor, name),
            duplicate=getattr(duplicate, name),
            result=_merged_value(survivor, duplicate, name),
        )
        for name in names
    ]
    return MergePreview(
        fields=fields, moves=_related_counts(duplicate), problems=_check_merge(survivor, duplicate)
    )


def _repoint(survivor: models.Model, duplicate: models.Model) -> dict[str, int]:
    """Every row that points at the duplicate points at the survivor afterwards. Walks the
    model's reverse relations, so tables other apps add later are carried along too."""
    moved = {}
    for rel in duplicate._meta.related_objects:
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
            n = rel.related_model._base_manager.filter(**{rel.field.name: duplicate}).update(
                **{rel.field.name: survivor}
            )
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
    if gone.notes and gone.notes not in keep.notes:
        values["notes"] = "\n\n".join(part for part in (keep.notes, gone.notes) if part)
    if isinstance(keep, Provider):
        from outreach.services.letters import letter_keys_release_for_merge

        letter_keys_release_for_merge(survivor_id=keep.pk, duplicate_id=gone.pk)
    moved = _repoint(keep, gone)
    gone_pk = gone.pk
    gone.delete()  # first, so a unique NPI can move to the survivor
    for name, value in values.items():
        setattr(keep, name, value)
    keep.full_clean()
    keep.save()
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


# --- Spreadsheet import -----------------------------------------------------------------

# Up to this many rows an import is applied in the request (a second or two); bigger
# files go to a worker and the page shows its progress.
SYNC_IMPORT_ROWS = 1000
# A queued import whose message was lost, or whose worker died mid-way (its transaction
# rolled back, so nothing was written), is re-driven by the sweep after this long.
STALE_IMPORT = timedelta(minutes=10)
PROGRESS_EVERY = 1000


def check_partner_import_mapping(mapping: dict[str, str]) -> list[str]:
    from partners.spreadsheets import OFFICE_FIELDS

    targets = list(mapping.values())
    problems = []
    if "npi" not in targets:
        problems.append("Choose the column that holds the NPI: partners are matched by NPI.")
    names = {"first_name", "last_name"} <= set(targets) or "full_name" in targets
    if not names:
        problems.append("Choose the first and last name columns, or one full-name column.")
    if "organization" not in targets and any(target in OFFICE_FIELDS for target in targets):
        problems.append(
            "Choose the practice / office name column too: an office's address, phone and "
            "fax are kept on the office."
        )
    doubled = sorted({target for target in targets if targets.count(target) > 1})
    if doubled:
        problems.append(
            "Each field can come from one column only: " + ", ".join(doubled) + " is chosen twice."
        )
    return problems


def partner_import_start(*, partner_import: PartnerImport) -> bool:
    """Confirm an import: apply it now when small, else queue it for a worker. Returns
    True when it was applied in this call. A second confirmation is refused."""
    claimed = PartnerImport.objects.filter(
        pk=partner_import.pk, status=PartnerImport.Status.UPLOADED
    ).update(
        status=PartnerImport.Status.QUEUED,
        total_rows=len(partner_import.rows),
        processed_rows=0,
        claimed_at=timezone.now(),
    )
    if not claimed:
        raise ValidationError("This import was already confirmed.")
    if len(partner_import.rows) <= SYNC_IMPORT_ROWS:
        partner_import_apply(import_id=partner_import.pk)
        return True
    from partners.tasks import apply_partner_import

    transaction.on_commit(lambda: apply_partner_import.delay(partner_import.pk))
    return False


def partner_import_apply(*, import_id: int) -> PartnerImport | None:
    """Apply a confirmed import: check every row again (the network may have changed since
    the preview), reporting progress, then write all of it in one transaction. Returns
    None when another worker already took it."""
    from partners.spreadsheets import plan_import

    claimed = PartnerImport.objects.filter(pk=import_id, status=PartnerImport.Status.QUEUED).update(
        status=PartnerImport.Status.APPLYING, claimed_at=timezone.now()
    )
    if not claimed:
        return None
    partner_import = PartnerImport.objects.get(pk=import_id)

    def progress(done: int) -> None:
        PartnerImport.objects.filter(pk=import_id).update(processed_rows=done)

    plan = plan_import(partner_import.rows, partner_import.mapping, progress=progress)
    try:
        _write_import(partner_import, plan)
    except (ValidationError, IntegrityError) as error:
        # Our own refusals say what changed; a constraint, only that something did.
        why = " ".join(error.messages).rstrip(".") if isinstance(error, ValidationError) else ""
        PartnerImport.objects.filter(pk=import_id).update(
            status=PartnerImport.Status.FAILED,
            finished_at=timezone.now(),
            error=(
                "Nothing was imported: the partner list changed while importing"
                + (f" ({why})" if why else "")
                + ". Upload the file again to see a fresh preview."
            )[:300],
        )
    partner_import.refresh_from_db()
    return partner_import


@transaction.atomic
def _write_import(partner_import: PartnerImport, plan: Any) -> None:
    from partners.spreadsheets import OFFICE_FIELDS, office_changes

    now = timezone.now()
    known = {office.organization.pk: office for office in plan.offices if office.organization}
    new_offices = [office for office in plan.offices if office.organization is None]
    locked_offices: dict[int, Organization] = {}
    for batch in _batches(sorted(known)):
        for organization in Organization.objects.select_for_update().filter(pk__in=batch):
            locked_offices[organization.pk] = organization
    if len(locked_offices) < len(known):
        raise ValidationError("An office was merged or deleted while importing.")
    # The preview's rule again on the locked rows: a colleague may have edited an office.
    updated_offices: list[Organization] = []
    office_fields: set[str] = set()
    for pk, office in known.items():
        organization = office.organization = locked_offices[pk]
        changes = office_changes(organization, office.values)
        for name, _, new in changes:
            setattr(organization, name, new)
            office_fields.add(name)
        if changes:
            organization.clean_fields()
            organization.updated_at = now
            updated_offices.append(organization)
    if updated_offices:
        Organization.objects.bulk_update(
            updated_offices, [*sorted(office_fields), "updated_at"], batch_size=BATCH_SIZE
        )
    for office in new_offices:
        office.organization = Organization(name=office.name, **office.values)
        office.organization.clean_fields()
    Organization.objects.bulk_create(
        [office.organization for office in new_offices], batch_size=BATCH_SIZE
    )

    def assign(provider: Provider, row: Any) -> list[str]:
        changed = []
        for name, value in row.values.items():
            if not value or name in ("npi", "full_name") or name in OFFICE_FIELDS:
                continue
            if name == "organization":
                provider.organization = row.office.organization
            else:
                setattr(provider, name, value)
            changed.append(name)
        return changed

    created = []
    for row in plan.rows:
        if row.action == "create":
            provider = Provider(npi=row.values["npi"], status=Provider.Status.PROSPECT)
            assign(provider, row)
            provider.clean_fields(exclude=["organization", "owner"])
            created.append(provider)
    Provider.objects.bulk_create(created, batch_size=BATCH_SIZE)

    updates = {row.provider_id: row for row in plan.rows if row.action == "update"}
    changed_fields: set[str] = set()
    locked: list[Provider] = []
    for batch in _batches(list(updates)):
        for provider in Provider.objects.select_for_update().filter(pk__in=batch):
            changed_fields.update(assign(provider, updates[provider.pk]))
            provider.clean_fields(exclude=["organization", "owner"])
            provider.updated_at = now
            locked.append(provider)
    if locked:
        Provider.objects.bulk_update(
            locked, [*sorted(changed_fields), "updated_at"], batch_size=BATCH_SIZE
        )
    counts = plan.counts
    PartnerImport.objects.filter(pk=partner_import.pk).update(
        status=PartnerImport.Status.APPLIED,
        processed_rows=len(plan.rows),
        finished_at=now,
        result={
            **counts,
            "organizations": len(new_offices),
            "offices_updated": len(updated_offices),
        },
    )


def partner_imports_to_redrive() -> list[int]:
    """Imports a worker should have finished by now: queued with the message lost, or
    applying on a worker that died (its transaction rolled back). Reset and return them."""
    cutoff = timezone.now() - STALE_IMPORT
    stale = PartnerImport.objects.filter(
        status__in=[PartnerImport.Status.QUEUED, PartnerImport.Status.APPLYING],
        claimed_at__lt=cutoff,
    )
    ids = list(stale.values_list("pk", flat=True))
    PartnerImport.objects.filter(pk__in=ids, claimed_at__lt=cutoff).update(
        status=PartnerImport.Status.QUEUED, claimed_at=timezone.now()
    )
    return ids
