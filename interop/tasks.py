"""Celery tasks: thin adapters around interop.services."""

from __future__ import annotations

import logging

from celery import shared_task

from interop.services import api_tokens_delete_expired

logger = logging.getLogger(__name__)


@shared_task
def delete_expired_api_tokens() -> None:
    """Run by beat: expired API tokens leave the database (and the admin's list)."""
    deleted = api_tokens_delete_expired()
    logger.info("expired API tokens deleted: %s", deleted)
