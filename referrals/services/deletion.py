"""Deleting referrals: the patient details go, and the audit trail keeps who deleted
which referral and when (the trail names referrals by number, so it outlives them)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import HttpRequest

from audit.models import PatientDataAccess
from audit.services import audit_record
from referrals.models import Referral


def check_referrals_delete(*, ids: list[int]) -> None:
    """May these referrals be deleted? Not one kept for copies marked as its duplicates
    (Referral.duplicate_of protects it): those would repeat nothing. Raises
    ValidationError naming them."""
    copies = list(
        Referral.objects.filter(duplicate_of_id__in=ids)
        .exclude(pk__in=ids)
        .order_by("duplicate_of_id", "pk")
        .values_list("duplicate_of_id", "pk")
    )
    if copies:
        kept, numbers = copies[0][0], ", ".join(f"#{pk}" for _, pk in copies)
        raise ValidationError(
            f"Referral #{kept} cannot be deleted: {numbers} "
            f"{'is' if len(copies) == 1 else 'are'} marked as a duplicate of it. Delete "
            "the copies first, or put them back (Not a copy) if they are referrals of "
            "their own."
        )


@transaction.atomic
def referrals_delete(
    *, referrals: Iterable[Referral], actor: Any, request: HttpRequest | None = None
) -> int:
    """Delete these referrals with their history and their documents (rows, and files once
    committed); one audit row each. Returns how many were deleted (those deleted meanwhile
    by someone else are not counted). Raises
    ValidationError when one is kept for copies (check_referrals_delete)."""
    # intake.services logs referrals through this package: imported here, not at the top.
    from intake.models import ReferralAttachment
    from intake.services import attachment_files_delete

    # Locked first, lower id first as referral_mark_duplicate locks a pair: a mark being
    # saved finishes before the check below reads the copies (and the history rows the
    # delete collects), and one that comes after finds the referral gone. Unlocked, a
    # delete crossing a mark broke the database's constraint: a generic error.
    ids = list(
        Referral.objects.select_for_update()
        .filter(pk__in=[referral.pk for referral in referrals])
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    if not ids:
        return 0
    check_referrals_delete(ids=ids)
    attachment_files_delete(attachments=ReferralAttachment.objects.filter(referral_id__in=ids))
    audit_record(
        action=PatientDataAccess.Action.DELETE, referral_ids=ids, user=actor, request=request
    )
    Referral.objects.filter(pk__in=ids).delete()
    return len(ids)
