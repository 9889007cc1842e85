"""Completing a task, and the partner's tasks that follow its owner."""

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


# The partner's tasks the nightly jobs make for its owner, one open at a time.
OWNERS_TASKS = [Task.Kind.REKINDLE, Task.Kind.ANNUAL_MEETING]
# And the personal thank-you call a referral gives the partner's owner (closing the loop).
HANDED_OVER = [*OWNERS_TASKS, Task.Kind.THANK_YOU]


def owner_tasks_hand_over(*, provider_id: int, owner_id: int) -> int:
    """A partner has a new owner: its open rekindle, annual-meeting and thank-you tasks go
    to them. Left with the previous owner, they sat on the list and digest of someone who
    may no longer act on the partner, and the nightly jobs, seeing an open one, gave the
    new owner none. Returns how many moved."""
    return (
        Task.objects.open()
        .filter(provider_id=provider_id, kind__in=HANDED_OVER)
        .exclude(assignee_id=owner_id)
        .update(assignee_id=owner_id)
    )
