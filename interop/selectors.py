"""What an API token's user may read: the same permission-aware querysets as the pages,
with the joins each resource needs so a page of results is one query."""

from __future__ import annotations

from django.contrib.auth.models import User
from django.db.models import QuerySet

from partners.models import (
    Organization,
    OrganizationRemoval,
    Provider,
    ProviderQuerySet,
    ProviderRemoval,
)
from referrals.models import Referral, ReferralQuerySet


def providers_for(user: User) -> ProviderQuerySet:
    return Provider.objects.for_user(user).select_related("organization")


def provider_removals_for(user: User) -> QuerySet[ProviderRemoval]:
    """Who may read partners may learn which are gone; oldest first, so a page already
    read keeps its rows as new removals come in."""
    if not user.has_perm("partners.view_provider"):
        return ProviderRemoval.objects.none()
    return ProviderRemoval.objects.order_by("removed_at", "pk")


def organizations_for(user: User) -> QuerySet[Organization]:
    if not user.has_perm("partners.view_organization"):
        return Organization.objects.none()
    return Organization.objects.all()


def organization_removals_for(user: User) -> QuerySet[OrganizationRemoval]:
    """Who may read offices may learn which are gone."""
    if not user.has_perm("partners.view_organization"):
        return OrganizationRemoval.objects.none()
    return OrganizationRemoval.objects.order_by("removed_at", "pk")


def referrals_for(user: User) -> ReferralQuerySet:
    # hl7_import: a ServiceRequest shows the identifier it was posted with.
    return Referral.objects.for_user(user).select_related(
        "provider", "provider__organization", "hl7_import"
    )
