"""Referrals in both directions: the row, its queries and its validation."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, TypedDict

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Case, Exists, F, OuterRef, Q, Value, When
from django.db.models.functions import Cast, Lower, Trim, TruncDate
from django.urls import reverse
from django.utils import timezone

from core.roles import is_liaison
from core.text import strip_invisible_from
from referrals.models.pipeline import (
    ACTION_LABELS,
    OPEN_STATUSES,
    OUTBOUND_ACTION_LABELS,
    OUTBOUND_STATUS_LABELS,
    REFERRAL_IN_STATUS,
    TRANSITIONS,
    Status,
    Urgency,
)
from referrals.models.sla import OVERDUE_STATES, SlaState, SlaTarget

if TYPE_CHECKING:
    from django.contrib.auth.models import User


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
    "duplicate_of",
)


# An inbound referral lost with a reason the coordinator gave: declined, or cancelled
# (cancellations before reasons were asked for have none). Shared by the query and the
# partial index that serves it, so Postgres can match one to the other.
LOST_WITH_REASON = Q(direction="inbound") & (~Q(decline_reason="") | ~Q(cancel_reason=""))
WENT_AHEAD = Q(decline_reason="", cancel_reason="")


class LostReason(TypedDict):
    outcome: str
    why: str
    n: int


class ReferralQuerySet(models.QuerySet["Referral"]):
    def open(self) -> ReferralQuerySet:
        return self.filter(status__in=OPEN_STATUSES)

    def inbound(self) -> ReferralQuerySet:
        return self.filter(direction=Referral.Direction.INBOUND)

    def counted(self) -> ReferralQuerySet:
        """Leaves out referrals cancelled as a copy of another (duplicate_of): what a
        partner sent, and every figure made of it, counts each referral once."""
        return self.filter(duplicate_of__isnull=True)

    def lost_reasons(
        self, *, since: datetime, until: datetime, limit: int | None = 10
    ) -> list[LostReason]:
        """Why inbound referrals received in [since, until) were lost: the `limit` most
        frequent decline and cancellation reasons (or every one), each with its count, and
        the referrals closed after the patient did not come; most frequent first."""
        cancelled = ~Q(cancel_reason="")
        given: list[LostReason] = list(
            self.filter(LOST_WITH_REASON, received_at__gte=since, received_at__lt=until)
            .annotate(
                outcome=Case(When(cancelled, then=Value("Cancelled")), default=Value("Declined")),
                why=Case(When(cancelled, then=F("cancel_reason")), default=F("decline_reason")),
            )
            .values("outcome", "why")
            .annotate(n=models.Count("pk"))
            .order_by("-n", "outcome", "why")[:limit]
        )
        from referrals.models.inquiries import Inquiry  # it refers to Referral

        # Recorded on the inquiry when the referral closes (its history says so too, but
        # finding it there reads a year of referrals and their events).
        no_shows = Inquiry.objects.filter(
            missed_visit=True, received_at__gte=since, received_at__lt=until
        ).count()
        if no_shows:
            given.append(
                {
                    "outcome": "No-show",
                    "why": "Closed after the patient did not come",
                    "n": no_shows,
                }
            )
            given.sort(key=lambda row: -row["n"])
        return given[:limit]

    def outbound(self) -> ReferralQuerySet:
        return self.filter(direction=Referral.Direction.OUTBOUND)

    def went_ahead(self) -> ReferralQuerySet:
        """Neither declined nor cancelled (ever: both end closed, their reason kept), so the
        patient went, or is still to go, where the referral sent them."""
        return self.filter(WENT_AHEAD)

    def awaiting_consult_report(
        self, *, seen_before: datetime, seen_since: datetime | None = None
    ) -> ReferralQuerySet:
        """Outbound referrals whose patient the specialist saw before `seen_before` (and
        since `seen_since`, when given) and whose consult report has not come back. Only a
        seen patient has a report to chase (see Referral.consult_report_due)."""
        waiting = self.outbound().filter(
            status=Status.SEEN, seen_at__lt=seen_before, report_received_at__isnull=True
        )
        return waiting if seen_since is None else waiting.filter(seen_at__gte=seen_since)

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

    def with_duplicate_flag(self) -> ReferralQuerySet:
        """Annotate `possible_duplicate`: an earlier referral of the same patient (last
        name, ignoring case and surrounding spaces, and birth date) from the same partner
        (the provider, or any provider of the same office, as the check on entry and the
        detail page's list count it), the same way, came in within
        settings.DUPLICATE_WINDOW_DAYS before this one, as an office that sends a referral
        twice makes; for one a coordinator confirmed as a referral of its own
        (not_duplicate_at), only such a referral entered since. One index range per row
        shown (referral_patient_match_idx: a patient's few referrals)."""
        window = timedelta(days=settings.DUPLICATE_WINDOW_DAYS)
        earlier = (
            Referral.objects.alias(last_name_key=Lower(Trim("patient_last_name")))
            .filter(
                Q(provider=OuterRef("provider"))
                | Q(provider__organization_id=OuterRef("provider__organization_id")),
                direction=OuterRef("direction"),
                patient_dob=OuterRef("patient_dob"),
                last_name_key=Lower(Trim(OuterRef("patient_last_name"))),
                received_at__gte=OuterRef("received_at") - window,
                received_at__lte=OuterRef("received_at"),
                # One already marked as a copy (of this one or another) is settled.
                duplicate_of__isnull=True,
            )
            .exclude(pk=OuterRef("pk"))
        )
        return self.annotate(
            possible_duplicate=Case(
                # Itself marked as a copy: settled, not a possible duplicate any more.
                When(duplicate_of__isnull=False, then=Value(False)),
                # Confirmed a referral of its own: only one entered since then is a
                # question.
                When(
                    not_duplicate_at__isnull=False,
                    then=Exists(earlier.filter(created_at__gt=OuterRef("not_duplicate_at"))),
                ),
                default=Exists(earlier),
                output_field=models.BooleanField(),
            )
        )

    def with_sla(
        self, *, now: datetime | None = None, targets: dict[str, SlaTarget] | None = None
    ) -> ReferralQuerySet:
        """Annotate each referral with its first-contact and appointment deadlines and its
        SLA state, all in SQL so the queue can filter and count overdue rows. The targets
        table has one row per urgency, so it is read once and folded into a CASE."""
        now = now or timezone.now()
        targets = targets or SlaTarget.current()
        contact_due = Case(
            *(
                When(urgency=urgency, then=F("received_at") + Value(target.first_contact))
                for urgency, target in targets.items()
            ),
            output_field=models.DateTimeField(),
        )
        # The appointment target is a day (its page says "by Fri Dec 4"): overdue once that
        # day is over, and an appointment any time that day is on time, in local time. Its
        # days are counted on the calendar from the day of receipt: 30 times 24 hours from
        # 00:30 end at 11:30 pm the day before when the clocks go back in between.
        local = timezone.get_current_timezone()
        received_day = TruncDate("received_at", tzinfo=local)
        appointment_due = Case(
            *(
                When(
                    urgency=urgency,
                    then=Cast(received_day + Value(target.appointment), models.DateField()),
                )
                for urgency, target in targets.items()
            ),
            output_field=models.DateField(),
        )
        open_statuses = [s for s in OPEN_STATUSES if s not in (Status.SEEN, Status.REPORT_SENT)]
        today_start = timezone.localtime(now, local).replace(
            hour=0, minute=0, second=0, microsecond=0
        )
        return (
            self.annotate(contact_due_at=contact_due, appointment_due_day=appointment_due)
            .alias(appointment_day=TruncDate("appointment_at", tzinfo=local))
            .annotate(
                sla_state=Case(
                    When(~Q(status__in=OPEN_STATUSES), then=Value(SlaState.ENDED)),
                    # The targets are the practice's answer to those who refer to it; an
                    # open referral it sends out is the specialist's to answer.
                    When(direction=Referral.Direction.OUTBOUND, then=Value(SlaState.ON_TRACK)),
                    When(
                        # Any move out of received is the first contact (referral_transition
                        # records it), so only a referral still received can be waiting for it.
                        Q(
                            status=Status.RECEIVED,
                            contacted_at__isnull=True,
                            contact_due_at__lt=now,
                        ),
                        then=Value(SlaState.CONTACT_OVERDUE),
                    ),
                    When(
                        # No appointment yet, or a missed one (a no-show waits to be
                        # booked again or closed): the patient is still to be seen.
                        (Q(appointment_at__isnull=True) | Q(status=Status.NO_SHOW))
                        & Q(
                            status__in=open_statuses,
                            appointment_due_day__lt=today_start.date(),
                        ),
                        then=Value(SlaState.APPOINTMENT_OVERDUE),
                    ),
                    When(
                        Q(status=Status.SCHEDULED, appointment_at__lt=today_start),
                        then=Value(SlaState.OUTCOME_DUE),
                    ),
                    When(
                        Q(appointment_day__gt=F("appointment_due_day")),
                        then=Value(SlaState.APPOINTMENT_LATE),
                    ),
                    default=Value(SlaState.ON_TRACK),
                    output_field=models.CharField(),
                )
            )
        )

    def overdue(self, *, now: datetime | None = None) -> ReferralQuerySet:
        return self.with_sla(now=now).filter(
            # django-stubs check lookups against the model's fields; they cannot see the
            # annotation with_sla() adds, since it returns the plain queryset type.
            sla_state__in=OVERDUE_STATES  # type: ignore[misc]
        )


# Free text that every way in cleans of invisible direction controls (Referral.clean).
TYPED_FIELDS = (
    "patient_first_name",
    "patient_last_name",
    "patient_phone",
    "reason",
    "out_of_network_reason",
)

# Every way in (forms, the office link, HL7) is held to these; a typo such as 0194 for
# 1994, or a whole record pasted as the reason, is caught before letters carry it.
EARLIEST_BIRTH_DATE = date(1900, 1, 1)
REASON_MAX_LENGTH = 5000


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
    # The same referral entered twice (an office that faxed it twice, a fax and a phone
    # call): cancelled as a copy of this one (referral_mark_duplicate), and counted
    # nowhere, so a partner's volume, health and the reports count the patient once.
    duplicate_of = models.ForeignKey(
        "self",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="duplicates",
        help_text="The referral this one repeats: cancelled as a copy and counted nowhere.",
        # Indexed for the few that are set only (referral_duplicate_idx): an index of a
        # million nulls would be one the planner could pick to find "not a duplicate".
        db_index=False,
    )
    # A coordinator looked at its possible duplicates and found it a referral of its own
    # (on entry, on its page, or by putting it back after marking it as a copy): those
    # entered before then are no longer flagged (ReferralQuerySet.with_duplicate_flag). A
    # new partner or patient on it clears this, as the decision was about other details.
    not_duplicate_at = models.DateTimeField(
        "confirmed not a duplicate",
        null=True,
        blank=True,
        help_text="When a coordinator confirmed it is not a copy of those entered before.",
    )
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
            # It carries duplicate_of so that leaving duplicates out (counted()) still
            # reads the index alone.
            models.Index(
                fields=["provider", "direction", "-received_at"],
                include=["duplicate_of"],
                name="referral_provider_flow_idx",
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
            # The dashboard's open referrals by direction and status, a liaison's by their
            # partners too: counted from this small index alone (the open few of a
            # million), not from the rows.
            models.Index(
                fields=["status", "direction", "provider"],
                condition=Q(status__in=OPEN_STATUSES),
                name="referral_open_idx",
            ),
            # A referral's copies (and the check before deleting one that has some).
            models.Index(
                fields=["duplicate_of"],
                condition=Q(duplicate_of__isnull=False),
                name="referral_duplicate_idx",
            ),
            # Referrals each way over a period (the dashboard's last 30 days, reports),
            # duplicates left out from the index alone.
            models.Index(
                fields=["direction", "received_at"],
                include=["duplicate_of"],
                name="referral_direction_idx",
            ),
            # The leakage report: a period's patients sent out, by network, specialist and
            # reason, and whether they went ahead, read from this index alone (a year is
            # some 45,000 of a million).
            models.Index(
                fields=["received_at"],
                include=[
                    "id",
                    "in_network",
                    "provider",
                    "out_of_network_reason",
                    "decline_reason",
                    "cancel_reason",
                ],
                condition=Q(direction="outbound"),
                name="referral_outbound_idx",
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

    @property
    def status_label(self) -> str:
        """The status as this referral's direction reads it ("Sent" and "Report received"
        for one we sent out, where the report comes back to us)."""
        return self.label_for(self.status)

    def label_for(self, status: str) -> str:
        """Any status (one in this referral's history, say) as its direction reads it."""
        if self.direction == self.Direction.OUTBOUND and status in OUTBOUND_STATUS_LABELS:
            return OUTBOUND_STATUS_LABELS[status]
        return str(Status(status).label)

    def action_label(self, to_status: str) -> str:
        """The button that moves this referral to `to_status`."""
        if self.direction == self.Direction.OUTBOUND and to_status in OUTBOUND_ACTION_LABELS:
            return OUTBOUND_ACTION_LABELS[to_status]
        if to_status == Status.SCHEDULED and self.status in (Status.SCHEDULED, Status.NO_SHOW):
            return "Reschedule"
        return ACTION_LABELS[to_status]

    @property
    def consult_report_due(self) -> bool:
        """A referral we sent out whose patient the specialist has seen: only then can a
        consult report come back (moving on to "report received" records it too)."""
        return self.direction == self.Direction.OUTBOUND and (
            self.status in (Status.SEEN, Status.REPORT_SENT)
            or (self.status == Status.CLOSED and self.seen_at is not None)
        )

    def check_transition(self, to_status: str) -> None:
        if to_status not in Status.values:
            raise ValidationError(f"“{to_status}” is not a referral status.")
        if to_status not in TRANSITIONS[self.status]:
            refusal = self.transition_refusal(to_status)
            raise ValidationError(f"{refusal[0].upper()}{refusal[1:]}.")

    def transition_refusal(self, to_status: str) -> str:
        """Why this referral may not move to `to_status`, as a clause that fits mid-sentence:
        "an accepted referral cannot move to accepted"."""
        return f"{REFERRAL_IN_STATUS[self.status]} cannot move to {Status(to_status).label.lower()}"

    def clean(self) -> None:
        # However it came in (a form, an office's link, HL7), the patient's name and the
        # reason are stored without characters that would change how the queue draws them.
        strip_invisible_from(self, TYPED_FIELDS)
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
