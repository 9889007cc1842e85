"""Completing a task."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from outreach.models import Task


@transaction.atomic
def task_complete(*, task: Task) -> Task:
    locked = Task.objects.select_for_update().get(pk=task.pk)
    if locked.status == Task.Status.OPEN:
        locked.status = Task.Status.DONE
        locked.completed_at = timezone.now()
        locked.save(update_fields=["status", "completed_at"])
    return locked
