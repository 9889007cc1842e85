import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management import CommandError, call_command
from django.urls import reverse

from core.factories import DEMO_PASSWORD, UserFactory
from core.roles import Role

pytestmark = pytest.mark.django_db


def test_every_role_exists_after_migrate():
    assert set(Group.objects.values_list("name", flat=True)) >= set(Role.ALL)


def test_create_user_gives_the_role_and_a_usable_password(capsys):
    call_command("create_user", "jcarter", "--role", "liaison", "--first-name", "Jamie")
    output = capsys.readouterr().out
    user = get_user_model().objects.get(username="jcarter")
    password = output.split("Password: ")[1].strip()
    assert user.check_password(password)
    assert list(user.groups.values_list("name", flat=True)) == [Role.LIAISON]
    assert not user.is_staff


def test_create_user_makes_administrators_staff():
    call_command("create_user", "root2", "--role", "admin", "--password", "a-Long-pass-2026")
    assert get_user_model().objects.get(username="root2").is_staff


def test_create_user_refuses_a_weak_password_and_a_taken_name():
    with pytest.raises(CommandError, match="Password refused"):
        call_command("create_user", "weak", "--role", "liaison", "--password", "123")
    UserFactory(username="taken")
    with pytest.raises(CommandError, match="already exists"):
        call_command("create_user", "taken", "--role", "liaison")


def test_a_liaison_cannot_delete_referrals_or_change_tiers_but_a_manager_can():
    liaison = UserFactory(role=Role.LIAISON)
    coordinator = UserFactory(role=Role.COORDINATOR)
    manager = UserFactory(role=Role.MANAGER)
    assert not liaison.has_perm("referrals.delete_referral")
    assert not liaison.has_perm("referrals.view_patient_details")
    assert not coordinator.has_perm("partners.change_tier")
    assert coordinator.has_perm("referrals.view_patient_details")
    assert manager.has_perm("partners.change_tier")
    assert manager.has_perm("referrals.delete_referral")


def test_sessions_end_after_fifteen_idle_minutes():
    assert settings.SESSION_COOKIE_AGE == 900
    assert settings.SESSION_SAVE_EVERY_REQUEST


def test_pages_require_sign_in(client):
    response = client.get(reverse("referrals:list"))
    assert response.status_code == 302
    assert response.url.startswith(reverse("login"))


def test_five_failed_sign_ins_lock_the_account(client):
    UserFactory(username="target")
    for _ in range(5):
        client.post(reverse("login"), {"username": "target", "password": "wrong"})
    response = client.post(reverse("login"), {"username": "target", "password": DEMO_PASSWORD})
    assert response.status_code == 429
    assert b"Too many failed sign-ins" in response.content


def test_signed_in_pages_are_never_cached(client):
    client.force_login(UserFactory(role=Role.MANAGER))
    response = client.get(reverse("core:dashboard"))
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
