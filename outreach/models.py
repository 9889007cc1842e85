"""Working the network: activities with partners, tasks, and the letters we send back."""

from __future__ import annotations

import hashlib
import re
from datetime import date
from decimal import Decimal
from typing import TYPE_CHECKING

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone

if TYPE_CHECKING:
    from collections.abc import Callable

    from django.contrib.auth.models import User


class Activity(models.Model):
    """A touch with a referring office: a visit, a call, a lunch, with who was there and
    the next step the following visit starts from."""

    class Kind(models.TextChoices):
        VISIT = "visit", "Visit"
        DROP_IN = "drop_in", "Drop-in"
        CALL = "call", "Call"
        LUNCH = "lunch", "Lunch"
        MEETING = "meeting", "Meeting"
        EVENT = "event", "Event"
        EMAIL = "email", "Email"
        LETTER = "letter", "Letter"
        GIFT = "gift", "Gift"

    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.VISIT)
    occurred_at = models.DateTimeField(default=timezone.now)
    logged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="activities"
    )
    organization = models.ForeignKey(
        "partners.Organization",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="activities",
    )
    providers = models.ManyToManyField(
        "partners.Provider", blank=True, related_name="activities", verbose_name="providers met"
    )
    staff = models.ManyToManyField(
        "partners.StaffMember", blank=True, related_name="activities", verbose_name="staff met"
    )
    notes = models.TextField(blank=True)
    next_step = models.CharField(max_length=300, blank=True)
    next_step_due = models.DateField("next step due", null=True, blank=True)
    # What a lunch, gift or event cost the practice; shared among the attendees (see
    # outreach.services.activity_shares for the rule).
    cost = models.DecimalField(
        "cost ($)",
        max_digits=9,
        decimal_places=2,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal("0"))],
        help_text="Meals and gifts only: the total, split evenly across everyone who attended.",
    )
    limit_override_reason = models.CharField(
        "reason for exceeding the yearly limit",
        max_length=300,
        blank=True,
        help_text="Managers only, when a physician's share goes over the yearly limit.",
    )
    # Set on the activities that record who came to an event: one per attending office,
    # so each office's "where we left off" and last touch count the event.
    event = models.ForeignKey(
        "Event", on_delete=models.SET_NULL, null=True, blank=True, related_name="activities"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-occurred_at", "-pk"]
        verbose_name_plural = "activities"
        constraints = [
            models.CheckConstraint(
                condition=Q(cost__isnull=True) | Q(cost__gte=0), name="activity_cost_not_negative"
            ),
            # Recording an event's attendance again updates each office's activity
            # instead of adding another (attendees without an office share one).
            models.UniqueConstraint(
                fields=["event", "organization"],
                condition=Q(event__isnull=False, organization__isnull=False),
                name="activity_one_per_event_and_office",
            ),
            models.UniqueConstraint(
                fields=["event"],
                condition=Q(event__isnull=False, organization__isnull=True),
                name="activity_one_officeless_per_event",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} on {self.occurred_at:%Y-%m-%d}"


class TaskQuerySet(models.QuerySet["Task"]):
    def open(self) -> TaskQuerySet:
        return self.filter(status=Task.Status.OPEN)

    def overdue(self) -> TaskQuerySet:
        return self.open().filter(due_on__lt=timezone.localdate())

    def for_user(self, user: User, *, write: bool = False) -> TaskQuerySet:
        """A task belongs to its assignee; managers and administrators see every task."""
        perm = "outreach.change_task" if write else "outreach.view_task"
        if not user.has_perm(perm):
            return self.none()
        if user.has_perm("outreach.view_all_tasks"):
            return self
        return self.filter(assignee=user)

    @staticmethod
    def openable_by(user: User) -> Callable[[Task], bool]:
        """`for_user`'s rule for tasks already read: which of them this user may open (a
        page listing a referral's or a partner's tasks links only to those)."""
        if not user.has_perm("outreach.view_task"):
            return lambda task: False
        if user.has_perm("outreach.view_all_tasks"):
            return lambda task: True
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
    def is_overdue(self) -> bool:
        return self.status == self.Status.OPEN and self.due_on < timezone.localdate()


MERGE_FIELD = re.compile(r"\{\{\s*(\w+)\s*\}\}")

# The merge fields a letter template may use. Patient data is limited to initials.
MERGE_FIELDS: dict[str, str] = {
    "appointment_date": "The date and time of the patient's appointment with us",
    "provider_name": "The referring provider's name with credential",
    "provider_last_name": "The referring provider's last name",
    "organization_name": "The referring office",
    "patient_initials": "The patient's initials (never the full name)",
    "referral_date": "The date we received the referral",
    "seen_date": "The date we saw the patient",
    "decline_reason": "Why we could not accept the referral (declined notices)",
    "hold_reason": "What we need before the referral can go on (on-hold notices)",
    "cancel_reason": "Why the referral was cancelled (cancelled notices)",
    "practice_name": "Our practice's name",
    "sender_name": "The relationship owner's name",
    "today": "Today's date",
    "event_name": "The event's name (event reminders)",
    "event_date": "The event's date and time (event reminders)",
    "event_place": "Where the event is (event reminders)",
    "period": "The week or month a consult report summary covers (report summaries)",
    "report_count": "How many consult reports the summary lists (report summaries)",
    "report_list": "One line per referral in the summary: patient initials and dates "
    "(report summaries)",
}

# Merge fields that carry something of a patient, however little: never in a newsletter.
PATIENT_MERGE_FIELDS = frozenset(
    {
        "patient_initials",
        "appointment_date",
        "referral_date",
        "seen_date",
        "decline_reason",
        "hold_reason",
        "cancel_reason",
        "report_list",
    }
)


# What each kind of letter is written with: a merge field another kind fills would reach
# the partner as raw braces.
PARTNER_MERGE_FIELDS = frozenset(
    {
        "provider_name",
        "provider_last_name",
        "organization_name",
        "practice_name",
        "sender_name",
        "today",
    }
)
REFERRAL_MERGE_FIELDS = frozenset(
    {"patient_initials", "referral_date", "seen_date", "appointment_date"}
)
# Each reason belongs to its own notice; elsewhere it is empty.
REASON_MERGE_FIELD = {
    "declined": "decline_reason",
    "on_hold": "hold_reason",
    "cancelled": "cancel_reason",
}
EVENT_MERGE_FIELDS = frozenset({"event_name", "event_date", "event_place"})
SUMMARY_MERGE_FIELDS = frozenset({"period", "report_count", "report_list"})


# The kinds of letter about the relationship, not a patient: they carry no patient data,
# and a patient merge field typed into one is refused (see merge_text_error).
PATIENT_FREE_KINDS = frozenset({"newsletter", "rekindle"})


def merge_fields_for(kind: str) -> dict[str, str]:
    """The merge fields a letter of `kind` fills in, with what each says."""
    if kind in PATIENT_FREE_KINDS:
        names = PARTNER_MERGE_FIELDS
    elif kind == "event_reminder":
        names = PARTNER_MERGE_FIELDS | EVENT_MERGE_FIELDS
    elif kind == "report_summary":
        names = PARTNER_MERGE_FIELDS | SUMMARY_MERGE_FIELDS
    else:
        names = PARTNER_MERGE_FIELDS | REFERRAL_MERGE_FIELDS
        if kind in REASON_MERGE_FIELD:
            names = names | {REASON_MERGE_FIELD[kind]}
    return {name: help for name, help in MERGE_FIELDS.items() if name in names}


# Anything that looks like template syntax but is not a plain merge field.
STRAY_TEMPLATE_SYNTAX = re.compile(r"\{\{|\}\}|\{%|%\}")


def render_merge_fields(text: str, values: dict[str, str]) -> str:
    return MERGE_FIELD.sub(lambda match: values.get(match.group(1), match.group(0)), text)


def unknown_merge_fields(text: str) -> list[str]:
    return sorted({name for name in MERGE_FIELD.findall(text) if name not in MERGE_FIELDS})


def merge_text_error(kind: str, label: str, text: str) -> str | None:
    """What is wrong with `text` as the subject or body of a letter of `kind` (called
    `label` in the message), or None: a merge field that does not exist, patient data in a
    letter about the relationship, a merge field this kind does not fill (the partner
    would see the braces), or template syntax other than plain merge fields."""
    available = merge_fields_for(kind)
    used = set(MERGE_FIELD.findall(text))
    unknown = unknown_merge_fields(text)
    if unknown:
        return f"Unknown merge field(s): {', '.join(unknown)}. Available: {', '.join(available)}."
    if kind in PATIENT_FREE_KINDS and (patient := sorted(used & PATIENT_MERGE_FIELDS)):
        return f"A {label} carries no patient data: remove {', '.join(patient)}."
    not_here = sorted(used - set(available))
    if not_here:
        return (
            f"A {label} letter has no {', '.join(not_here)} to fill in (the partner would "
            f"see the braces). Available: {', '.join(available)}."
        )
    if STRAY_TEMPLATE_SYNTAX.search(MERGE_FIELD.sub("", text)):
        return (
            "Only plain merge fields such as {{ provider_name }} are filled in; "
            "remove the other braces (no filters, no {% %} tags)."
        )
    return None


class LetterTemplate(models.Model):
    """An editable letter with merge fields, one per kind of message."""

    class Kind(models.TextChoices):
        ACKNOWLEDGMENT = "acknowledgment", "Referral received"
        SCHEDULED = "scheduled", "Your patient is scheduled"
        THANK_YOU = "thank_you", "Thank-you"
        OUTCOME = "outcome", "Consult report cover letter"
        REKINDLE = "rekindle", "Rekindle note"
        NEWSLETTER = "newsletter", "Newsletter"
        EVENT_REMINDER = "event_reminder", "Event reminder"
        REPORT_SUMMARY = "report_summary", "Consult report summary"
        DECLINED = "declined", "Referral declined"
        NO_SHOW = "no_show", "Missed appointment"
        CANCELLED = "cancelled", "Referral cancelled"
        ON_HOLD = "on_hold", "More information needed"

    kind = models.CharField(max_length=20, choices=Kind.choices, unique=True)
    subject = models.CharField(max_length=200)
    body = models.TextField()
    delay_business_days = models.PositiveSmallIntegerField(
        default=2,
        help_text="Business days after the triggering event before the letter is due.",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["kind"]

    def __str__(self) -> str:
        return self.get_kind_display()

    # When the letters of the kinds not sent from a referral's step go out; those kinds
    # ignore delay_business_days.
    TIMING = {
        "newsletter": "sent when a newsletter issue goes out",
        "event_reminder": "sent as many days before an event as the event says",
        "report_summary": "sent weekly or monthly, as each partner chose",
        "rekindle": "where a liaison's note from a rekindle task starts; sent when they send it",
    }

    @property
    def uses_delay(self) -> bool:
        return self.kind not in self.TIMING

    @property
    def timing(self) -> str:
        if not self.uses_delay:
            return self.TIMING[self.kind]
        days = self.delay_business_days
        if not days:
            return "sent as soon as the referral reaches that step"
        return f"due {days} business day{'s' if days != 1 else ''} after the referral reaches that step"


class LetterQuerySet(models.QuerySet["Letter"]):
    def for_user(self, user: User, *, write: bool = False) -> LetterQuerySet:
        """Management and the print queue see every letter; anyone else the letters to
        their own partners and about referrals assigned to them."""
        if not user.has_perm("outreach.change_letter" if write else "outreach.view_letter"):
            return self.none()
        if user.has_perm("outreach.view_all_tasks") or user.has_perm("outreach.change_letter"):
            return self
        return self.filter(Q(provider__owner=user) | Q(referral__assigned_to=user))

    def openable_by(self, user: User) -> Callable[[Letter], bool]:
        """Which of these letters this user may open (`for_user`), for a page that lists
        them: no query for those who see every letter, one for anyone else."""
        if not user.has_perm("outreach.view_letter"):
            return lambda letter: False
        if user.has_perm("outreach.view_all_tasks") or user.has_perm("outreach.change_letter"):
            return lambda letter: True
        openable = set(self.for_user(user).values_list("pk", flat=True))
        return lambda letter: letter.pk in openable

    def due(self) -> LetterQuerySet:
        return self.filter(status=Letter.Status.PENDING, due_on__lte=timezone.localdate())

    def print_queue(self) -> LetterQuerySet:
        return (
            self.filter(status=Letter.Status.PRINT_QUEUE)
            .select_related("provider", "provider__organization")
            .order_by("created_at", "pk")
        )


class Letter(models.Model):
    """A rendered message to a partner and its delivery state. The state lives here so a
    lost queue message or a killed worker never loses or repeats a letter."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SENDING = "sending", "Sending"
        SENT = "sent", "Sent"
        PRINT_QUEUE = "print_queue", "In the print/fax queue"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"
        # Kept as a row (not simply never created) so the partner timeline shows it and
        # the sweep does not keep preparing a message the partner does not want.
        SKIPPED = "skipped", "Not sent (partner preference)"
        # A report cover letter to a partner on a weekly or monthly cadence: not sent by
        # itself but listed in that period's summary letter (`summary`).
        IN_SUMMARY = "in_summary", "In the report summary"

    class Channel(models.TextChoices):
        EMAIL = "email", "Email"
        PRINT = "print", "Print / fax"
        FAX = "fax", "Fax"
        MAIL = "mail", "Mail"
        CALL = "call", "Call task instead"
        # Direct secure messaging (a HISP's SMTP relay) to the address in the registry.
        DIRECT = "direct", "Direct secure message"

    kind = models.CharField(max_length=20, choices=LetterTemplate.Kind.choices)
    referral = models.ForeignKey(
        "referrals.Referral",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="letters",
    )
    provider = models.ForeignKey(
        "partners.Provider", on_delete=models.CASCADE, related_name="letters"
    )
    # The invitation an event reminder is for.
    invitation = models.ForeignKey(
        "Invitation", on_delete=models.CASCADE, null=True, blank=True, related_name="letters"
    )
    # The newsletter issue a newsletter letter belongs to.
    newsletter = models.ForeignKey(
        "NewsletterIssue",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="letters",
    )
    # The rekindle task a liaison's note answers (at most one note per task).
    task = models.ForeignKey(
        "Task", on_delete=models.SET_NULL, null=True, blank=True, related_name="letters"
    )
    # Part of the idempotency key (referral, kind, sequence): the scheduled notice of a
    # referral's n-th appointment (a reschedule) is its own letter, sent once; so is an
    # event reminder for the n-th date of its event (invitation, kind, sequence); every
    # other kind stays at 1.
    sequence = models.PositiveSmallIntegerField(default=1)
    # A report summary's period ("2026-W10" or "2026-03"): with the provider, its
    # idempotency key. On a cover letter held for a summary, the period it belongs to.
    period = models.CharField(max_length=10, blank=True)
    summary = models.ForeignKey(
        "self",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="summarised",
        help_text="The report summary letter this cover letter was sent in.",
    )
    subject = models.CharField(max_length=200)
    body = models.TextField()
    due_on = models.DateField()
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.PENDING)
    channel = models.CharField(max_length=10, choices=Channel.choices, blank=True)
    recipient = models.CharField(max_length=254, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    claimed_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=300, blank=True)
    # The idempotency key of an email: its Message-ID, fixed when the letter is created, so
    # a re-driven delivery after a crash carries the same ID and the receiver can drop it.
    message_id = models.CharField(max_length=200, blank=True)
    printed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        help_text="Who printed and mailed, or faxed, it from the print queue.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    objects = LetterQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            # At most one letter of each kind per referral and appointment (idempotent
            # automation; a reschedule is the next sequence, not a second letter of one).
            models.UniqueConstraint(
                fields=["referral", "kind", "sequence"],
                condition=Q(referral__isnull=False),
                name="letter_one_per_referral_kind_sequence",
            ),
            # One report summary per partner and period, however often beat runs.
            models.UniqueConstraint(
                fields=["provider", "period"],
                condition=Q(kind="report_summary") & ~Q(period=""),
                name="letter_one_summary_per_provider_period",
            ),
            # One letter per partner and newsletter issue, however often the send re-runs.
            models.UniqueConstraint(
                fields=["newsletter", "provider"],
                condition=Q(newsletter__isnull=False),
                name="letter_one_per_newsletter_provider",
            ),
            # At most one reminder per invitation and date of the event (its schedule
            # version), however often the reminder run fires.
            models.UniqueConstraint(
                fields=["invitation", "kind", "sequence"],
                condition=Q(invitation__isnull=False),
                name="letter_one_per_invitation_kind_sequence",
            ),
            # One note per rekindle task, however often the send is pressed or re-posted.
            models.UniqueConstraint(
                fields=["task"], condition=Q(task__isnull=False), name="letter_one_per_task"
            ),
            # One letter per Message-ID: the key that makes email delivery idempotent.
            models.UniqueConstraint(
                fields=["message_id"],
                condition=~Q(message_id=""),
                name="letter_unique_message_id",
            ),
        ]
        indexes = [
            # The sweep's hot filter: pending letters by due date.
            models.Index(
                fields=["due_on"],
                condition=Q(status="pending"),
                name="letter_pending_due_idx",
            ),
            # The summary run's filter: cover letters waiting for their period's summary.
            models.Index(
                fields=["period", "provider"],
                condition=Q(status="in_summary", summary__isnull=True),
                name="letter_awaiting_summary_idx",
            ),
            # The print queue page lists letters waiting to be printed or faxed.
            models.Index(
                fields=["created_at"],
                condition=Q(status="print_queue"),
                name="letter_print_queue_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} letter to {self.provider}"

    def get_absolute_url(self) -> str:
        return reverse("outreach:letter_detail", args=[self.pk])

    @property
    def is_due(self) -> bool:
        return self.due_on <= timezone.localdate()


# --- Gifts and meals ledger -----------------------------------------------------------------


class ComplianceLimit(models.Model):
    """The practice's non-monetary compensation limit per physician for one calendar year
    (Stark law, 42 CFR 411.357(k)). CMS adjusts it every year, so it is data a manager
    enters, not a constant in code."""

    year = models.PositiveSmallIntegerField(unique=True)
    amount = models.DecimalField(
        "limit ($)", max_digits=9, decimal_places=2, validators=[MinValueValidator(Decimal("1"))]
    )
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-year"]
        permissions = [
            ("view_compliance_report", "Can see every physician's gifts and meals totals"),
            ("override_compliance_limit", "Can log a gift or meal over the yearly limit"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="compliance_limit_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.year}: ${self.amount}"

    @classmethod
    def for_year(cls, year: int) -> Decimal | None:
        return cls.objects.filter(year=year).values_list("amount", flat=True).first()


class ActivityShare(models.Model):
    """One physician's share of the cost of a meal, gift or event: the ledger rows that
    accrue per calendar year against the limit. Written only by `activity_log`."""

    activity = models.ForeignKey(Activity, on_delete=models.CASCADE, related_name="shares")
    provider = models.ForeignKey(
        "partners.Provider", on_delete=models.CASCADE, related_name="gift_shares"
    )
    # Denormalised from activity.occurred_at so the yearly total is one indexed filter.
    year = models.PositiveSmallIntegerField()
    amount = models.DecimalField(max_digits=9, decimal_places=2)

    class Meta:
        ordering = ["-year", "provider"]
        constraints = [
            models.UniqueConstraint(
                fields=["activity", "provider"], name="share_once_per_activity"
            ),
            models.CheckConstraint(condition=Q(amount__gte=0), name="share_not_negative"),
        ]
        indexes = [
            # The yearly total per physician (form warning and the manager report).
            models.Index(fields=["year", "provider"], name="share_year_provider_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.provider_id} {self.year}: ${self.amount}"


# --- The liaison's day ----------------------------------------------------------------------


class PlannedVisitQuerySet(models.QuerySet["PlannedVisit"]):
    def for_user(self, user: User, *, write: bool = False) -> PlannedVisitQuerySet:
        """A plan belongs to its liaison; managers may read every liaison's plan."""
        if not user.has_perm(
            "outreach.change_plannedvisit" if write else "outreach.view_plannedvisit"
        ):
            return self.none()
        if not write and user.has_perm("outreach.view_all_tasks"):
            return self
        return self.filter(liaison=user)

    def on(self, day: date) -> PlannedVisitQuerySet:
        return self.filter(planned_on=day)


class PlannedVisit(models.Model):
    """One office on a liaison's plan for a day, in route order, and what came of it."""

    class Status(models.TextChoices):
        PLANNED = "planned", "Planned"
        DONE = "done", "Visited"
        SKIPPED = "skipped", "Skipped"

    liaison = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="planned_visits"
    )
    organization = models.ForeignKey(
        "partners.Organization", on_delete=models.CASCADE, related_name="planned_visits"
    )
    planned_on = models.DateField()
    position = models.PositiveSmallIntegerField(default=0)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PLANNED)
    activity = models.OneToOneField(
        Activity, on_delete=models.SET_NULL, null=True, blank=True, related_name="planned_visit"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    objects = PlannedVisitQuerySet.as_manager()

    class Meta:
        ordering = ["planned_on", "position", "pk"]
        constraints = [
            # An office appears once on a day's plan, however often "add" is tapped.
            models.UniqueConstraint(
                fields=["liaison", "planned_on", "organization"], name="plannedvisit_once_a_day"
            ),
        ]
        indexes = [
            models.Index(fields=["liaison", "planned_on"], name="plannedvisit_day_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.organization_id} on {self.planned_on}"


class PlannedVisitEvent(models.Model):
    """One change of a planned visit's status, with who, when and why: the history of
    the day plan (a skipped visit keeps its reason here, not in a text field)."""

    visit = models.ForeignKey(PlannedVisit, on_delete=models.CASCADE, related_name="events")
    from_status = models.CharField(max_length=10, choices=PlannedVisit.Status.choices)
    to_status = models.CharField(max_length=10, choices=PlannedVisit.Status.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    at = models.DateTimeField(default=timezone.now)
    reason = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["at", "pk"]
        constraints = [
            # A skip must say why; the reason is what the next plan starts from.
            models.CheckConstraint(
                condition=~Q(to_status="skipped") | ~Q(reason=""),
                name="plannedvisitevent_skip_has_reason",
            ),
        ]

    def __str__(self) -> str:
        return f"Visit {self.visit_id}: {self.from_status} -> {self.to_status}"


# --- Calendar feed --------------------------------------------------------------------------


class CalendarFeed(models.Model):
    """A liaison's private iCal URL. Only a hash of the token is stored: the URL is shown
    once when made, and a leaked database does not open anyone's calendar."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="calendar_feed"
    )
    token_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    last_read_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"Calendar feed of user {self.user_id}"

    @staticmethod
    def hash_token(token: str) -> str:
        return hashlib.sha256(token.encode()).hexdigest()


# --- Events ---------------------------------------------------------------------------------


class Event(models.Model):
    """A practice event partners are invited to: the annual referral-partner meeting, a
    dinner, a lunch-and-learn."""

    class Kind(models.TextChoices):
        ANNUAL_MEETING = "annual_meeting", "Annual meeting"
        DINNER = "dinner", "Dinner"
        LUNCH_AND_LEARN = "lunch_and_learn", "Lunch-and-learn"
        CME = "cme", "CME"
        OPEN_HOUSE = "open_house", "Open house"
        OTHER = "other", "Other"

    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.ANNUAL_MEETING)
    starts_at = models.DateTimeField()
    place = models.CharField(max_length=300, blank=True)
    organizer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="events"
    )
    notes = models.TextField(blank=True)
    # What the event cost the practice (catering, venue); shared per head among everyone
    # who came, and each physician's share goes in the gifts and meals ledger.
    cost = models.DecimalField(
        "cost ($)",
        max_digits=9,
        decimal_places=2,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal("0"))],
        help_text="Catering, venue and the like: split evenly across everyone who came.",
    )
    remind_days_before = models.PositiveSmallIntegerField(
        "reminder days before",
        default=7,
        validators=[MaxValueValidator(90)],
        help_text="Invitees who have not declined get a reminder letter this many days "
        "before, by their preferred channel. 0 sends none.",
    )
    # Goes up each time the event moves (outreach.meetings.event_save): each version of
    # the date gets its own reminder, numbered by it (Letter.sequence).
    schedule_version = models.PositiveSmallIntegerField(default=1, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-starts_at", "-pk"]
        constraints = [
            models.CheckConstraint(
                condition=Q(cost__isnull=True) | Q(cost__gte=0), name="event_cost_not_negative"
            ),
        ]
        indexes = [
            # The reminder run and the annual-meeting lookups filter on kind and date.
            models.Index(fields=["kind", "starts_at"], name="event_kind_starts_idx"),
        ]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("outreach:event_detail", args=[self.pk])


class Invitation(models.Model):
    """One invitee of an event (a provider or a staff member), their RSVP and whether
    they came."""

    class Rsvp(models.TextChoices):
        INVITED = "invited", "No reply yet"
        YES = "yes", "Coming"
        MAYBE = "maybe", "Maybe"
        NO = "no", "Not coming"

    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="invitations")
    provider = models.ForeignKey(
        "partners.Provider", on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    staff = models.ForeignKey(
        "partners.StaffMember", on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    rsvp = models.CharField(max_length=10, choices=Rsvp.choices, default=Rsvp.INVITED)
    attended = models.BooleanField(default=False)

    class Meta:
        ordering = ["pk"]
        constraints = [
            # An invitation is for exactly one person, provider or staff.
            models.CheckConstraint(
                condition=(Q(provider__isnull=False) & Q(staff__isnull=True))
                | (Q(provider__isnull=True) & Q(staff__isnull=False)),
                name="invitation_one_person",
            ),
            models.UniqueConstraint(
                fields=["event", "provider"],
                condition=Q(provider__isnull=False),
                name="invitation_provider_once",
            ),
            models.UniqueConstraint(
                fields=["event", "staff"],
                condition=Q(staff__isnull=False),
                name="invitation_staff_once",
            ),
        ]

    def __str__(self) -> str:
        return f"Invitation {self.pk} to event {self.event_id}"

    @property
    def person(self) -> object:
        return self.provider or self.staff


class DigestDelivery(models.Model):
    """One row per liaison and day: the idempotency key of the daily digest email, so a
    beat that fires twice or a retried task never sends the same day's digest twice."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    day = models.DateField()
    sent_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "day"], name="digest_once_per_user_and_day"),
        ]

    def __str__(self) -> str:
        return f"Digest for {self.user_id} on {self.day}"


# --- Newsletters ----------------------------------------------------------------------------


class NewsletterIssue(models.Model):
    """One newsletter sent to a segment of the active partners: its text (from the
    newsletter template, edited for this issue), the audience it was sent to and how far
    the send has got. Each partner's copy is a Letter (unique per issue and partner), so
    the ordinary letter pipeline delivers it by the partner's channel. Newsletters carry
    no patient data: the patient merge fields are refused."""

    class State(models.TextChoices):
        QUEUED = "queued", "Queued"
        PREPARING = "preparing", "Preparing the letters"
        SENT = "sent", "Handed to delivery"

    subject = models.CharField(max_length=200)
    body = models.TextField()
    # The audience: active partners, narrowed by each filter that is set.
    tiers = models.JSONField("tiers", default=list, blank=True)
    health = models.JSONField("relationship health", default=list, blank=True)
    specialty = models.CharField(max_length=100, blank=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name="relationship owner",
    )
    state = models.CharField(max_length=10, choices=State.choices, default=State.QUEUED)
    # How many partners the audience held when the send began, and how many letters
    # are made so far: the progress bar of the preparation.
    audience_size = models.PositiveIntegerField(default=0)
    prepared_count = models.PositiveIntegerField(default=0)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    # Touched by the worker at each step; the sweep re-drives a send whose worker died.
    heartbeat_at = models.DateTimeField(default=timezone.now)
    prepared_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [
            # The sweep looks for sends that have not finished preparing.
            models.Index(
                fields=["heartbeat_at"],
                condition=~Q(state="sent"),
                name="newsletter_unfinished_idx",
            ),
        ]

    def __str__(self) -> str:
        return self.subject

    def get_absolute_url(self) -> str:
        return reverse("outreach:newsletter_detail", args=[self.pk])
