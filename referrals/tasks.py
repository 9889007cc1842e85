"""Celery tasks for referrals: thin adapters over the services."""

from __future__ import annotations

import logging

from celery import shared_task

from referrals.services.consult_reports import consult_report_reminders_create

logger = logging.getLogger(__name__)


@shared_task
def remind_missing_consult_reports() -> None:
    """Nightly, by beat: the due dates are in the database (seen date + the setting), so a
    missed night is caught up by the next run."""
    created = consult_report_reminders_create()
    if created:
        logger.info("consult reports: %s reminder tasks created", created)
