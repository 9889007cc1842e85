"""The four roles of the product and the permissions each one holds.

Roles are Django groups, so an administrator can see and adjust them in the admin, but this
module is the source of truth: `sync_roles()` (run after every migrate) resets each group to
the permissions listed here.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.contrib.auth.models import Group, Permission, User
from django.db import transaction
from django.db.models import Exists, OuterRef, Q


class Role:
    MANAGER = "Practice manager"
    LIAISON = "Liaison"
    COORDINATOR = "Referral coordinator"
    ADMINISTRATOR = "Administrator"

    ALL = (MANAGER, LIAISON, COORDINATOR, ADMINISTRATOR)
    # Least privileged first: a user the admin once put in several role groups is given the
    # first of theirs (`least_privileged`). A liaison sees no patient details and only
    # their own partners' referrals; a coordinator sees every referral; a manager adds the
    # reports, tiering and the team; an administrator holds every permission.
    BY_PRIVILEGE = (LIAISON, COORDINATOR, MANAGER, ADMINISTRATOR)
    # Short names for the command line (`create_user --role liaison`).
    BY_SLUG = {
        "manager": MANAGER,
        "liaison": LIAISON,
        "coordinator": COORDINATOR,
        "admin": ADMINISTRATOR,
    }


def _crud(app_model: str, *actions: str) -> list[str]:
    app, model = app_model.split(".")
    return [f"{app}.{action}_{model}" for action in actions]


ALL_ACTIONS = ("view", "add", "change", "delete")

ROLE_PERMISSIONS: dict[str, list[str]] = {
    Role.MANAGER: [
        *_crud("partners.organization", *ALL_ACTIONS),
        *_crud("partners.provider", *ALL_ACTIONS),
        *_crud("partners.staffmember", *ALL_ACTIONS),
        "partners.change_tier",
        "partners.merge_partners",
        "partners.import_partners",
        "partners.export_partners",
        *_crud("referrals.referral", *ALL_ACTIONS),
        "referrals.view_patient_details",
        "referrals.view_referralevent",
        "referrals.view_referral_reports",
        *_crud("referrals.inquiry", "view", "add", "change"),
        *_crud("outreach.activity", *ALL_ACTIONS),
        *_crud("outreach.task", *ALL_ACTIONS),
        "outreach.view_all_tasks",
        *_crud("outreach.letter", "view", "change"),
        *_crud("outreach.lettertemplate", "view", "change"),
        *_crud("outreach.plannedvisit", *ALL_ACTIONS),
        *_crud("outreach.compliancelimit", "view", "add", "change"),
        "outreach.view_compliance_report",
        "outreach.override_compliance_limit",
        *_crud("outreach.event", *ALL_ACTIONS),
        *_crud("outreach.invitation", *ALL_ACTIONS),
        *_crud("outreach.newsletterissue", "view", "add"),
        *_crud("intake.intakelink", "view", "add", "change"),
        "audit.view_patientdataaccess",
        "registry.view_registryprovider",
        *_crud("registry.practicelocation", *ALL_ACTIONS),
    ],
    Role.LIAISON: [
        *_crud("partners.organization", "view", "add", "change"),
        *_crud("partners.provider", "view", "add", "change"),
        *_crud("partners.staffmember", "view", "add", "change"),
        # Liaisons see the referrals of their partners, with patient initials only.
        "referrals.view_referral",
        "referrals.view_referralevent",
        *_crud("outreach.activity", "view", "add", "change"),
        *_crud("outreach.task", "view", "add", "change"),
        "outreach.view_letter",
        # Prospecting: the provider finder, measured from our locations.
        "registry.view_registryprovider",
        "registry.view_practicelocation",
        *_crud("outreach.plannedvisit", *ALL_ACTIONS),
        *_crud("outreach.event", "view", "add", "change"),
        *_crud("outreach.invitation", "view", "add", "change"),
    ],
    Role.COORDINATOR: [
        *_crud("partners.organization", "view", "add", "change"),
        *_crud("partners.provider", "view", "add", "change"),
        *_crud("partners.staffmember", "view", "add", "change"),
        *_crud("referrals.referral", "view", "add", "change"),
        "referrals.view_patient_details",
        "referrals.view_referralevent",
        *_crud("referrals.inquiry", "view", "add", "change"),
        *_crud("outreach.activity", "view", "add"),
        *_crud("outreach.task", "view", "add", "change"),
        "outreach.view_letter",
        # Coordinators work the print/fax queue.
        "outreach.change_letter",
        *_crud("intake.intakelink", "view", "add", "change"),
        "registry.view_registryprovider",
        "registry.view_practicelocation",
    ],
    # Administrators get every permission; see sync_roles.
    Role.ADMINISTRATOR: [],
}


def _permissions(names: list[str]) -> list[Permission]:
    query = Q(pk__in=[])
    for name in names:
        app_label, codename = name.split(".")
        query |= Q(content_type__app_label=app_label, codename=codename)
    found = list(Permission.objects.filter(query).select_related("content_type"))
    missing = set(names) - {f"{p.content_type.app_label}.{p.codename}" for p in found}
    if missing:
        raise LookupError(f"Unknown permissions in ROLE_PERMISSIONS: {sorted(missing)}")
    return found


@transaction.atomic
def sync_roles() -> None:
    for role in Role.ALL:
        group, _ = Group.objects.get_or_create(name=role)
        if role == Role.ADMINISTRATOR:
            group.permissions.set(Permission.objects.all())
        else:
            group.permissions.set(_permissions(ROLE_PERMISSIONS[role]))


def sync_roles_after_migrate(*, using: str = "default", **kwargs: Any) -> None:
    # post_migrate reaches core before the apps listed after it have their permissions,
    # so create them all first (create_permissions is idempotent).
    from django.apps import apps
    from django.contrib.auth.management import create_permissions

    for app_config in apps.get_app_configs():
        create_permissions(app_config, verbosity=0, using=using)
    sync_roles()


# Who may own a partner relationship (Provider.owner): the people who visit and call.
PARTNER_OWNER_ROLES = (Role.LIAISON, Role.MANAGER)


def least_privileged(group_names: Iterable[str]) -> str | None:
    """The role among these group names that may do least (Role.BY_PRIVILEGE), or None.

    The admin refuses a second role group (accounts.admin), but users saved before then
    may have several: they get the narrowest, whose permissions alone they hold
    (core.auth.load_access), never a broader role's rights under a narrower role's scope."""
    names = set(group_names)
    return next((role for role in Role.BY_PRIVILEGE if role in names), None)


def role_holders(*roles: str) -> Q:
    """A filter on users: those whose role (user_role: the least privileged of their role
    groups) is one of `roles`, for the lists people are picked from (owners, assignees).
    Exists subqueries, so no join repeats a user."""
    held = Q(pk__in=[])
    for role in roles:
        narrower = Role.BY_PRIVILEGE[: Role.BY_PRIVILEGE.index(role)]
        in_role = Q(_in_groups([role]))
        held |= in_role & ~Q(_in_groups(narrower)) if narrower else in_role
    return held


def _in_groups(names: Iterable[str]) -> Exists:
    return Exists(
        User.groups.through.objects.filter(user_id=OuterRef("pk"), group__name__in=list(names))
    )


def user_role(user: Any) -> str | None:
    """The user's role; with several role groups the least privileged (least_privileged).
    Cached on the user object for the request, like Django's own permission cache."""
    if not user.is_authenticated:
        return None
    if not hasattr(user, "_referral_crm_role"):
        role = None
        if user.is_superuser:
            role = Role.ADMINISTRATOR
        else:
            from core.auth import load_access

            load_access(user)  # group names and permissions in one query
            role = least_privileged(user._group_names)
        user._referral_crm_role = role
    return user._referral_crm_role


def user_roles(user: Any) -> frozenset[str]:
    """Every role group the user is in (users saved before the admin refused a second
    one may be in several): two-factor sign-in asks for the strictest rule of any of
    them, while their permissions are those of `user_role` alone. Read with the
    permissions, in the one query of `core.auth.load_access`."""
    if not user.is_authenticated:
        return frozenset()
    if user.is_superuser:
        return frozenset({Role.ADMINISTRATOR})
    from core.auth import load_access

    load_access(user)
    return frozenset(role for role in Role.ALL if role in user._group_names)


def prefetched_role(user: Any) -> str | None:
    """The role of a user read with `prefetch_related("groups")`, as `user_role` would say,
    without a query: for lists of people."""
    if user.is_superuser:
        return Role.ADMINISTRATOR
    return least_privileged(group.name for group in user.groups.all())


# Handing over work means changing partners, referrals, tasks, day plans and events that are
# someone else's: together only managers and administrators hold these (a coordinator cannot
# plan visits or see everyone's tasks; a liaison changes no referral).
HANDOVER_PERMISSIONS = (
    "partners.change_provider",
    "referrals.change_referral",
    "outreach.change_task",
    "outreach.view_all_tasks",
    "outreach.change_plannedvisit",
    "outreach.change_event",
)


def can_hand_over_work(user: Any) -> bool:
    return bool(user.has_perms(HANDOVER_PERMISSIONS))


def is_liaison(user: Any) -> bool:
    return user_role(user) == Role.LIAISON
