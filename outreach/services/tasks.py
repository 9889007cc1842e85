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


def task_keys_release_for_merge(*, survivor_id: int, duplicate_id: int) -> None:
    """Two records of one partner are being merged: where each has an open rekindle or
    annual-meeting task, the survivor's stays and the duplicate's is cancelled, since a
    partner has one open task of these kinds at a time (it moves over as history)."""
    one_open = [Task.Kind.REKINDLE, Task.Kind.ANNUAL_MEETING]
    kept = Task.objects.open().filter(provider_id=survivor_id, kind__in=one_open)
    Task.objects.open().filter(provider_id=duplicate_id, kind__in=kept.values("kind")).update(
        status=Task.Status.CANCELLED
    )
