"""A practice manager turns on two-factor sign-in from a phone, then signs in with it."""

from __future__ import annotations

import re
import time
from base64 import b32decode
from typing import Any

import pytest
from django_otp.oath import TOTP

from core.factories import DEMO_PASSWORD, UserFactory
from core.roles import Role
from tests.test_browser import PHONE, browser, open_phone_menu, page  # noqa: F401 - shared fixtures

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def app_code(secret: str, *, steps_ahead: int = 0) -> str:
    """What an authenticator app holding `secret` (as typed from the page) shows."""
    totp = TOTP(b32decode(secret.replace(" ", "")))
    totp.time = time.time() + 30 * steps_ahead
    return f"{totp.token():06d}"


def sign_in(tab: Any, path: str = "/") -> None:
    tab.goto(path)
    tab.get_by_label("Username").fill("maria")
    tab.get_by_label("Password").fill(DEMO_PASSWORD)
    tab.get_by_role("button", name="Sign in").click()


def log_out(tab: Any) -> None:
    from playwright.sync_api import expect

    open_phone_menu(tab)
    tab.get_by_role("button", name="Log out").click()
    # Wait for the sign-in page: a goto() while the logout is posting would cancel it.
    expect(tab.get_by_role("button", name="Sign in")).to_be_visible()


def test_manager_sets_up_two_factor_and_signs_in_with_it(
    page: Any,  # noqa: F811
    settings: Any,
) -> None:
    from playwright.sync_api import expect

    settings.TWO_FACTOR_REQUIRED = True
    UserFactory.create(username="maria", first_name="Maria", role=Role.MANAGER)

    # The password alone leads to setting up an authenticator, whatever page was asked for.
    sign_in(page, "/referrals/")
    expect(page.get_by_role("heading", name="Set up two-factor sign-in")).to_be_visible()
    expect(page.get_by_role("img", name=re.compile("QR code"))).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    page.get_by_text("Can't scan it? Type this key instead").click()
    secret = page.locator("[data-secret]").inner_text()

    page.get_by_label("Code from the app").fill("000000")
    page.get_by_role("button", name="Turn on two-factor sign-in").click()
    expect(page.get_by_text("That code is not right")).to_be_visible()
    time.sleep(1.1)  # a wrong code makes the next try wait a second
    page.get_by_label("Code from the app").fill(app_code(secret))
    page.get_by_role("button", name="Turn on two-factor sign-in").click()
    expect(page.get_by_role("heading", name="Your backup codes")).to_be_visible()
    codes = page.locator(".backup-codes li").all_inner_texts()
    assert len(codes) == 10
    # On to the page first asked for.
    page.get_by_role("link", name="I have saved them").click()
    expect(page).to_have_url(re.compile(r"/referrals/$"))

    # Next time: password, then the app's code, then where the user was going.
    log_out(page)
    sign_in(page, "/referrals/")
    expect(page.get_by_role("heading", name="One more step")).to_be_visible()
    # No menus until the code is given, and typing an address leads back here.
    expect(page.get_by_role("button", name="Menu")).to_have_count(0)
    page.goto("/partners/")
    expect(page.get_by_role("heading", name="One more step")).to_be_visible()
    page.get_by_label("Code").fill(app_code(secret, steps_ahead=1))
    page.get_by_role("button", name="Continue").click()
    expect(page).to_have_url(re.compile(r"/partners/$"))

    # A backup code works when the phone is not at hand.
    log_out(page)
    sign_in(page)
    page.get_by_label("Code").fill(codes[0])
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_text("You signed in with a backup code; 9 left")).to_be_visible()
    assert page.problems == []
