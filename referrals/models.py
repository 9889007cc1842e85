"""Referrals in both directions, their status pipeline and its history."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypedDict

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Case, F, Q, Value, When
from django.db.models.functions import Lower, Trim
from django.urls import reverse
from django.utils import timezone

from core.roles import is_liaison

if TYPE_CHECKING:
    from django.contrib.auth.models import User


class Status(models.TextChoices):
    RECEIVED = "received", "Received"
    ACCEPTED = "accepted", "Accepted"
    DECLINED = "declined", "Declined"
    SCHEDULED = "scheduled", "Scheduled"
    SEEN = "seen", "Seen"
    REPORT_SENT = "report_sent", "Report sent"
    CLOSED = "closed", "Closed"
    NO_SHOW = "no_show", "No-show"
    ON_HOLD = "on_hold", "On hold"
    CANCELLED = "cancelled", "Cancelled"


class Urgency(models.TextChoices):
    ROUTINE = "routine", "Routine"
    URGENT = "urgent", "Urgent"
    STAT = "stat", "STAT"


# (first contact hours, appointment days) per urgency, until the practice sets its own.
DEFAULT_SLA_TARGETS: dict[str, tuple[int, int]] = {
    Urgency.STAT: (2, 1),
    Urgency.URGENT: (24, 7),
    Urgency.ROUTINE: (72, 30),
}


# The pipeline: which status may follow which. Anything else is refused.
TRANSITIONS: dict[str, tuple[str, ...]] = {
    Status.RECEIVED: (Status.ACCEPTED, Status.DECLINED, Status.ON_HOLD, Status.CANCELLED),
    Status.ACCEPTED: (Status.SCHEDULED, Status.ON_HOLD, Status.CANCELLED),
    Status.SCHEDULED: (Status.SEEN, Status.NO_SHOW, Status.SCHEDULED, Status.CANCELLED),
    Status.NO_SHOW: (Status.SCHEDULED, Status.CANCELLED, Status.CLOSED),
    Status.ON_HOLD: (Status.ACCEPTED, Status.DECLINED, Status.CANCELLED),
    Status.SEEN: (Status.REPORT_SENT,),
    Status.REPORT_SENT: (Status.CLOSED,),
    Status.DECLINED: (Status.CLOSED,),
    Status.CANCELLED: (Status.CLOSED,),
    Status.CLOSED: (),
}

# The button label for moving *to* a status.
ACTION_LABELS: dict[str, str] = {
    Status.ACCEPTED: "Accept",
    Status.DECLINED: "Decline",
    Status.SCHEDULED: "Schedule",
    Status.SEEN: "Mark seen",
    Status.REPORT_SENT: "Report sent",
    Status.CLOSED: "Close",
    Status.NO_SHOW: "No-show",
    Status.ON_HOLD: "Put on hold",
    Status.CANCELLED: "Cancel",
}

# Offered (not imposed) when a coordinator declines, cancels or holds a referral: the same
# words each time make the reasons group in the conversion report, and they are written for
# the referring office, which is sent them. Any other text is accepted.
REASON_SUGGESTIONS: dict[str, tuple[str, ...]] = {
    Status.DECLINED: (
        "We are not in network with the patient's insurance plan.",
        "The condition is outside our scope of practice.",
        "We are not taking new patients for this service at the moment.",
    ),
    Status.CANCELLED: (
        "We could not reach the patient after three calls and a letter.",
        "The patient declined the appointment.",
        "The patient chose to be seen at another practice.",
        "The insurance authorization was denied.",
        "This referral duplicated one we already had.",
    ),
    Status.ON_HOLD: (
        "The office notes of the last visit.",
        "The insurance authorization or referral number.",
        "Recent imaging and its report.",
        "The lab results mentioned in the referral.",
    ),
}

OPEN_STATUSES = (
    Status.RECEIVED,
    Status.ACCEPTED,
    Status.SCHEDULED,
    Status.SEEN,
    Status.REPORT_SENT,
    Status.NO_SHOW,
    Status.ON_HOLD,
)


# What a work-queue row shows of a referral (see ReferralQuerySet.for_queue).
QUEUE_COLUMNS = (
    "direction",
    "provider",
    "assigned_to",
    "patient_first_name",
    "patient_last_name",
    "urgency",
    "status",
    "received_at",
    "contacted_at",
    "appointment_at",
    "closed_at",
    "updated_at",
)


# An inbound referral lost with a reason the coordinator gave: declined, or cancelled
# (cancellations before reasons were asked for have none). Shared by the query and the
# partial index that serves it, so Postgres can match one to the other.
LOST_WITH_REASON = Q(direction="inbound") & (~Q(decline_reason="") | ~Q(cancel_reason=""))


class LostReason(TypedDict):
    outcome: str
    why: str
    n: int


class ReferralQuerySet(models.QuerySet["Referral"]):
    def open(self) -> ReferralQuerySet:
        return self.filter(status__in=OPEN_STATUSES)

    def inbound(self) -> ReferralQuerySet:
        return self.filter(direction=Referral.Direction.INBOUND)

    def lost_reasons(
        self, *, since: datetime, until: datetime, limit: int = 10
    ) -> list[LostReason]:
        """Why inbound referrals received in [since, until) were lost: the most frequent
        decline and cancellation reasons, each with its count, most frequent first."""
        cancelled = ~Q(cancel_reason="")
        return list(
            self.filter(LOST_WITH_REASON, received_at__gte=since, received_at__lt=until)
            .annotate(
                outcome=Case(When(cancelled, then=Value("Cancelled")), default=Value("Declined")),
                why=Case(When(cancelled, then=F("cancel_reason")), default=F("decline_reason")),
            )
            .values("outcome", "why")
            .annotate(n=models.Count("pk"))
            .order_by("-n", "outcome", "why")[:limit]
        )

    def outbound(self) -> ReferralQuerySet:
        return self.filter(direction=Referral.Direction.OUTBOUND)

    def awaiting_consult_report(self, *, sent_before: datetime) -> ReferralQuerySet:
        """Outbound referrals sent before `sent_before` whose consult report has not come
        back, leaving out the ones that never reached the specialist."""
        return self.outbound().filter(
            received_at__lt=sent_before,
            report_received_at__isnull=True,
            status__in=[
                Status.RECEIVED,
                Status.ACCEPTED,
                Status.SCHEDULED,
                Status.SEEN,
                Status.ON_HOLD,
                Status.NO_SHOW,
            ],
        )

    def for_user(self, user: User, *, write: bool = False) -> ReferralQuerySet:
        """Managers, coordinators and administrators work every referral; a liaison reads
        only the referrals of the partners they own and changes none."""
        perm = "referrals.change_referral" if write else "referrals.view_referral"
        if not user.has_perm(perm):
            return self.none()
        if is_liaison(user):
            return self.filter(provider__owner=user)
        return self

    def for_list(self) -> ReferralQuerySet:
        return self.select_related("provider", "provider__organization", "assigned_to")

    def for_queue(self) -> ReferralQuerySet:
        """The work queue's rows: only the columns a row shows (the queue is the busiest
        page; loading whole partner and user rows for 25 lines was most of its query time
        in Python)."""
        return self.select_related("provider", "assigned_to").only(
            *QUEUE_COLUMNS,
            "provider__first_name",
            "provider__last_name",
            "provider__credential",
            "assigned_to__username",
            "assigned_to__first_name",
            "assigned_to__last_name",
        )

    def with_sla(self, *, now: datetime | None = None) -> ReferralQuerySet:
        """Annotate each referral with its first-contact and appointment deadlines and its
        SLA state, all in SQL so the queue can filter and count overdue rows. The targets
        table has one row per urgency, so it is read once and folded into a CASE."""
        now = now or timezone.now()
        targets = SlaTarget.current()
        contact_due = Case(
            *(
                When(urgency=urgency, then=F("received_at") + Value(target.first_contact))
                for urgency, target in targets.items()
            ),
            output_field=models.DateTimeField(),
        )
        appointment_due = Case(
            *(
                When(urgency=urgency, then=F("received_at") + Value(target.appointment))
                for urgency, target in targets.items()
            ),
            output_field=models.DateTimeField(),
        )
        open_statuses = [s for s in OPEN_STATUSES if s not in (Status.SEEN, Status.REPORT_SENT)]
        return self.annotate(
            contact_due_at=contact_due,
            appointment_due_at=appointment_due,
        ).annotate(
            sla_state=Case(
                When(
                    # Any move out of received is the first contact (referral_transition
                    # records it), so only a referral still received can be waiting for it.
                    Q(status=Status.RECEIVED, contacted_at__isnull=True, contact_due_at__lt=now),
                    then=Value(SlaState.CONTACT_OVERDUE),
                ),
                When(
                    Q(
                        appointment_at__isnull=True,
                        status__in=open_statuses,
                        appointment_due_at__lt=now,
                    ),
                    then=Value(SlaState.APPOINTMENT_OVERDUE),
                ),
                When(
                    Q(appointment_at__gt=F("appointment_due_at")),
                    then=Value(SlaState.APPOINTMENT_LATE),
                ),
                default=Value(SlaState.ON_TRACK),
                output_field=models.CharField(),
            )
        )

    def overdue(self, *, now: datetime | None = None) -> ReferralQuerySet:
        return self.with_sla(now=now).filter(
            # django-stubs check lookups against the model's fields; they cannot see the
            # annotation with_sla() adds, since it returns the plain queryset type.
            sla_state__in=[SlaState.CONTACT_OVERDUE, SlaState.APPOINTMENT_OVERDUE]  # type: ignore[misc]
        )


# Every way in (forms, the office link, HL7) is held to these; a typo such as 0194 for
# 1994, or a whole record pasted as the reason, is caught before letters carry it.
EARLIEST_BIRTH_DATE = date(1900, 1, 1)
REASON_MAX_LENGTH = 5000


class SlaState(models.TextChoices):
    CONTACT_OVERDUE = "contact_overdue", "First contact overdue"
    APPOINTMENT_OVERDUE = "appointment_overdue", "Appointment overdue"
    APPOINTMENT_LATE = "appointment_late", "Appointment later than target"
    ON_TRACK = "on_track", "On track"


class SlaTarget(models.Model):
    """How quickly a referral of each urgency must be answered and seen. Data, not code,
    so a practice can tighten its own targets in the admin."""

    urgency = models.CharField(max_length=10, choices=Urgency.choices, unique=True)
    first_contact_hours = models.PositiveIntegerField(
        help_text="Hours from receipt to the first answer (accept, decline or hold)."
    )
    appointment_days = models.PositiveIntegerField(
        help_text="Days from receipt to the appointment."
    )

    class Meta:
        ordering = ["first_contact_hours"]
        verbose_name = "SLA target"

    def __str__(self) -> str:
        return (
            f"{self.get_urgency_display()}: contact {self.first_contact_hours} h, "
            f"appointment {self.appointment_days} d"
        )

    @property
    def first_contact(self) -> timedelta:
        return timedelta(hours=self.first_contact_hours)

    @property
    def appointment(self) -> timedelta:
        return timedelta(days=self.appointment_days)

    @classmethod
    def current(cls) -> dict[str, SlaTarget]:
        """Targets by urgency; an urgency missing from the table falls back to the default
        so a deleted row cannot make every referral look on track."""
        targets: dict[str, SlaTarget] = {t.urgency: t for t in cls.objects.all()}
        for urgency, (hours, days) in DEFAULT_SLA_TARGETS.items():
            targets.setdefault(
                urgency, cls(urgency=urgency, first_contact_hours=hours, appointment_days=days)
            )
        return targets


class Referral(models.Model):
    class Direction(models.TextChoices):
        INBOUND = "inbound", "Inbound (partner → us)"
        OUTBOUND = "outbound", "Outbound (us → partner)"

    Urgency = Urgency

    class Channel(models.TextChoices):
        FAX = "fax", "Fax"
        PHONE = "phone", "Phone"
        WEB_FORM = "web_form", "Web form"
        E_REFERRAL = "e_referral", "E-referral"
        WALK_IN = "walk_in", "Walk-in"

    Status = Status

    direction = models.CharField(
        max_length=10, choices=Direction.choices, default=Direction.INBOUND
    )
    provider = models.ForeignKey(
        "partners.Provider",
        on_delete=models.PROTECT,
        related_name="referrals",
        verbose_name="partner provider",
        help_text="Who referred the patient to us, or whom we are referring them to.",
    )
    # Patient details (PHI): shown only to roles with referrals.view_patient_details.
    patient_first_name = models.CharField("patient first name", max_length=100)
    patient_last_name = models.CharField("patient last name", max_length=100)
    patient_dob = models.DateField("patient date of birth")
    patient_phone = models.CharField("patient phone", max_length=30, blank=True)
    reason = models.TextField("reason for referral")
    urgency = models.CharField(max_length=10, choices=Urgency.choices, default=Urgency.ROUTINE)
    channel = models.CharField(max_length=12, choices=Channel.choices, default=Channel.FAX)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.RECEIVED)
    received_at = models.DateTimeField(default=timezone.now, db_index=True)
    decline_reason = models.CharField(max_length=300, blank=True)
    # What the practice needs before it can go on (records, an authorization); when given,
    # the referring office is sent it.
    hold_reason = models.CharField(max_length=300, blank=True)
    # Why it was cancelled (the patient could not be reached, chose another practice…):
    # asked for every cancellation since it was added, and sent to the referring office.
    cancel_reason = models.CharField(max_length=300, blank=True)
    # First contact = the first answer to the referral (accepted, declined, on hold or
    # cancelled): the moment the practice has acted on it and called the patient or the
    # referrer. Set once by referral_transition; the SLA clock for contact stops here.
    contacted_at = models.DateTimeField(null=True, blank=True)
    appointment_at = models.DateTimeField(null=True, blank=True)
    seen_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    assigned_to = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="assigned_referrals",
    )
    # Outbound only. Whether the specialist was in network when we sent the patient: a
    # snapshot, so leakage stays true to the day even if the partner's flag changes later.
    in_network = models.BooleanField(null=True, blank=True)
    out_of_network_reason = models.CharField(
        "why out of network",
        max_length=300,
        blank=True,
        # Asked for by the refer-out form; imports and integrations may not know it, so the
        # leakage report lists those as "no reason given" rather than refusing the referral.
        help_text="Required when the specialist is not an in-network partner.",
    )
    report_received_at = models.DateTimeField("consult report received", null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        help_text="Empty for referrals that arrived by themselves (web form, e-referral).",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = ReferralQuerySet.as_manager()

    class Meta:
        ordering = ["-received_at", "-pk"]
        permissions = [
            ("view_patient_details", "Can see patient names, birth dates and phones"),
            ("view_referral_reports", "Can see referral reports (leakage, reciprocity)"),
        ]
        indexes = [
            # The work queue filters by status and sorts by arrival.
            models.Index(fields=["status", "-received_at"], name="referral_queue_idx"),
            # Partner pages and counts group referrals by provider and time.
            models.Index(fields=["provider", "-received_at"], name="referral_provider_idx"),
            # A partner's counts by direction and period (partner 360, lists, reciprocity):
            # answered from the index alone, without visiting each referral row.
            models.Index(
                fields=["provider", "direction", "-received_at"], name="referral_provider_flow_idx"
            ),
            # The duplicate check (same patient: last name ignoring case and spaces, and
            # birth date) on entry and on the detail page; without it a full scan at scale.
            models.Index(
                Lower(Trim("patient_last_name")), "patient_dob", name="referral_patient_match_idx"
            ),
            # Why referrals were lost (conversion report): the few lost ones of a period
            # without reading every referral of it.
            models.Index(
                fields=["received_at"], condition=LOST_WITH_REASON, name="referral_lost_idx"
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=~Q(status=Status.DECLINED) | ~Q(decline_reason=""),
                name="referral_declined_has_reason",
            ),
        ]

    def __str__(self) -> str:
        return f"Referral #{self.pk}"

    def get_absolute_url(self) -> str:
        return reverse("referrals:detail", args=[self.pk])

    @property
    def patient_initials(self) -> str:
        return f"{self.patient_first_name[:1]}.{self.patient_last_name[:1]}.".upper()

    def allowed_transitions(self) -> tuple[str, ...]:
        return TRANSITIONS[self.status]

    def check_transition(self, to_status: str) -> None:
        if to_status not in Status.values:
            raise ValidationError(f"“{to_status}” is not a referral status.")
        if to_status not in TRANSITIONS[self.status]:
            raise ValidationError(
                f"A referral that is {self.get_status_display().lower()} cannot move to "
                f"{Status(to_status).label.lower()}."
            )

    def clean(self) -> None:
        errors = {}
        if self.patient_dob and self.patient_dob > timezone.localdate():
            errors["patient_dob"] = "The date of birth cannot be in the future."
        elif self.patient_dob and self.patient_dob < EARLIEST_BIRTH_DATE:
            errors["patient_dob"] = "Check the year of birth: it is before 1900."
        if len(self.reason or "") > REASON_MAX_LENGTH:
            errors["reason"] = (
                f"The reason is longer than {REASON_MAX_LENGTH:,} characters: keep the summary "
                "here and attach the full notes as a document."
            )
        if errors:
            raise ValidationError(errors)


class ReferralEventQuerySet(models.QuerySet["ReferralEvent"]):
    def for_timeline(self) -> ReferralEventQuerySet:
        return self.select_related("actor", "from_assignee", "to_assignee")


class ReferralEvent(models.Model):
    """The referral's history, one row per change: a status move, a change of coordinator
    (claim, reassignment, bulk assignment, edit) or an edit of its details."""

    class Kind(models.TextChoices):
        STATUS = "status", "Status change"
        ASSIGNMENT = "assignment", "Coordinator change"
        EDIT = "edit", "Details edited"

    referral = models.ForeignKey(Referral, on_delete=models.CASCADE, related_name="events")
    # db_default too: bulk loaders (the scale harness COPY) write status events without it.
    kind = models.CharField(
        max_length=10, choices=Kind.choices, default=Kind.STATUS, db_default=Kind.STATUS
    )
    from_status = models.CharField(max_length=12, choices=Status.choices, blank=True)
    # Empty for events that are not status moves.
    to_status = models.CharField(max_length=12, choices=Status.choices, blank=True)
    # Assignment events only. Not indexed: nothing looks events up by them, and users who
    # touched patient data are deactivated rather than deleted (see audit.PatientDataAccess).
    from_assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
    )
    to_assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
    )
    # Edits only: [{"field": label, "old": text, "new": text}], in form order. Patient
    # fields are listed by name alone, never with their values: the history is shown to
    # roles that see initials only.
    changes = models.JSONField(null=True, blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True
    )
    at = models.DateTimeField(default=timezone.now)
    note = models.TextField(blank=True)

    objects = ReferralEventQuerySet.as_manager()

    class Meta:
        ordering = ["at", "pk"]
        indexes = [
            # The loop sweep looks for referrals that reached a status.
            models.Index(fields=["to_status", "at"], name="referralevent_status_idx"),
        ]
        constraints = [
            # A status event names the status reached; no other event does, so searches
            # by to_status (the loop sweep) never pick up an assignment or an edit.
            models.CheckConstraint(
                condition=(Q(kind="status") & ~Q(to_status=""))
                | (~Q(kind="status") & Q(to_status="")),
                name="referralevent_status_iff_kind_status",
            ),
        ]

    def __str__(self) -> str:
        if self.kind == self.Kind.ASSIGNMENT:
            return (
                f"{self.referral_id}: coordinator {self.from_assignee_id} → {self.to_assignee_id}"
            )
        if self.kind == self.Kind.EDIT:
            return f"{self.referral_id}: details edited"
        return f"{self.referral_id}: {self.from_status or 'new'} → {self.to_status}"


class InquiryQuerySet(models.QuerySet["Inquiry"]):
    def conversion_by_source(self, *, since: datetime, until: datetime) -> list[dict[str, Any]]:
        """Per source, inquiries received in [since, until) and how many reached scheduling
        and a first visit: one grouped query. Every source is listed, with zeros, so a
        source with no inquiries shows as such rather than vanishing."""
        reached_scheduling = [Inquiry.Status.SCHEDULED, Inquiry.Status.SEEN_NEW_PATIENT]
        counts = {
            row["source"]: row
            for row in self.filter(received_at__gte=since, received_at__lt=until)
            .order_by()
            .values("source")
            .annotate(
                inquiries=models.Count("pk"),
                scheduled=models.Count("pk", filter=Q(status__in=reached_scheduling)),
                seen=models.Count("pk", filter=Q(status=Inquiry.Status.SEEN_NEW_PATIENT)),
                lost=models.Count("pk", filter=Q(status=Inquiry.Status.LOST)),
            )
        }
        rows = []
        for source, label in Inquiry.Source.choices:
            row = counts.get(source, {"inquiries": 0, "scheduled": 0, "seen": 0, "lost": 0})
            total = row["inquiries"]
            rows.append(
                {
                    "source": source,
                    "label": label,
                    "inquiries": total,
                    "scheduled": row["scheduled"],
                    "seen": row["seen"],
                    "lost": row["lost"],
                    "scheduled_rate": row["scheduled"] / total * 100 if total else None,
                    "conversion_rate": row["seen"] / total * 100 if total else None,
                }
            )
        return rows


class Inquiry(models.Model):
    """A prospective new patient from any source, so every source runs the same funnel
    (inquiry → scheduled → seen as a new patient) and conversion can be compared from the
    practice's own data. Inbound referrals create theirs in referral_log and move it in
    referral_transition; other sources are entered by the front desk."""

    class Source(models.TextChoices):
        PARTNER_REFERRAL = "partner_referral", "Partner referral"
        WEB = "web", "Web"
        ADVERTISING = "advertising", "Advertising"
        INSURANCE_DIRECTORY = "insurance_directory", "Insurance directory"
        SELF = "self", "Self (walk-in, word of mouth)"
        OTHER = "other", "Other"

    class Status(models.TextChoices):
        INQUIRY = "inquiry", "Inquiry"
        SCHEDULED = "scheduled", "Scheduled"
        SEEN_NEW_PATIENT = "seen_new_patient", "Seen as a new patient"
        LOST = "lost", "Lost"

    source = models.CharField(max_length=20, choices=Source.choices)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.INQUIRY)
    referral = models.OneToOneField(
        Referral, on_delete=models.CASCADE, null=True, blank=True, related_name="inquiry"
    )
    received_at = models.DateTimeField(default=timezone.now)
    scheduled_at = models.DateTimeField(null=True, blank=True)
    seen_at = models.DateTimeField(null=True, blank=True)
    lost_at = models.DateTimeField(null=True, blank=True)
    note = models.CharField(
        max_length=300, blank=True, help_text="No patient details here: use a referral."
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True
    )

    objects = InquiryQuerySet.as_manager()

    class Meta:
        ordering = ["-received_at", "-pk"]
        verbose_name_plural = "inquiries"
        indexes = [
            # The conversion report groups a period's inquiries by source.
            models.Index(fields=["received_at", "source"], name="inquiry_period_idx"),
        ]
        constraints = [
            # Only a partner referral has a referral behind it.
            models.CheckConstraint(
                condition=Q(referral__isnull=True) | Q(source="partner_referral"),
                name="inquiry_referral_only_for_partner_referrals",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_source_display()} inquiry #{self.pk}"

    def clean(self) -> None:
        if self.referral_id is None and self.source == self.Source.PARTNER_REFERRAL:
            raise ValidationError(
                {"source": "Log a partner referral as a referral; its inquiry follows it."}
            )
        if self.status == self.Status.SCHEDULED and self.scheduled_at is None:
            self.scheduled_at = timezone.now()
        if self.status == self.Status.SEEN_NEW_PATIENT and self.seen_at is None:
            self.seen_at = timezone.now()
        if self.status == self.Status.LOST and self.lost_at is None:
            self.lost_at = timezone.now()
