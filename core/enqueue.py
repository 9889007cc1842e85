"""Handing work to Celery after the transaction that made it commits."""

from __future__ import annotations

import logging
from functools import partial
from typing import Any

from celery import Task
from django.db import transaction

logger = logging.getLogger(__name__)


def enqueue_on_commit(task: Task, *args: Any) -> None:
    """Send `task` with `args` (primary keys, never patient data) once the current
    transaction commits; nothing is sent if it rolls back."""
    transaction.on_commit(partial(_publish, task, args))


def _publish(task: Task, args: tuple[Any, ...]) -> None:
    try:
        # No publish retries: with the broker down the request would stall for seconds.
        task.apply_async(args=args, retry=False)
    except Exception as error:
        # The transports raise different classes (redis, kombu, OSError). The work is
        # already committed and the beat sweep re-drives it from the database, so a lost
        # enqueue must not turn a saved change into an error page.
        logger.warning(
            "could not enqueue %s (%s); the sweep will pick it up",
            task.name,
            type(error).__name__,
        )
