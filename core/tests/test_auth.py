import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext

from core.factories import UserFactory
from core.roles import Role, user_role

pytestmark = pytest.mark.django_db


def fresh(user):
    return type(user).objects.get(pk=user.pk)


def test_role_and_permissions_come_from_one_query():
    user = fresh(UserFactory(role=Role.COORDINATOR))
    with CaptureQueriesContext(connection) as queries:
        assert user_role(user) == Role.COORDINATOR
        assert user.has_perm("referrals.view_patient_details")
        assert not user.has_perm("partners.change_tier")
        assert user.get_all_permissions() >= {"referrals.view_referral"}
    assert len(queries) == 1


def test_permissions_are_those_of_django_model_backend():
    from django.contrib.auth.backends import ModelBackend

    user = UserFactory(role=Role.LIAISON)
    user.user_permissions.add(Permission.objects.get(codename="delete_referral"))
    ours = fresh(user)
    reference = ModelBackend()
    theirs = fresh(user)
    assert ours.get_all_permissions() == reference.get_all_permissions(theirs)
    assert ours.has_perm("referrals.delete_referral")
    assert user_role(ours) == Role.LIAISON


def test_inactive_users_and_superusers_keep_django_rules():
    inactive = UserFactory(role=Role.MANAGER, is_active=False)
    assert not fresh(inactive).has_perm("referrals.view_referral")
    admin = UserFactory(is_superuser=True)
    assert fresh(admin).has_perm("anything.at_all")
    assert user_role(fresh(admin)) == Role.ADMINISTRATOR


def test_template_perms_ask_each_permission_once_a_page(monkeypatch):
    from django.test import RequestFactory

    from core.context_processors import remembered_perms

    user = fresh(UserFactory(role=Role.COORDINATOR))
    asked = []
    original = type(user).has_perm

    def counting(self, perm, obj=None):
        asked.append(perm)
        return original(self, perm, obj)

    monkeypatch.setattr(type(user), "has_perm", counting)
    request = RequestFactory().get("/")
    request.user = user
    perms = remembered_perms(request)["perms"]
    answers = [perms["referrals"]["view_patient_details"] for _ in range(25)]
    assert answers == [True] * 25
    assert "referrals.view_patient_details" in perms
    assert not perms["partners"]["change_tier"]
    assert "partners.change_tier" not in perms
    assert asked == ["referrals.view_patient_details", "partners.change_tier"]
    # Still a module check, as Django's `{% if perms.referrals %}`.
    assert perms["referrals"] and "referrals" in perms


def _in_groups(*roles: str):
    """A user put in several role groups, in this order (as the admin allowed)."""
    from django.contrib.auth.models import Group

    user = UserFactory.create()
    for role in roles:
        user.groups.add(Group.objects.get(name=role))
    return fresh(user)


@pytest.mark.parametrize(
    ("roles", "least"),
    [
        ((Role.MANAGER, Role.LIAISON), Role.LIAISON),
        ((Role.LIAISON, Role.MANAGER), Role.LIAISON),
        ((Role.COORDINATOR, Role.LIAISON), Role.LIAISON),
        ((Role.MANAGER, Role.COORDINATOR), Role.COORDINATOR),
        ((Role.ADMINISTRATOR, Role.COORDINATOR), Role.COORDINATOR),
        ((Role.ADMINISTRATOR, Role.MANAGER, Role.LIAISON), Role.LIAISON),
    ],
)
def test_a_user_in_several_role_groups_has_the_least_privileged_role_whatever_the_order(
    roles, least
):
    from django.contrib.auth.models import User

    from core.roles import prefetched_role

    user = _in_groups(*roles)
    assert user_role(user) == least
    listed = User.objects.prefetch_related("groups").get(pk=user.pk)
    assert prefetched_role(listed) == least


def test_a_user_in_several_role_groups_holds_only_that_roles_permissions():
    from core.roles import ROLE_PERMISSIONS

    user = _in_groups(Role.MANAGER, Role.LIAISON)
    with CaptureQueriesContext(connection) as queries:
        assert user.get_all_permissions() == set(ROLE_PERMISSIONS[Role.LIAISON])
        # A liaison's rights, scoped as a liaison's: no patient details, no tiering.
        assert not user.has_perm("referrals.view_patient_details")
        assert not user.has_perm("partners.change_tier")
        assert user.has_perm("outreach.add_plannedvisit")
    assert len(queries) == 1

    coordinator = _in_groups(Role.ADMINISTRATOR, Role.COORDINATOR)
    assert coordinator.get_all_permissions() == set(ROLE_PERMISSIONS[Role.COORDINATOR])


def test_a_group_that_is_no_role_and_the_users_own_permissions_still_count():
    from django.contrib.auth.models import Group

    extra = Group.objects.create(name="Newsletter editors")
    extra.permissions.add(Permission.objects.get(codename="add_newsletterissue"))
    user = UserFactory(role=Role.LIAISON)
    user.groups.add(extra, Group.objects.get(name=Role.MANAGER))
    user.user_permissions.add(Permission.objects.get(codename="delete_referral"))
    user = fresh(user)

    assert user_role(user) == Role.LIAISON
    assert user.has_perm("outreach.add_newsletterissue")
    assert user.has_perm("referrals.delete_referral")
    assert not user.has_perm("referrals.view_patient_details")


def test_a_liaison_in_two_role_groups_sees_only_their_own_partners_referrals(client_for):
    from django.urls import reverse

    from partners.factories import ProviderFactory
    from referrals.factories import ReferralFactory

    user = _in_groups(Role.COORDINATOR, Role.LIAISON)
    theirs = ReferralFactory(provider=ProviderFactory(owner=user))
    others = ReferralFactory(provider=ProviderFactory())

    client = client_for(user)
    assert client.get(theirs.get_absolute_url()).status_code == 200
    assert client.get(others.get_absolute_url()).status_code == 404
    assert client.get(reverse("referrals:create")).status_code == 403


def test_lists_of_people_by_role_follow_the_role_a_user_is_held_to():
    from django.contrib.auth.models import User

    from core.roles import role_holders

    liaison = UserFactory(role=Role.LIAISON)
    coordinator = UserFactory(role=Role.COORDINATOR)
    manager = UserFactory(role=Role.MANAGER)
    liaison_too = _in_groups(Role.COORDINATOR, Role.LIAISON)  # held to Liaison
    coordinator_too = _in_groups(Role.MANAGER, Role.COORDINATOR)  # held to Coordinator

    def holders(*roles):
        return set(User.objects.filter(role_holders(*roles)))

    assert holders(Role.COORDINATOR, Role.MANAGER) == {coordinator, manager, coordinator_too}
    assert holders(Role.LIAISON, Role.MANAGER) == {liaison, manager, liaison_too}
    assert holders(Role.LIAISON) == {liaison, liaison_too}
    assert holders(Role.MANAGER) == {manager}


def test_a_user_held_to_liaison_is_not_offered_to_take_referrals():
    from referrals.forms import coordinator_choices

    coordinator = UserFactory(role=Role.COORDINATOR)
    liaison_too = _in_groups(Role.COORDINATOR, Role.LIAISON)

    assert list(coordinator_choices()) == [coordinator]
    # Holding one already, they stay on that referral's form.
    assert set(coordinator_choices(holder=liaison_too.pk)) == {coordinator, liaison_too}


def test_a_user_held_to_coordinator_is_not_offered_as_a_partners_owner():
    from partners.forms import liaison_choices
    from registry.forms import liaison_queryset

    manager = UserFactory(role=Role.MANAGER)
    _in_groups(Role.MANAGER, Role.COORDINATOR)

    assert list(liaison_choices()) == [manager]
    assert list(liaison_queryset()) == [manager]
