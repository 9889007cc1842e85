"""Permission-aware lookups for intake records."""

from __future__ import annotations

from django.contrib.auth.models import User
from django.http import Http404
from django.shortcuts import get_object_or_404

from intake.models import IntakeLink, ReferralAttachment
from referrals.models import Referral


def get_intake_link_for_user(user: User, pk: int) -> IntakeLink:
    if not user.has_perm("intake.change_intakelink"):
        raise Http404
    return get_object_or_404(IntakeLink.objects.select_related("organization"), pk=pk)


def get_attachment_for_user(user: User, pk: int) -> ReferralAttachment:
    """A document is patient data: only roles that see patient details, and only for a
    referral they may see."""
    if not user.has_perm("referrals.view_patient_details"):
        raise Http404
    visible = Referral.objects.for_user(user).values("pk")
    return get_object_or_404(
        ReferralAttachment.objects.filter(referral__in=visible).select_related("referral"),
        pk=pk,
    )
