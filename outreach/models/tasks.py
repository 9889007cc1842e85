"""Tasks: the follow-ups, thank-yous and rekindles on a user's list."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone

from outreach.models.activities import Activity

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from django.contrib.auth.models import User


# A reminder to chase a consult report whose referral's coordinator and creator have both
# left (consult_report_reminders_create): every coordinator's to pick up, so each sees it.
UNHELD_REMINDER = Q(assignee__isnull=True, kind="consult_report")


class TaskQuerySet(models.QuerySet["Task"]):
    def open(self) -> TaskQuerySet:
        return self.filter(status=Task.Status.OPEN)

    def overdue(self) -> TaskQuerySet:
        return self.open().filter(due_on__lt=timezone.localdate())

    def for_user(self, user: User, *, write: bool = False) -> TaskQuerySet:
        """A task belongs to its assignee; managers and administrators see every task.
        Those who work referrals also share the consult report reminders nobody holds."""
        perm = "outreach.change_task" if write else "outreach.view_task"
        if not user.has_perm(perm):
            return self.none()
        if user.has_perm("outreach.view_all_tasks"):
            return self
        if user.has_perm("referrals.change_referral"):
            return self.filter(Q(assignee=user) | UNHELD_REMINDER)
        return self.filter(assignee=user)

    @staticmethod
    def openable_by(user: User) -> Callable[[Task], bool]:
        """`for_user`'s rule for tasks already read: which of them this user may open (a
        page listing a referral's or a partner's tasks links only to those)."""
        if not user.has_perm("outreach.view_task"):
            return lambda task: False
        if user.has_perm("outreach.view_all_tasks"):
            return lambda task: True
        if user.has_perm("referrals.change_referral"):
            return lambda task: (
                task.assignee_id == user.pk
                or (task.assignee_id is None and task.kind == Task.Kind.CONSULT_REPORT)
            )
        return lambda task: task.assignee_id == user.pk


class Task(models.Model):
    class Kind(models.TextChoices):
        THANK_YOU = "thank_you", "Thank-you"
        OUTCOME_UPDATE = "outcome_update", "Outcome update"
        FOLLOW_UP = "follow_up", "Follow-up"
        CONSULT_REPORT = "consult_report", "Consult report"
        REKINDLE = "rekindle", "Rekindle"
        ANNUAL_MEETING = "annual_meeting", "Annual meeting"

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        DONE = "done", "Done"
        CANCELLED = "cancelled", "Cancelled"

    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.FOLLOW_UP)
    title = models.CharField(max_length=200)
    due_on = models.DateField()
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="tasks",
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    referral = models.ForeignKey(
        "referrals.Referral", on_delete=models.CASCADE, null=True, blank=True, related_name="tasks"
    )
    provider = models.ForeignKey(
        "partners.Provider", on_delete=models.CASCADE, null=True, blank=True, related_name="tasks"
    )
    activity = models.ForeignKey(
        Activity, on_delete=models.SET_NULL, null=True, blank=True, related_name="tasks"
    )
    completed_at = models.DateTimeField(null=True, blank=True)
    # When the assignee was emailed that a follow-up is due: the claim that makes the
    # reminder go once per task (see outreach.reminders).
    reminded_at = models.DateTimeField(null=True, blank=True)
    # Why the task exists, when a machine made it (the rekindle queue's reasons).
    detail = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = TaskQuerySet.as_manager()

    # Set by the pages that list open tasks (outreach.rekindle.can_write_note): whether the
    # row offers the rekindle note. Not a column.
    can_write_note: bool

    class Meta:
        ordering = ["due_on", "pk"]
        permissions = [("view_all_tasks", "Can see every user's tasks")]
        constraints = [
            # The loop creates at most one thank-you and one outcome task per referral,
            # however many times a worker or the sweep runs.
            models.UniqueConstraint(
                fields=["referral", "kind"],
                condition=Q(referral__isnull=False) & ~Q(kind="follow_up"),
                name="task_one_loop_task_per_referral",
            ),
            # The nightly rekindle queue gives a partner one open rekindle task at a time.
            models.UniqueConstraint(
                fields=["provider"],
                condition=Q(kind="rekindle", status="open"),
                name="task_one_open_rekindle_per_provider",
            ),
            # The annual-meeting reminder gives a key partner one open task at a time,
            # however often beat runs it.
            models.UniqueConstraint(
                fields=["provider"],
                condition=Q(kind="annual_meeting", status="open"),
                name="task_one_open_annual_meeting_per_provider",
            ),
        ]
        indexes = [
            models.Index(fields=["assignee", "status", "due_on"], name="task_queue_idx"),
        ]

    def __str__(self) -> str:
        return self.title

    def get_absolute_url(self) -> str:
        return reverse("outreach:task_detail", args=[self.pk])

    @property
    def summary_outside(self) -> str:
        """The task as it may be named outside the app (an email, a calendar): a task
        about a referral is titled with the patient's initials, so it goes by its kind and
        partner instead, never anything of the patient. The provider is read: select it."""
        if self.referral_id is None:
            return self.title
        partner = f" · {self.provider.display_name}" if self.provider else ""
        return f"{self.get_kind_display()}{partner}"

    @property
    def is_overdue(self) -> bool:
        return self.status == self.Status.OPEN and self.due_on < timezone.localdate()


def patient_referral_ids(tasks: Iterable[Task]) -> list[int]:
    """The referrals whose patient these tasks name: a task about a referral is titled with
    the patient's initials ("Thank Dr. Wiebe for referring R.O."), so a page showing its
    title shows them (see Task.summary_outside)."""
    return sorted({task.referral_id for task in tasks if task.referral_id is not None})
