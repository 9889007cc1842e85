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
