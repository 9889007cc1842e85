"""Two-factor sign-in: who must give a second factor, how it is set up and given, and that
nothing but the way in and out is reachable before it is."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import Group, User
from django.core.checks import run_checks
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils.html import escape
from django_otp.oath import TOTP
from django_otp.plugins.otp_static.models import StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts import services, twofactor
from core.factories import UserFactory
from core.roles import Role

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _required(settings: Any) -> None:
    settings.TWO_FACTOR_REQUIRED = True


def code_for(device: TOTPDevice, *, steps_ahead: int = 0) -> str:
    """What the user's app shows now (or `steps_ahead` 30-second steps from now)."""
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    totp.time = time.time() + steps_ahead * device.step
    return f"{totp.token():06d}"


def enrolled(user: User) -> tuple[TOTPDevice, list[str]]:
    device = services.authenticator_pending(user=user)
    codes = services.authenticator_confirm(device=device)
    device.refresh_from_db()
    return device, codes


def secret_shown(client: Client) -> str:
    """The key the set-up page gives to type into an app."""
    found = re.search(r"data-secret>([A-Z2-7 ]+)<", client.get(reverse("accounts:setup")).text)
    assert found is not None
    return found.group(1)


def signed_in(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def give_role(user: User, role: str) -> None:
    """What an administrator does in the admin: the user's groups are replaced."""
    user.groups.set([Group.objects.get(name=role)])


def test_manager_without_an_app_must_set_one_up_before_anything_else(manager: User) -> None:
    client = signed_in(manager)
    response = client.get(reverse("referrals:list") + "?status=received")
    assert response.status_code == 302
    assert response["Location"] == (
        reverse("accounts:setup") + "?next=%2Freferrals%2F%3Fstatus%3Dreceived"
    )
    # Posting somewhere is refused the same way, and changes nothing.
    response = client.post(reverse("partners:provider_create"), {"last_name": "Evil"})
    assert response.status_code == 302
    assert response["Location"] == reverse("accounts:setup")


def test_setting_up_checks_the_first_code_then_shows_backup_codes_once(manager: User) -> None:
    client = signed_in(manager)
    page = client.get(reverse("accounts:setup") + "?next=/partners/")
    assert page.status_code == 200
    assert b'src="data:image/svg+xml' in page.content
    device = TOTPDevice.objects.get(user=manager)
    assert not device.confirmed
    # The key a user would type matches the device's secret.
    assert twofactor.secret_for_typing(device).encode() in page.content
    # A reload shows the same QR code (the phone may have scanned it already).
    client.get(reverse("accounts:setup"))
    assert TOTPDevice.objects.filter(user=manager).count() == 1

    wrong = client.post(reverse("accounts:setup"), {"code": "000000", "next": "/partners/"})
    assert wrong.status_code == 200
    assert "That code is not right" in wrong.content.decode()
    device.refresh_from_db()
    assert not device.confirmed
    device.throttle_reset()  # the failure above would make the next try wait a second

    response = client.post(reverse("accounts:setup"), {"code": code_for(device)})
    assert response.status_code == 302
    assert response["Location"] == reverse("accounts:backup_codes")
    device.refresh_from_db()
    assert device.confirmed
    shown = client.get(reverse("accounts:backup_codes")).content.decode()
    stored = set(StaticToken.objects.filter(device__user=manager).values_list("token", flat=True))
    assert len(stored) == 10
    assert all(code in shown for code in stored)
    # Shown once only.
    again = client.get(reverse("accounts:backup_codes"))
    assert again.status_code == 302
    assert client.get(reverse("core:dashboard")).status_code == 200


def test_after_setting_up_the_backup_codes_page_goes_on_to_the_page_first_asked_for(
    manager: User,
) -> None:
    client = signed_in(manager)
    setup = client.get(reverse("partners:provider_list"), follow=True).redirect_chain[-1][0]
    client.get(setup)
    device = TOTPDevice.objects.get(user=manager)
    client.post(reverse("accounts:setup"), {"code": code_for(device), "next": "/partners/"})
    page = client.get(reverse("accounts:backup_codes")).content.decode()
    assert 'href="/partners/">I have saved them</a>' in page

    # New codes made on the security page go back to it.
    client.post(reverse("accounts:backup_codes_new"), {"new-code": code_for(device, steps_ahead=1)})
    page = client.get(reverse("accounts:backup_codes")).content.decode()
    assert f'href="{reverse("accounts:security")}">I have saved them</a>' in page


def test_signing_in_again_asks_for_the_code_and_a_code_works_once(manager: User) -> None:
    device, _ = enrolled(manager)
    client = signed_in(manager)
    first_key = client.session.session_key
    response = client.get(reverse("core:dashboard"))
    assert response["Location"] == reverse("accounts:verify") + "?next=%2F"
    code = code_for(device)
    response = client.post(reverse("accounts:verify"), {"code": code[:3] + " " + code[3:]})
    assert response.status_code == 302
    assert response["Location"] == "/"
    assert client.get(reverse("core:dashboard")).status_code == 200
    # A new session key once the second factor is given.
    assert client.session.session_key != first_key

    # The same code cannot sign in a second session (someone who watched it typed).
    other = signed_in(manager)
    replay = other.post(reverse("accounts:verify"), {"code": code})
    assert replay.status_code == 200
    assert "That code has been used already" in replay.content.decode()
    assert other.get(reverse("core:dashboard")).status_code == 302


def test_a_wrong_code_makes_the_next_try_wait(manager: User, settings: Any) -> None:
    # A minute's wait after one failure (1 second by default), so a slow run cannot outlast it.
    settings.OTP_TOTP_THROTTLE_FACTOR = 60
    device, _ = enrolled(manager)
    client = signed_in(manager)
    client.post(reverse("accounts:verify"), {"code": "123456"})
    response = client.post(reverse("accounts:verify"), {"code": code_for(device)})
    assert "Too many wrong codes. Wait until" in response.content.decode()
    assert client.get(reverse("core:dashboard")).status_code == 302


def test_a_backup_code_signs_in_once(manager: User) -> None:
    _, codes = enrolled(manager)
    client = signed_in(manager)
    response = client.post(reverse("accounts:verify"), {"code": codes[0].upper()}, follow=True)
    assert response.redirect_chain[-1][0] == "/"
    assert "You signed in with a backup code; 9 left" in response.content.decode()

    again = signed_in(manager)
    refused = again.post(reverse("accounts:verify"), {"code": codes[0]})
    assert "not one of your backup codes, or it has been used already" in refused.content.decode()


def test_a_code_of_superscript_digits_is_refused_in_words(manager: User) -> None:
    # "²³⁴⁵⁶⁷" are digits to Python's isdigit, but no number int() can read.
    enrolled(manager)
    client = signed_in(manager)
    response = client.post(reverse("accounts:verify"), {"code": "²³⁴⁵⁶⁷"})
    assert response.status_code == 200
    assert "not one of your backup codes" in response.content.decode()
    assert client.get(reverse("core:dashboard")).status_code == 302


def test_a_backup_code_of_digits_only_is_still_a_backup_code(manager: User) -> None:
    enrolled(manager)
    StaticToken.objects.filter(device__user=manager).update(token="23456723")
    client = signed_in(manager)
    response = client.post(reverse("accounts:verify"), {"code": "23456723"})
    assert response.status_code == 302
    assert client.get(reverse("core:dashboard")).status_code == 200


def test_the_set_up_page_cannot_replace_an_app_with_the_password_alone(manager: User) -> None:
    enrolled(manager)
    client = signed_in(manager)
    assert client.get(reverse("accounts:setup"))["Location"] == reverse("accounts:verify")
    attacker_device = TOTPDevice(user=manager, key=TOTPDevice().key)
    response = client.post(reverse("accounts:setup"), {"code": code_for(attacker_device)})
    assert response["Location"] == reverse("accounts:verify")
    assert TOTPDevice.objects.filter(user=manager, confirmed=False).count() == 0


def test_a_set_up_page_opened_with_the_password_alone_shows_a_key_the_user_never_confirms(
    manager: User,
) -> None:
    """Whoever has only the password of a manager who has not set up yet can open the
    set-up page. The key it shows must not be the one the manager later scans in their own
    browser and confirms: a copy of it would make their codes ever after."""
    intruder = signed_in(manager)
    seen = secret_shown(intruder)
    copied = TOTPDevice(user=manager, key=TOTPDevice.objects.get(user=manager).key)

    owner = signed_in(manager)
    shown = secret_shown(owner)
    assert shown != seen
    # A reload in the owner's browser keeps the owner's QR code.
    assert secret_shown(owner) == shown
    scanned = TOTPDevice.objects.filter(user=manager).latest("pk")
    owner.post(reverse("accounts:setup"), {"code": code_for(scanned)})
    assert list(TOTPDevice.objects.filter(user=manager, confirmed=True)) == [scanned]

    later = signed_in(manager)
    later.post(reverse("accounts:verify"), {"code": code_for(copied)})
    assert later.get(reverse("core:dashboard"))["Location"].startswith(reverse("accounts:verify"))


def test_set_ups_left_unfinished_in_other_browsers_do_not_pile_up(manager: User) -> None:
    yesterday = signed_in(manager)
    yesterday.get(reverse("accounts:setup"))
    left = TOTPDevice.objects.get(user=manager)
    TOTPDevice.objects.filter(pk=left.pk).update(created_at=left.created_at - timedelta(days=1))
    just_now = signed_in(manager)
    just_now.get(reverse("accounts:setup"))
    today = signed_in(manager)
    today.get(reverse("accounts:setup"))
    assert TOTPDevice.objects.filter(user=manager).count() == 2
    assert not TOTPDevice.objects.filter(pk=left.pk).exists()


def test_moving_to_a_new_phone_retires_the_old_one(manager: User) -> None:
    old, old_codes = enrolled(manager)
    client = signed_in(manager)
    client.post(reverse("accounts:verify"), {"code": code_for(old)})
    page = client.get(reverse("accounts:setup"))
    assert "Move two-factor sign-in to a new phone" in page.content.decode()
    new = TOTPDevice.objects.get(user=manager, confirmed=False)
    client.post(reverse("accounts:setup"), {"code": code_for(new)})
    assert list(TOTPDevice.objects.filter(user=manager)) == [new]
    assert not StaticToken.objects.filter(token__in=old_codes).exists()


def test_a_new_phone_signs_the_user_out_everywhere_else(manager: User, coordinator: User) -> None:
    """The old phone may be lost, and a session it verified must not outlive it: setting
    up the new one ends every other session of the user, and only theirs."""
    old, backup_codes = enrolled(manager)
    elsewhere, here = signed_in(manager), signed_in(manager)
    elsewhere.post(reverse("accounts:verify"), {"code": backup_codes[0]})
    here.post(reverse("accounts:verify"), {"code": code_for(old)})
    assert elsewhere.get(reverse("core:dashboard")).status_code == 200
    colleague = signed_in(coordinator)
    here.get(reverse("accounts:setup"))
    new = TOTPDevice.objects.get(user=manager, confirmed=False)
    here.post(reverse("accounts:setup"), {"code": code_for(new)})
    assert here.get(reverse("core:dashboard")).status_code == 200
    assert elsewhere.get(reverse("core:dashboard"))["Location"].startswith(reverse("login"))
    assert colleague.get(reverse("core:dashboard")).status_code == 200


def test_liaison_needs_no_second_factor_unless_they_chose_one(liaison: User) -> None:
    client = signed_in(liaison)
    assert client.get(reverse("core:dashboard")).status_code == 200
    # Later pages do not look for devices again (only the role, read with the permissions).
    with CaptureQueriesContext(connection) as queries:
        client.get(reverse("core:dashboard"))
    assert not any("otp_totp" in q["sql"] for q in queries.captured_queries)

    enrolled(liaison)
    later = signed_in(liaison)
    assert later.get(reverse("core:dashboard"))["Location"].startswith(reverse("accounts:verify"))


def test_a_liaison_promoted_to_manager_while_signed_in_must_set_up_the_app_on_the_next_page(
    liaison: User,
) -> None:
    client = signed_in(liaison)
    assert client.get(reverse("core:dashboard")).status_code == 200
    give_role(liaison, Role.MANAGER)
    response = client.get(reverse("partners:provider_list"))
    assert response.status_code == 302
    assert response["Location"] == reverse("accounts:setup") + "?next=%2Fpartners%2F"


def test_a_liaison_also_given_the_administrator_role_must_set_up_the_app(liaison: User) -> None:
    # Put in a second role group before the admin refused one: the user holds only the
    # liaison's permissions (the least privileged), but signs in as the strictest of their
    # groups asks.
    client = signed_in(liaison)
    assert client.get(reverse("core:dashboard")).status_code == 200
    liaison.groups.add(Group.objects.get(name=Role.ADMINISTRATOR))
    assert client.get(reverse("core:dashboard"))["Location"].startswith(reverse("accounts:setup"))
    assert twofactor.required_for(User.objects.get(pk=liaison.pk))


def test_a_user_made_staff_while_signed_in_must_set_up_the_app_on_the_next_page(
    coordinator: User,
) -> None:
    client = signed_in(coordinator)
    assert client.get(reverse("core:dashboard")).status_code == 200
    coordinator.is_staff = True
    coordinator.save(update_fields=["is_staff"])
    assert client.get(reverse("core:dashboard"))["Location"].startswith(reverse("accounts:setup"))


def test_a_promoted_user_who_already_has_an_app_is_asked_for_its_code(liaison: User) -> None:
    client = signed_in(liaison)
    assert client.get(reverse("core:dashboard")).status_code == 200
    # An app added while this session went on without one (set up on the security page,
    # the other sessions would have ended; the admin site's device pages leave them be).
    device = TOTPDevice.objects.create(user=liaison, name="Authenticator app", confirmed=True)
    assert client.get(reverse("core:dashboard")).status_code == 200
    give_role(liaison, Role.MANAGER)
    assert client.get(reverse("core:dashboard"))["Location"].startswith(reverse("accounts:verify"))
    client.post(reverse("accounts:verify"), {"code": code_for(device)})
    assert client.get(reverse("core:dashboard")).status_code == 200


def test_a_manager_demoted_while_signed_in_is_not_asked_for_a_second_factor(
    manager: User,
) -> None:
    client = signed_in(manager)
    assert client.get(reverse("core:dashboard"))["Location"].startswith(reverse("accounts:setup"))
    give_role(manager, Role.LIAISON)
    assert client.get(reverse("core:dashboard")).status_code == 200

    other = UserFactory.create(username="other_manager", role=Role.MANAGER)
    device, _ = enrolled(other)
    verified = signed_in(other)
    verified.post(reverse("accounts:verify"), {"code": code_for(device)})
    give_role(other, Role.COORDINATOR)
    assert verified.get(reverse("core:dashboard")).status_code == 200


def test_checking_the_role_on_every_page_costs_no_query_of_its_own(
    liaison: User, settings: Any
) -> None:
    client = signed_in(liaison)
    client.get(reverse("core:dashboard"))  # decides "not needed" and stamps the session
    with CaptureQueriesContext(connection) as checked:
        assert client.get(reverse("core:dashboard")).status_code == 200
    settings.TWO_FACTOR_REQUIRED = False  # the middleware no longer asks for the role
    with CaptureQueriesContext(connection) as unchecked:
        assert client.get(reverse("core:dashboard")).status_code == 200
    assert len(checked.captured_queries) == len(unchecked.captured_queries)


def test_htmx_requests_are_sent_to_the_whole_page(manager: User) -> None:
    client = signed_in(manager)
    response = client.get(reverse("referrals:list"), headers={"HX-Request": "true"})
    assert response.status_code == 200
    assert response["HX-Redirect"] == reverse("accounts:setup")
    assert response.content == b""


def test_the_admin_site_is_behind_the_second_factor_too() -> None:
    admin = UserFactory.create(username="root", is_staff=True, is_superuser=True)
    client = signed_in(admin)
    response = client.get("/admin/auth/user/")
    assert response["Location"].startswith(reverse("accounts:setup"))


def test_signing_out_works_before_the_second_factor(manager: User) -> None:
    enrolled(manager)
    client = signed_in(manager)
    response = client.post(reverse("logout"))
    assert response.status_code == 302
    assert "_auth_user_id" not in client.session


def test_next_never_leaves_the_site(manager: User) -> None:
    device, _ = enrolled(manager)
    client = signed_in(manager)
    response = client.post(
        reverse("accounts:verify"), {"code": code_for(device), "next": "https://evil.example/"}
    )
    assert response["Location"] == "/"


def test_new_backup_codes_need_a_code_from_the_app(manager: User) -> None:
    device, old_codes = enrolled(manager)
    client = signed_in(manager)
    client.post(reverse("accounts:verify"), {"code": old_codes[0]})
    refused = client.post(reverse("accounts:backup_codes_new"), {"new-code": old_codes[1]})
    assert refused.status_code == 400
    assert "Type the 6-digit code from your authenticator app" in refused.content.decode()
    made = client.post(reverse("accounts:backup_codes_new"), {"new-code": code_for(device)})
    assert made["Location"] == reverse("accounts:backup_codes")
    assert not StaticToken.objects.filter(token__in=old_codes).exists()
    assert StaticToken.objects.filter(device__user=manager).count() == 10


def test_a_required_role_cannot_turn_it_off(manager: User) -> None:
    device, _ = enrolled(manager)
    client = signed_in(manager)
    client.post(reverse("accounts:verify"), {"code": code_for(device)})
    client.post(reverse("accounts:off"), {"off-code": code_for(device, steps_ahead=1)})
    assert TOTPDevice.objects.filter(user=manager).exists()


def test_a_liaison_can_turn_it_off_with_a_code(liaison: User) -> None:
    device, backup_codes = enrolled(liaison)
    client = signed_in(liaison)
    client.post(reverse("accounts:verify"), {"code": code_for(device)})
    refused = client.post(reverse("accounts:off"), {"off-code": "<script>x</script>"})
    assert refused.status_code == 400
    assert b"<script>x" not in refused.content
    elsewhere = signed_in(liaison)
    elsewhere.post(reverse("accounts:verify"), {"code": backup_codes[0]})
    assert elsewhere.get(reverse("core:dashboard")).status_code == 200
    client.post(reverse("accounts:off"), {"off-code": code_for(device, steps_ahead=1)})
    assert not TOTPDevice.objects.filter(user=liaison).exists()
    assert client.get(reverse("core:dashboard")).status_code == 200
    # The other browser, verified with the factor now gone, is signed out.
    assert elsewhere.get(reverse("core:dashboard"))["Location"].startswith(reverse("login"))


def test_security_page_says_where_things_stand(manager: User) -> None:
    device, _ = enrolled(manager)
    client = signed_in(manager)
    client.post(reverse("accounts:verify"), {"code": code_for(device)})
    page = client.get(reverse("accounts:security")).content.decode()
    assert "Backup codes left: <strong>10</strong> of 10" in page
    assert "Your role requires two-factor sign-in" in page
    assert "Turn off two-factor sign-in" not in page


def test_off_for_the_demo_and_check_deploy_says_so(manager: User, settings: Any) -> None:
    settings.TWO_FACTOR_REQUIRED = False
    assert signed_in(manager).get(reverse("core:dashboard")).status_code == 200
    assert "accounts.W001" in [m.id for m in run_checks(include_deployment_checks=True)]
    settings.TWO_FACTOR_REQUIRED = True
    assert "accounts.W001" not in [m.id for m in run_checks(include_deployment_checks=True)]


def _settings_value(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    program = (
        "import django; django.setup(); from django.conf import settings; "
        "print(settings.TWO_FACTOR_REQUIRED)"
    )
    return subprocess.run([sys.executable, "-c", program], env=env, capture_output=True, text=True)


def test_required_unless_the_environment_says_otherwise() -> None:
    env = {k: v for k, v in os.environ.items() if k != "TWO_FACTOR_REQUIRED"}
    env["DJANGO_SETTINGS_MODULE"] = "referral_crm.settings"
    assert _settings_value(env).stdout.strip() == "True"
    assert _settings_value({**env, "TWO_FACTOR_REQUIRED": "false"}).stdout.strip() == "False"
    # Production refuses to start with it off.
    production = {
        **env,
        "DJANGO_ENV": "production",
        "DJANGO_SECRET_KEY": "x" * 20 + "a-long-random-production-key-0123456789",
        "DJANGO_ALLOWED_HOSTS": "referrals.example.org",
    }
    assert _settings_value(production).stdout.strip() == "True"
    refused = _settings_value({**production, "TWO_FACTOR_REQUIRED": "false"})
    assert refused.returncode != 0
    assert "TWO_FACTOR_REQUIRED cannot be off in production" in refused.stderr


def test_manager_role_is_required(manager: User, coordinator: User) -> None:
    assert twofactor.required_for(manager)
    assert not twofactor.required_for(coordinator)
    assert re.fullmatch(r"Referral CRM: manager", twofactor.app_label(manager))
    assert Role.MANAGER in twofactor.REQUIRED_ROLES


def test_setting_up_on_the_phone_itself_offers_a_link_that_opens_the_authenticator_app(
    manager: User,
) -> None:
    # A QR code cannot be scanned by the phone showing it: a liaison or manager setting up
    # from their phone had only the 32-letter key to type.
    page = signed_in(manager).get(reverse("accounts:setup")).content.decode()
    device = TOTPDevice.objects.get(user=manager)

    assert device.config_url.startswith("otpauth://totp/")
    assert f'<a href="{escape(device.config_url)}">' in page
    assert "On this phone? Open it in your authenticator app" in page
