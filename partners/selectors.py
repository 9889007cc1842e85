"""Permission-aware lookups: the only way views fetch a partner record from user input."""

from __future__ import annotations

from django.contrib.auth.models import User
from django.shortcuts import get_object_or_404

from core.roles import is_liaison
from partners.models import Organization, Provider, StaffMember


def get_provider_for_user(
    user: User,
    pk: int,
    *,
    write: bool = False,
) -> Provider:
    """The partner, if this user may read it (or change it, with `write`)."""
    queryset = Provider.objects.for_user(user, write=write).select_related("organization", "owner")
    return get_object_or_404(queryset, pk=pk)


def can_change_provider(user: User, provider: Provider) -> bool:
    """Whether `Provider.objects.for_user(user, write=True)` includes this partner, decided
    without a query for one already loaded (its owner is all the rule looks at)."""
    if not (user.has_perm("partners.view_provider") and user.has_perm("partners.change_provider")):
        return False
    return not is_liaison(user) or provider.owner_id in (None, user.pk)


def get_organization_for_user(user: User, pk: int, *, write: bool = False) -> Organization:
    perm = "partners.change_organization" if write else "partners.view_organization"
    queryset = Organization.objects.all() if user.has_perm(perm) else Organization.objects.none()
    return get_object_or_404(queryset, pk=pk)


def get_staff_member_for_user(user: User, pk: int, *, write: bool = False) -> StaffMember:
    perm = "partners.change_staffmember" if write else "partners.view_staffmember"
    queryset = StaffMember.objects.all() if user.has_perm(perm) else StaffMember.objects.none()
    return get_object_or_404(queryset.select_related("organization"), pk=pk)
