"""Deleting referrals: the patient details go, and the audit trail keeps who deleted
which referral and when (the trail names referrals by number, so it outlives them)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db import transaction
from django.http import HttpRequest

from audit.models import PatientDataAccess
from audit.services import audit_record
from referrals.models import Referral


@transaction.atomic
def referrals_delete(
    *, referrals: Iterable[Referral], actor: Any, request: HttpRequest | None = None
) -> int:
    """Delete these referrals with their history and their documents (rows, and files once
    committed); one audit row each. Returns how many were deleted."""
    # intake.services logs referrals through this package: imported here, not at the top.
    from intake.models import ReferralAttachment
    from intake.services import attachment_files_delete

    ids = [referral.pk for referral in referrals]
    if not ids:
        return 0
    attachment_files_delete(attachments=ReferralAttachment.objects.filter(referral_id__in=ids))
    audit_record(
        action=PatientDataAccess.Action.DELETE, referral_ids=ids, user=actor, request=request
    )
    Referral.objects.filter(pk__in=ids).delete()
    return len(ids)
