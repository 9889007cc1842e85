"""Permission-aware lookups: the only way views fetch a referral from user input."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.shortcuts import get_object_or_404

from referrals.models import Referral


def get_referral_for_user(user: AbstractBaseUser, pk: int, *, write: bool = False) -> Referral:
    queryset = Referral.objects.for_user(user, write=write).select_related(
        "provider", "provider__organization", "provider__owner", "assigned_to", "created_by"
    )
    return get_object_or_404(queryset, pk=pk)
