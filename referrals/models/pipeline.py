"""The referral pipeline: statuses, urgencies, which moves are allowed and their labels."""

from __future__ import annotations

from django.db import models


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

# A referral in each status, as a sentence names it: "an accepted referral", "a referral on
# hold" (the article and the word order differ, so they are written out, not built).
REFERRAL_IN_STATUS: dict[str, str] = {
    Status.RECEIVED: "a received referral",
    Status.ACCEPTED: "an accepted referral",
    Status.DECLINED: "a declined referral",
    Status.SCHEDULED: "a scheduled referral",
    Status.SEEN: "a referral already seen",
    Status.REPORT_SENT: "a referral whose report was sent",
    Status.CLOSED: "a closed referral",
    Status.NO_SHOW: "a referral marked no-show",
    Status.ON_HOLD: "a referral on hold",
    Status.CANCELLED: "a cancelled referral",
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

# A referral we send out moves through the same statuses, but the specialist is the one who
# accepts, sees the patient and sends the report back: its buttons and one status say so.
OUTBOUND_ACTION_LABELS: dict[str, str] = {
    Status.ACCEPTED: "Specialist accepted",
    Status.DECLINED: "Specialist declined",
    Status.SEEN: "Seen by the specialist",
    Status.REPORT_SENT: "Consult report received",
}
OUTBOUND_STATUS_LABELS: dict[str, str] = {
    # Sent to the specialist, who has not answered yet.
    Status.RECEIVED: "Sent",
    Status.REPORT_SENT: "Report received",
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
