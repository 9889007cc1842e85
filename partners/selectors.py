"""Permission-aware lookups: the only way views fetch a partner record from user input."""

from __future__ import annotations

from django.contrib.auth.models import User
from django.db.models import QuerySet

from core.lookups import get_for_user
from core.roles import is_liaison
from core.templatetags.people import person
from partners.models import Organization, Provider, StaffMember


def get_provider_for_user(
    user: User,
    pk: int,
    *,
    write: bool = False,
) -> Provider:
    """The partner, if this user may read it (or change it, with `write`)."""
    return get_for_user(
        lambda writable: Provider.objects.for_user(user, write=writable).select_related(
            "organization", "owner"
        ),
        pk,
        write=write,
        refusal=_provider_refusal,
    )


def _provider_refusal(provider: Provider) -> str:
    if provider.owner_id is not None:
        return (
            f"{provider.display_name} is {person(provider.owner)}'s partner: only they or a "
            "manager can change it."
        )
    return f"Your role may read {provider.display_name} but not change it."


def can_change_provider(user: User, provider: Provider) -> bool:
    """Whether `Provider.objects.for_user(user, write=True)` includes this partner, decided
    without a query for one already loaded (its owner is all the rule looks at)."""
    if not (user.has_perm("partners.view_provider") and user.has_perm("partners.change_provider")):
        return False
    return not is_liaison(user) or provider.owner_id in (None, user.pk)


def get_organization_for_user(user: User, pk: int, *, write: bool = False) -> Organization:
    def visible(writable: bool) -> QuerySet[Organization]:
        perm = "partners.change_organization" if writable else "partners.view_organization"
        offices = Organization.objects.select_related("letters_opt_out_by")
        return offices if user.has_perm(perm) else Organization.objects.none()

    return get_for_user(
        visible,
        pk,
        write=write,
        refusal=lambda office: f"Your role may read {office.name} but not change it.",
    )


def get_staff_member_for_user(user: User, pk: int, *, write: bool = False) -> StaffMember:
    def visible(writable: bool) -> QuerySet[StaffMember]:
        perm = "partners.change_staffmember" if writable else "partners.view_staffmember"
        staff = StaffMember.objects.all() if user.has_perm(perm) else StaffMember.objects.none()
        return staff.select_related("organization")

    return get_for_user(
        visible,
        pk,
        write=write,
        refusal=lambda member: f"Your role may read {member.display_name} but not change it.",
    )
