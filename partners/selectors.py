"""Permission-aware lookups: the only way views fetch a partner record from user input."""

from __future__ import annotations

import calendar
import operator
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from functools import reduce
from typing import Any

from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.db.models import F, OuterRef, Q, QuerySet, Subquery
from django.http import Http404

from core.lookups import get_for_user
from core.roles import is_liaison
from core.templatetags.people import person
from partners.models import Organization, OrganizationRemoval, Provider, StaffMember


def get_provider_for_user(
    user: User,
    pk: int,
    *,
    write: bool = False,
) -> Provider:
    """The partner, if this user may read it (or change it, with `write`), with
    `npi_deactivated_on`: the day the NPPES registry lists their NPI as deactivated since
    (a physician who retired, moved away or died), or None, in the same query."""
    from registry.models import RegistryProvider

    deactivated_on = RegistryProvider.objects.filter(npi=OuterRef("npi"), deactivated=True).values(
        "deactivation_date"
    )[:1]
    return get_for_user(
        lambda writable: (
            Provider.objects.for_user(user, write=writable)
            .select_related("organization", "owner")
            .annotate(npi_deactivated_on=Subquery(deactivated_on))
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


def removed_staff(organization: Organization) -> QuerySet[Any]:
    """The staff removed from this office (in the admin), or from an office merged into
    it, newest first: the rows their history kept of the removal (history_type "-"),
    with who removed them. Their details are gone from the office, but what was changed,
    by whom, stays reachable. One query."""
    merged_in = OrganizationRemoval.objects.filter(merged_into=organization.pk).values(
        "organization_id"
    )
    return (
        StaffMember.history.filter(
            Q(organization_id=organization.pk) | Q(organization_id__in=merged_in),
            history_type="-",
        )
        .select_related("history_user")
        .order_by("-history_date", "-history_id")
    )


def get_removed_staff_member_for_user(
    user: User, organization_pk: int, pk: int
) -> tuple[Organization, Any]:
    """The office and the removal of staff member `pk` from it (their last history row),
    if this user may read the office's staff; 404 for someone still there or removed
    from another office."""
    organization = get_organization_for_user(user, organization_pk)
    if not user.has_perm("partners.view_staffmember"):
        raise PermissionDenied
    removal = removed_staff(organization).filter(id=pk).first()
    if removal is None or StaffMember.objects.filter(pk=pk).exists():
        raise Http404("No staff member removed from this office with that number.")
    return organization, removal


# Office staff birthdays shown ahead: a week, for a card or a box of cupcakes.
BIRTHDAY_DAYS = 7


@dataclass(frozen=True)
class Birthday:
    staff: StaffMember
    on: date


def next_birthday(birthday: date, today: date) -> date:
    """The day the birthday falls on next, today included; 29 February is kept on the
    28th in other years."""
    for year in (today.year, today.year + 1):
        try:
            on = birthday.replace(year=year)
        except ValueError:
            on = date(year, 2, 28)
        if on >= today:
            return on
    raise AssertionError("unreachable: a birthday comes round within a year")


def _birthdays_within(today: date, days: int) -> Q:
    matches = []
    for offset in range(days):
        day = today + timedelta(days=offset)
        matches.append(Q(birthday__month=day.month, birthday__day=day.day))
        if (day.month, day.day) == (2, 28) and not calendar.isleap(day.year):
            matches.append(Q(birthday__month=2, birthday__day=29))
    return reduce(operator.or_, matches)


def staff_birthdays(
    owner_ids: Iterable[int], *, today: date, days: int = BIRTHDAY_DAYS
) -> dict[int, list[Birthday]]:
    """For each owner: the birthdays in the next `days` days (today first) of the staff of
    the offices where they own a partner. One query, whatever the number of owners."""
    found: dict[int, list[Birthday]] = defaultdict(list)
    for member in (
        StaffMember.objects.filter(
            _birthdays_within(today, days), organization__providers__owner__in=list(owner_ids)
        )
        .select_related("organization")
        .annotate(owner=F("organization__providers__owner"))
        .order_by()
        .distinct()
    ):
        if member.birthday is not None:  # always: filtered on its month and day
            found[member.owner].append(Birthday(member, next_birthday(member.birthday, today)))
    for birthdays in found.values():
        birthdays.sort(key=lambda b: (b.on, b.staff.organization.name, b.staff.display_name))
    return found
