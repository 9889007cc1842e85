"""Applying a partner spreadsheet import: confirm, apply (in the request or a worker), re-drive."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.db.models.functions import Lower
from django.utils import timezone
from simple_history.utils import bulk_create_with_history, bulk_update_with_history

from core.enqueue import enqueue_on_commit
from core.transient import DATABASE_UNAVAILABLE
from partners.models import Organization, PartnerImport, Provider
from partners.services._common import BATCH_SIZE, _batches

logger = logging.getLogger(__name__)

# Up to this many rows an import is applied in the request (a second or two); bigger
# files go to a worker and the page shows its progress.
SYNC_IMPORT_ROWS = 1000
# A queued import whose message was lost, or whose worker died mid-way (its transaction
# rolled back, so nothing was written), is re-driven by the sweep after this long.
STALE_IMPORT = timedelta(minutes=10)
IMPORT_MAX_ATTEMPTS = 3
PROGRESS_EVERY = 1000


def check_partner_import_mapping(mapping: dict[str, str]) -> list[str]:
    from partners.spreadsheets.columns import MANY_COLUMNS, OFFICE_FIELDS

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
    doubled = sorted(
        {target for target in targets if targets.count(target) > 1 and target not in MANY_COLUMNS}
    )
    if doubled:
        problems.append(
            "Each field can come from one column only: " + ", ".join(doubled) + " is chosen twice."
        )
    return problems


def partner_import_start(*, partner_import: PartnerImport, previewed: str) -> bool:
    """Confirm an import whose preview was computed from the mapping `previewed`
    (PartnerImport.mapping_version): apply it now when small, else queue it for a worker.
    Returns True when it was applied in this call. A second confirmation is refused, and
    so is one whose mapping was changed since its preview: the import applies only what
    the one confirming saw."""
    with transaction.atomic():
        # Locked: a mapping saved at the same moment (import_mapping, which saves only an
        # import still waiting) lands before this check or finds it confirmed.
        locked = (
            PartnerImport.objects.select_for_update()
            .only("status", "mapping", "new_owner")
            .get(pk=partner_import.pk)
        )
        if locked.status != PartnerImport.Status.UPLOADED:
            raise ValidationError("This import was already confirmed.", code="confirmed")
        if locked.mapping_version != previewed:
            raise ValidationError(
                "Nothing was imported: the columns or the owner of the new partners were "
                "changed since this preview (by a colleague, or in another tab). Check the "
                "preview as it is now and confirm again.",
                code="stale",
            )
        PartnerImport.objects.filter(pk=partner_import.pk).update(
            status=PartnerImport.Status.QUEUED,
            total_rows=len(partner_import.rows),
            processed_rows=0,
            claimed_at=timezone.now(),
        )
    if len(partner_import.rows) <= SYNC_IMPORT_ROWS:
        partner_import_apply(import_id=partner_import.pk)
        return True
    from partners.tasks import apply_partner_import

    enqueue_on_commit(apply_partner_import, partner_import.pk)
    return False


def partner_import_apply(*, import_id: int) -> PartnerImport | None:
    """Apply a confirmed import: check every row again (the network may have changed since
    the preview), reporting progress, then write all of it in one transaction. Returns
    None when another worker already took it."""
    from partners.spreadsheets.planning import plan_import

    claimed = PartnerImport.objects.filter(pk=import_id, status=PartnerImport.Status.QUEUED).update(
        status=PartnerImport.Status.APPLYING, claimed_at=timezone.now(), attempts=F("attempts") + 1
    )
    if not claimed:
        return None
    partner_import = PartnerImport.objects.get(pk=import_id)

    def progress(done: int) -> None:
        # Also the sign of life: an import checking its rows for longer than STALE_IMPORT
        # is not taken for one whose worker died.
        PartnerImport.objects.filter(pk=import_id).update(
            processed_rows=done, claimed_at=timezone.now()
        )

    planned_since = timezone.now()
    try:
        plan = plan_import(
            partner_import.rows,
            partner_import.mapping,
            numbers=partner_import.row_numbers,
            progress=progress,
        )
        # Every row checked: the page says the partners are being written, not "1,000 of
        # 1,500".
        progress(len(plan.rows))
        _write_import(partner_import, plan, planned_since=planned_since)
    except DATABASE_UNAVAILABLE:
        # Nothing was written (the write is one transaction): give the claim back so the
        # task's retry can take it, instead of the sweep after STALE_IMPORT.
        _release_claim(import_id)
        raise
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


def _release_claim(import_id: int) -> None:
    if not connection.in_atomic_block:
        # A connection the server dropped is replaced rather than failing again.
        connection.close_if_unusable_or_obsolete()
    try:
        PartnerImport.objects.filter(pk=import_id, status=PartnerImport.Status.APPLYING).update(
            status=PartnerImport.Status.QUEUED, claimed_at=timezone.now()
        )
    except DATABASE_UNAVAILABLE:
        # Still unreachable: the sweep re-drives the import once its claim is stale.
        logger.warning("partner import %s: its claim could not be given back", import_id)


@transaction.atomic
def _write_import(partner_import: PartnerImport, plan: Any, *, planned_since: datetime) -> None:
    from partners.spreadsheets.columns import OFFICE_FIELDS, OPT_OUT_TARGETS
    from partners.spreadsheets.planning import office_changes

    now = timezone.now()
    known = {office.organization.pk: office for office in plan.offices if office.organization}
    new_offices = [office for office in plan.offices if office.organization is None]
    # Imports write one at a time (each locks the rows of those applying, in one order, as
    # its first statement), so an import that planned an office as new while another was
    # making it sees it here instead of making it twice.
    list(
        PartnerImport.objects.select_for_update()
        .filter(status=PartnerImport.Status.APPLYING)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    for batch in _batches(sorted({office.name.lower() for office in new_offices})):
        added = (
            Organization.objects.annotate(lowered=Lower("name"))
            .filter(lowered__in=batch, created_at__gte=planned_since)
            .first()
        )
        if added is not None:
            raise ValidationError(f"an office called “{added.name[:60]}” was added meanwhile")
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
    # Each record's history names the import and who uploaded it (partners/history.py).
    by_import = {
        "default_user": partner_import.uploaded_by,
        "default_change_reason": f"Spreadsheet import {partner_import.pk}",
        "default_date": now,
        "batch_size": BATCH_SIZE,
    }
    if updated_offices:
        bulk_update_with_history(
            updated_offices, Organization, [*sorted(office_fields), "updated_at"], **by_import
        )
    for office in new_offices:
        office.organization = Organization(name=office.name, **office.values)
        office.organization.clean_fields()
    bulk_create_with_history(
        [office.organization for office in new_offices], Organization, **by_import
    )

    def assign(provider: Provider, row: Any) -> list[str]:
        changed = []
        for name, value in row.values.items():
            if not value or name in ("npi", "full_name") or name in OFFICE_FIELDS:
                continue
            if name in OPT_OUT_TARGETS:
                # "yes" opts them out; "no" never opts anyone back in (see plan_import).
                if value == "yes" and not getattr(provider, name):
                    setattr(provider, name, True)
                    changed.append(name)
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
            provider = Provider(
                npi=row.values["npi"],
                status=Provider.Status.PROSPECT,
                owner_id=partner_import.new_owner_id,
            )
            assign(provider, row)
            provider.clean_fields(exclude=["organization", "owner"])
            created.append(provider)
    bulk_create_with_history(created, Provider, **by_import)

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
        bulk_update_with_history(
            locked, Provider, [*sorted(changed_fields), "updated_at"], **by_import
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
        rejected_rows=[[row.number, row.cells, " ".join(row.reasons)] for row in plan.of("reject")],
    )


def partner_imports_to_redrive() -> list[int]:
    """Imports a worker should have finished by now: queued with the message lost, or
    applying on a worker that died (its transaction rolled back). Reset and return them."""
    now = timezone.now()
    cutoff = now - STALE_IMPORT
    stale = PartnerImport.objects.filter(
        status__in=[PartnerImport.Status.QUEUED, PartnerImport.Status.APPLYING],
        claimed_at__lt=cutoff,
    )
    stale.filter(attempts__gte=IMPORT_MAX_ATTEMPTS).update(
        status=PartnerImport.Status.FAILED,
        finished_at=now,
        error=(
            f"Nothing was imported: the import stopped {IMPORT_MAX_ATTEMPTS} times without "
            "finishing (its worker was lost each time). Try a smaller file, or ask an "
            "administrator to check the worker's memory and logs."
        ),
    )
    ids = list(stale.values_list("pk", flat=True))
    PartnerImport.objects.filter(pk__in=ids, claimed_at__lt=cutoff).update(
        status=PartnerImport.Status.QUEUED, claimed_at=timezone.now()
    )
    return ids
