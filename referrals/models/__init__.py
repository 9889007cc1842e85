"""Referrals in both directions, their status pipeline and its history. Every model is
imported here so Django finds it; callers import from `referrals.models`."""

from referrals.models.events import ReferralEvent, ReferralEventQuerySet
from referrals.models.inquiries import Inquiry, InquiryQuerySet
from referrals.models.pipeline import (
    ACTION_LABELS,
    OPEN_STATUSES,
    REASON_SUGGESTIONS,
    TRANSITIONS,
    Status,
    Urgency,
)
from referrals.models.referrals import (
    EARLIEST_BIRTH_DATE,
    LOST_WITH_REASON,
    QUEUE_COLUMNS,
    REASON_MAX_LENGTH,
    WENT_AHEAD,
    LostReason,
    Referral,
    ReferralQuerySet,
)
from referrals.models.sla import DEFAULT_SLA_TARGETS, SlaState, SlaTarget

__all__ = [
    "ACTION_LABELS",
    "DEFAULT_SLA_TARGETS",
    "EARLIEST_BIRTH_DATE",
    "LOST_WITH_REASON",
    "OPEN_STATUSES",
    "QUEUE_COLUMNS",
    "REASON_MAX_LENGTH",
    "REASON_SUGGESTIONS",
    "TRANSITIONS",
    "WENT_AHEAD",
    "Inquiry",
    "InquiryQuerySet",
    "LostReason",
    "Referral",
    "ReferralEvent",
    "ReferralEventQuerySet",
    "ReferralQuerySet",
    "SlaState",
    "SlaTarget",
    "Status",
    "Urgency",
]
