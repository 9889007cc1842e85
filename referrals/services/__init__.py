"""Referral workflows that span models, one module per resource. The public names are
re-exported here so `from referrals.services import referral_log` keeps working; new code
imports from the submodule."""

from referrals.services.assignment import referral_assign, referral_claim
from referrals.services.bulk import (
    BULK_STATUSES,
    SKIP_CHANGED,
    SKIP_NOT_YOURS,
    BulkResult,
    referral_bulk_apply,
)
from referrals.services.consult_reports import (
    consult_report_reminders_create,
    referral_record_consult_report,
)
from referrals.services.edit import STALE_EDIT, referral_edit
from referrals.services.workflow import (
    FUNNEL_BY_STATUS,
    check_referral_transition,
    referral_log,
    referral_transition,
)

__all__ = [
    "BULK_STATUSES",
    "FUNNEL_BY_STATUS",
    "SKIP_CHANGED",
    "SKIP_NOT_YOURS",
    "STALE_EDIT",
    "BulkResult",
    "check_referral_transition",
    "consult_report_reminders_create",
    "referral_assign",
    "referral_bulk_apply",
    "referral_claim",
    "referral_edit",
    "referral_log",
    "referral_record_consult_report",
    "referral_transition",
]
