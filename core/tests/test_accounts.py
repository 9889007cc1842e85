from datetime import timedelta

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.contrib.sessions.models import Session
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils import timezone

from core.factories import DEMO_PASSWORD, UserFactory
from core.roles import Role

pytestmark = pytest.mark.django_db


class _Clock:
    """Moves django.utils.timezone.now (what sessions and the idle-logoff middleware read)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.offset = timedelta(0)
        real_now = timezone.now
        monkeypatch.setattr(timezone, "now", lambda: real_now() + self.offset)

    def shift(self, **delta: float) -> None:
        self.offset += timedelta(**delta)


@pytest.fixture
def time_machine_session(monkeypatch):
    return _Clock(monkeypatch)


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


@pytest.mark.parametrize(
    "username",
    [" mlopez", "mlopez ", "m lopez", "m" * 151, "m\x00lopez", "m/lopez"],
)
def test_create_user_refuses_a_name_the_sign_in_page_could_never_take(username):
    # The sign-in form trims spaces and the admin refuses such names: an account made with
    # one could never sign in, though the command printed its password.
    with pytest.raises(CommandError, match="Username refused"):
        call_command("create_user", username, "--role", "liaison")
    assert not get_user_model().objects.exists()


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


def test_sessions_end_after_fifteen_idle_minutes(client, time_machine_session):
    """An active user stays signed in; one idle for 15 minutes is signed out; and page
    views within a minute of each other do not rewrite the session."""
    assert settings.SESSION_COOKIE_AGE == 900
    client.force_login(UserFactory(role=Role.MANAGER))
    dashboard = reverse("core:dashboard")
    key = client.session.session_key

    def expiry():
        return Session.objects.get(session_key=key).expire_date

    assert client.get(dashboard).status_code == 200
    first = expiry()
    assert client.get(dashboard).status_code == 200
    assert expiry() == first  # no write for a second view within the minute

    time_machine_session.shift(seconds=61)
    assert client.get(dashboard).status_code == 200
    assert expiry() > first  # an active user's session is pushed forward

    time_machine_session.shift(seconds=14 * 60 + 30)
    assert client.get(dashboard).status_code == 200  # 14.5 idle minutes: still signed in

    time_machine_session.shift(seconds=15 * 60 + 1)
    response = client.get(dashboard)
    assert response.status_code == 302  # idle 15 minutes: signed out
    assert response.url.startswith(reverse("login"))


def test_a_progress_poll_does_not_keep_an_unattended_session_alive(client, time_machine_session):
    """A page left open on a running import polls every second: no one is at the screen,
    so the session still ends fifteen minutes after the last real request."""
    client.force_login(UserFactory(role=Role.MANAGER))
    dashboard = reverse("core:dashboard")
    poll = {"HTTP_HX_REQUEST": "true", "HTTP_X_PROGRESS_POLL": "1"}
    assert client.get(dashboard).status_code == 200
    for _ in range(14):  # a poll each minute for 14 minutes (each one would touch it)
        time_machine_session.shift(seconds=61)
        assert client.get(dashboard, **poll).status_code == 200
    time_machine_session.shift(seconds=900 - 14 * 61 + 1)
    assert client.get(dashboard).status_code == 302  # 15 minutes since the last real one


def test_a_user_signed_out_for_being_idle_is_told_why_on_the_sign_in_page(
    client, time_machine_session
):
    client.force_login(UserFactory(role=Role.MANAGER))
    assert client.get(reverse("core:dashboard")).status_code == 200
    time_machine_session.shift(seconds=15 * 60 + 1)
    page = client.get(reverse("referrals:list"), follow=True).content.decode()
    assert "You were signed out: 15 minutes passed without activity" in page
    # Someone who never signed in is just asked to.
    from django.test import Client

    fresh = Client().get(reverse("referrals:list"), follow=True).content.decode()
    assert "You were signed out" not in fresh


def test_the_sign_in_page_gives_the_idle_time_the_practice_set(client, settings):
    # SESSION_IDLE_SECONDS: a practice may choose a longer or shorter automatic logoff.
    settings.SESSION_COOKIE_AGE = 30 * 60
    page = client.get(reverse("login")).content.decode()
    assert "you are signed out after 30 minutes without activity" in page
    assert "15 minutes" not in page


def test_signing_out_on_purpose_says_so_plainly(client):
    client.force_login(UserFactory(role=Role.MANAGER))
    assert client.get(reverse("core:dashboard")).status_code == 200
    page = client.post(reverse("logout"), follow=True).content.decode()
    assert "You are signed out." in page
    assert "You were signed out" not in page


def test_a_form_posted_in_place_after_idle_logoff_takes_the_page_to_sign_in(
    client, time_machine_session
):
    """Not the sign-in page drawn inside the form; and not a success, so the form's draft
    on the device is kept for after signing in."""
    client.force_login(UserFactory(role=Role.LIAISON))
    assert client.get(reverse("core:dashboard")).status_code == 200
    time_machine_session.shift(seconds=15 * 60 + 1)
    response = client.post(
        "/outreach/day/visits/1/log/",
        {"notes": "Met Dr. Diaz"},
        HTTP_HX_REQUEST="true",
        HTTP_HX_CURRENT_URL="http://testserver/outreach/day/visits/1/log/?from=plan",
    )
    assert response.status_code == 401
    assert response["HX-Redirect"] == (
        reverse("login") + "?next=%2Foutreach%2Fday%2Fvisits%2F1%2Flog%2F%3Ffrom%3Dplan"
    )
    elsewhere = client.post(
        "/outreach/day/visits/1/log/",
        {},
        HTTP_HX_REQUEST="true",
        HTTP_HX_CURRENT_URL="https://evil.example/phish",
    )
    assert elsewhere["HX-Redirect"] == reverse("login") + "?next=%2Fphish"
    # An address the URL parser refuses (an unclosed IPv6 bracket) goes back to the start.
    garbled = client.post(
        "/outreach/day/visits/1/log/",
        {},
        HTTP_HX_REQUEST="true",
        HTTP_HX_CURRENT_URL="http://[testserver/outreach/",
    )
    assert garbled.status_code == 401
    assert garbled["HX-Redirect"] == reverse("login") + "?next=%2F"


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


def test_a_login_with_an_absurd_username_is_refused_not_a_server_error(db, client):
    response = client.post(
        "/accounts/login/", {"username": "x" * 20_000 + "\x00", "password": "wrong"}
    )
    assert response.status_code == 200
    assert not response.wsgi_request.user.is_authenticated
    assert 'name="username"' in response.content.decode()


def test_a_sign_in_with_an_absurdly_long_name_is_refused_not_crashed_on(client):
    from django.urls import reverse

    response = client.post(reverse("login"), {"username": "x" * 20_000, "password": "y" * 20_000})
    assert response.status_code == 200
