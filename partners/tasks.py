"""Celery tasks: thin adapters around partners.services."""

from __future__ import annotations

import logging

from celery import shared_task
from django.utils import timezone

from core.transient import DATABASE_UNAVAILABLE
from partners.services.health import providers_assess_health
from partners.services.imports import partner_import_apply, partner_imports_to_redrive
from partners.services.tiers import providers_retier

logger = logging.getLogger(__name__)


@shared_task
def assess_partners() -> None:
    """Nightly (beat): re-tier every partner, then assess relationship health. Both are
    idempotent for a given day, so a re-run or a retry after a crash changes nothing."""
    today = timezone.localdate()
    tiers = providers_retier(as_of=today)
    health = providers_assess_health(as_of=today)
    logger.info(
        "partners assessed: %s tier changes (%s pinned), %s health changes of %s",
        tiers.changed,
        tiers.pinned,
        health.changed,
        health.assessed,
    )


# Safe to run again: the import is claimed by a conditional update and written in one
# transaction; on a lost database it gives its claim back before the retry (no broker
# work here, so only the database's errors).
@shared_task(autoretry_for=DATABASE_UNAVAILABLE, retry_backoff=True, max_retries=5)
def apply_partner_import(import_id: int) -> None:
    partner_import_apply(import_id=import_id)


@shared_task
def sweep_partner_imports() -> None:
    """Run by beat: re-drive big imports whose message or worker was lost."""
    for import_id in partner_imports_to_redrive():
        apply_partner_import.delay(import_id)
