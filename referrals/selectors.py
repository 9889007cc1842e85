"""Permission-aware lookups: the only way views fetch a referral from user input."""

from __future__ import annotations

from datetime import date, timedelta

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Q
from django.db.models.functions import Lower, Trim
from django.shortcuts import get_object_or_404
from django.utils import timezone

from partners.models import Provider
from referrals.models import Referral, ReferralQuerySet


def get_referral_for_user(user: AbstractBaseUser, pk: int, *, write: bool = False) -> Referral:
    queryset = Referral.objects.for_user(user, write=write).select_related(
        "provider", "provider__organization", "provider__owner", "assigned_to", "created_by"
    )
    return get_object_or_404(queryset, pk=pk)


def possible_duplicates(
    *,
    provider: Provider,
    patient_last_name: str,
    patient_dob: date,
    exclude_pk: int | None = None,
) -> ReferralQuerySet:
    """Referrals that may be this one again: the same patient (last name, ignoring case
    and surrounding spaces, and birth date) from the same partner (the provider, or any
    provider of the same office) within settings.DUPLICATE_WINDOW_DAYS."""
    since = timezone.now() - timedelta(days=settings.DUPLICATE_WINDOW_DAYS)
    partner = Q(provider=provider)
    if provider.organization_id is not None:
        partner |= Q(provider__organization_id=provider.organization_id)
    matches = (
        Referral.objects.alias(last_name_key=Lower(Trim("patient_last_name")))
        .filter(
            partner,
            last_name_key=patient_last_name.strip().lower(),
            patient_dob=patient_dob,
            received_at__gte=since,
        )
        .for_list()
    )
    if exclude_pk is not None:
        matches = matches.exclude(pk=exclude_pk)
    return matches
