"""Celery tasks: thin adapters around intake.services."""

from __future__ import annotations

import logging

from celery import shared_task

from intake.services import staged_documents_delete_stale

logger = logging.getLogger(__name__)


@shared_task
def delete_stale_staged_documents() -> None:
    """Run by beat: documents kept for a form nobody sent leave the disk after a day."""
    deleted = staged_documents_delete_stale()
    logger.info("stale staged documents deleted: %s", deleted)
