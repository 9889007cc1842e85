"""Letters to partners, and the editable templates they are written from."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone

if TYPE_CHECKING:
    from collections.abc import Callable

    from django.contrib.auth.models import User

    from partners.models import Provider


def letter_name(kind_label: str) -> str:
    """A kind of letter as a sentence names it: "Thank-you letter", but "Consult report
    cover letter" and "Newsletter" already say what they are."""
    if kind_label.lower().endswith("letter"):
        return kind_label
    return f"{kind_label} letter"


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
        EVENT_CANCELLED = "event_cancelled", "Event cancelled"

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

    @property
    def kind_name(self) -> str:
        return letter_name(self.get_kind_display())

    # When the letters of the kinds not sent from a referral's step go out; those kinds
    # ignore delay_business_days.
    TIMING = {
        "newsletter": "sent when a newsletter issue goes out",
        "event_reminder": "sent as many days before an event as the event says",
        "event_cancelled": "sent when an event is cancelled, to invitees who had not declined",
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

    def failed(self) -> LetterQuerySet:
        """Letters that failed for good, waiting for someone at the print and fax queue to
        try again, mail them or let them go (read from letter_failed_idx)."""
        return self.filter(status=Letter.Status.FAILED)

    def print_queue(self) -> LetterQuerySet:
        return (
            self.filter(status=Letter.Status.PRINT_QUEUE)
            .select_related("provider", "provider__organization")
            .order_by("created_at", "pk")
        )


# Letters that court a partner rather than tell them about their patients: a partner's
# opt-out of newsletters and invitations (Provider.marketing_opt_out) stops these only.
MARKETING_KINDS = frozenset(
    {
        LetterTemplate.Kind.NEWSLETTER,
        LetterTemplate.Kind.REKINDLE,
        LetterTemplate.Kind.EVENT_REMINDER,
        LetterTemplate.Kind.EVENT_CANCELLED,
    }
)


def opted_out_of(provider: Provider, kind: str) -> bool:
    """Does `provider` take no letter of `kind`? They, or their office, opted out of
    letters; or it courts them and they opted out of newsletters and invitations. Load
    the partner with its organization where many are checked."""
    return provider.letters_opted_out or (kind in MARKETING_KINDS and provider.marketing_opted_out)


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
    # What an event reminder told its invitee: the event's start and place as it was
    # written. The next reminder after a move says what changed ("New place") from these,
    # not from this letter's text, which a template may word any way. Empty on other
    # letters, and on reminders written before they were kept.
    told_starts_at = models.DateTimeField(null=True, blank=True, editable=False)
    told_place = models.CharField(max_length=300, blank=True, editable=False)
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
            # The print queue page lists the letters that failed for good, oldest first.
            models.Index(
                fields=["created_at"],
                condition=Q(status="failed"),
                name="letter_failed_idx",
            ),
            # The print queue page lists letters waiting to be printed or faxed.
            models.Index(
                fields=["created_at"],
                condition=Q(status="print_queue"),
                name="letter_print_queue_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind_name} to {self.provider}"

    def get_absolute_url(self) -> str:
        return reverse("outreach:letter_detail", args=[self.pk])

    @property
    def kind_name(self) -> str:
        return letter_name(self.get_kind_display())

    @property
    def recipient_opted_out(self) -> bool:
        """Its partner takes no letter of its kind any more (opted_out_of)."""
        return opted_out_of(self.provider, self.kind)

    @property
    def is_due(self) -> bool:
        return self.due_on <= timezone.localdate()

    def patient_referral_ids(self) -> list[int]:
        """The referrals whose patient this letter names (initials and dates): its own; a
        report summary's are those of the cover letters it lists (one query); a letter
        about no patient (newsletter, invitation, rekindle note) names none."""
        if self.referral_id is not None:
            return [self.referral_id]
        if self.kind == LetterTemplate.Kind.REPORT_SUMMARY:
            return sorted(
                self.summarised.filter(referral__isnull=False)
                .values_list("referral_id", flat=True)
                .distinct()
            )
        return []

    @property
    def subject_line(self) -> str:
        """The subject on one line, as an email header must be: a line break typed into a
        template's subject or a merged name would make the mail library refuse the letter."""
        return " ".join(self.subject.split())


class LetterEvent(models.Model):
    """What a person did with a letter that failed for good, from the print and fax queue:
    tried it again, had it mailed instead, or let it go; with who, when and the failure it
    answered. Kept as rows because the letter's own fields do not keep it: trying again
    clears the error and the next attempt writes its own."""

    class Action(models.TextChoices):
        RETRY = "retry", "Tried it again"
        MAIL = "mail", "Had it printed and mailed instead"
        LET_GO = "let_go", "Let it go"

    letter = models.ForeignKey(Letter, on_delete=models.CASCADE, related_name="events")
    action = models.CharField(max_length=10, choices=Action.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    at = models.DateTimeField(default=timezone.now)
    # The letter's error at that moment, as delivery wrote it (an error class and attempt,
    # never the server's words, which can echo the letter).
    failure = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["at", "pk"]

    def __str__(self) -> str:
        return f"Letter {self.letter_id}: {self.action}"
