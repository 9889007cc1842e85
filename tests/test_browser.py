"""A person's first loop through the product, in Debian's chromium at phone width."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.conf import settings
from django.utils import timezone

from core.factories import DEMO_PASSWORD, UserFactory
from core.roles import Role
from outreach.models import Task

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Playwright's sync API keeps an event loop in this thread; Django's ORM calls from the
# test body are still synchronous and safe.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    if not os.path.exists(CHROMIUM):
        pytest.fail(f"Browser tests need Debian's chromium at {CHROMIUM} (make test installs it).")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-background-networking", "--disable-gpu"],
        )
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Any, live_server: Any) -> Iterator[Any]:
    context = browser.new_context(viewport=PHONE, base_url=live_server.url)
    page = context.new_page()
    page.set_default_timeout(15_000)
    problems: list[str] = []
    page.on("console", lambda m: problems.extend([m.text] if m.type == "error" else []))
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.problems = problems
    yield page
    context.close()


def open_phone_menu(page: Any) -> None:
    """Opens the phone's collapsed navigation and waits for it to finish opening: a tap on
    an item while it slides open (Bootstrap's 0.35 s transition) can land on nothing, and
    then nothing happens (seen in CI: Log out tapped 50 ms after Menu posted nothing)."""
    from playwright.sync_api import expect

    page.get_by_role("button", name="Menu").click()
    expect(page.locator("#main-nav")).to_have_class(re.compile(r"(^|\s)show(\s|$)"))


def test_a_manager_adds_a_partner_logs_a_referral_and_finds_the_thank_you_task(
    page: Any, celery_worker_process: Any
) -> None:
    from playwright.sync_api import expect

    UserFactory(username="maria", first_name="Maria", role=Role.MANAGER)
    assert settings.SESSION_COOKIE_AGE == 15 * 60

    page.goto("/")
    page.get_by_label("Username").fill("maria")
    page.get_by_label("Password").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name=re.compile("Maria"))).to_be_visible()

    # Add a partner from the dashboard. A wrong NPI is refused and nothing typed is lost.
    page.get_by_role("link", name="Add a partner").click()
    page.get_by_label("NPI").fill("1679576723")
    page.get_by_label("First name").fill("David")
    page.get_by_label("Last name").fill("Wiebe")
    page.get_by_label("Credential").fill("MD")
    page.get_by_label("Specialty").fill("Orthopaedic Surgery")
    page.get_by_role("button", name="Add partner").click()
    expect(page.get_by_text("check digit is wrong")).to_be_visible()
    expect(page.get_by_label("Last name")).to_have_value("Wiebe")
    page.get_by_label("NPI").fill("1679576722")
    page.get_by_role("button", name="Add partner").click()
    expect(page.get_by_role("heading", name="David Wiebe, MD")).to_be_visible()

    # Log an inbound referral from his page; the partner is already chosen.
    page.get_by_role("link", name="Log a referral").click()
    page.get_by_label("Patient first name").fill("Ruth")
    page.get_by_label("Patient last name").fill("Olsen")
    page.get_by_label("Patient date of birth").fill("1950-04-02")
    page.get_by_label("Reason for referral").fill("Chronic knee pain")
    page.get_by_role("button", name="Log referral").click()
    status = page.get_by_test_id("status")
    expect(status).to_have_text("Received")

    # Work it through the pipeline without a page reload (htmx).
    page.get_by_role("button", name="Accept").click()
    expect(status).to_have_text("Accepted")
    page.get_by_text("Schedule…").click()
    # A date before the referral came in is refused next to the field; the step stays open
    # with the date and the note as typed.
    yesterday = timezone.localdate() - timedelta(days=1)
    page.get_by_label("Appointment date and time").fill(f"{yesterday}T09:00")
    page.locator('details[data-step="scheduled"]').get_by_label("Note (optional)").fill(
        "Booked with Dr. Lee"
    )
    page.get_by_role("button", name="Schedule", exact=True).click()
    expect(page.get_by_text("before the referral was received")).to_be_visible()
    expect(page.get_by_label("Appointment date and time")).to_have_value(f"{yesterday}T09:00")
    expect(
        page.locator('details[data-step="scheduled"]').get_by_label("Note (optional)")
    ).to_have_value("Booked with Dr. Lee")
    expect(status).to_have_text("Accepted")
    # Booked for later today: a patient is marked seen on the day of the appointment.
    page.get_by_label("Appointment date and time").fill(f"{timezone.localdate()}T23:55")
    page.get_by_role("button", name="Schedule", exact=True).click()
    expect(status).to_have_text("Scheduled")
    # The appointment is still to come: no no-show yet, and the page says why.
    expect(page.get_by_role("button", name="No-show")).to_have_count(0)
    expect(page.get_by_test_id("not-yet")).to_contain_text("once that time has passed")
    expect(status).to_have_text("Scheduled")
    page.get_by_role("button", name="Mark seen").click()
    expect(status).to_have_text("Seen")

    # The worker prepares the thank-you; it shows up in My tasks.
    for _ in range(40):
        if Task.objects.filter(kind=Task.Kind.THANK_YOU).exists():
            break
        page.wait_for_timeout(500)
    page.goto("/outreach/tasks/")
    expect(
        page.get_by_role("link", name=re.compile("Thank David Wiebe, MD for referring R.O."))
    ).to_be_visible()
    assert page.problems == []


def test_the_menu_groups_pages_and_works_on_a_phone_and_a_desktop(page: Any) -> None:
    from playwright.sync_api import expect

    UserFactory(username="dana", role=Role.MANAGER)
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill("dana")
    page.get_by_label("Password").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Sign in").click()

    # Phone: the menu is behind its button; a group opens in place and leads to its page.
    open_phone_menu(page)
    page.get_by_role("button", name="Referrals").or_(
        page.get_by_role("link", name="Referrals", exact=True)
    ).click()
    page.get_by_role("link", name="Work queue").click()
    expect(page).to_have_url(re.compile(r"/referrals/$"))
    expect(page.get_by_role("heading", name="Referral work queue")).to_be_visible()

    # Desktop: the grouped menu fits on one line.
    page.set_viewport_size({"width": 1280, "height": 800})
    page.goto("/")
    height = page.locator("nav.navbar").evaluate("nav => nav.getBoundingClientRect().height")
    assert height < 80, f"the menu wraps onto more lines ({height}px)"
    page.get_by_role("button", name="Outreach").or_(
        page.get_by_role("link", name="Outreach", exact=True)
    ).click()
    page.get_by_role("link", name="Gifts & meals").click()
    expect(page).to_have_url(re.compile(r"/outreach/"))
    assert page.problems == []


def test_a_no_show_is_asked_once_more_before_its_letter_goes(
    page: Any, celery_worker_process: Any
) -> None:
    from playwright.sync_api import expect

    from conftest import wait_for
    from outreach.models import Letter, LetterTemplate
    from partners.factories import ProviderFactory
    from referrals.factories import ReferralFactory
    from referrals.services.workflow import referral_log, referral_transition

    UserFactory(username="carla", role=Role.COORDINATOR)
    referral = referral_log(
        referral=ReferralFactory.build(
            provider=ProviderFactory(), received_at=timezone.now() - timedelta(days=5)
        ),
        actor=None,
    )
    referral = referral_transition(referral=referral, to_status="accepted", actor=None)
    referral = referral_transition(
        referral=referral,
        to_status="scheduled",
        actor=None,
        appointment_at=timezone.now() - timedelta(hours=2),
    )
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill("carla")
    page.get_by_label("Password").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.goto(referral.get_absolute_url())
    status = page.get_by_test_id("status")

    asked: list[str] = []

    def dismiss(dialog: Any) -> None:
        asked.append(dialog.message)
        dialog.dismiss()

    page.once("dialog", dismiss)
    page.get_by_role("button", name="No-show").click()
    page.wait_for_timeout(500)
    assert asked and "letter" in asked[0]
    expect(status).to_have_text("Scheduled")
    referral.refresh_from_db()
    assert referral.status == "scheduled"

    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="No-show").click()
    expect(status).to_have_text("No-show")
    # The letter goes: the worker prepares and hands it on (and is done with the database
    # before the test's tables are emptied).
    letters = Letter.objects.filter(referral=referral)
    in_hand = [Letter.Status.PENDING, Letter.Status.SENDING]
    wait_for(
        lambda: (
            letters.filter(kind=LetterTemplate.Kind.NO_SHOW).exclude(status__in=in_hand).exists()
            and not letters.filter(status__in=in_hand).exists()
        ),
        what="the no-show letter (and the earlier ones) to be handed on",
    )
    page.wait_for_load_state("networkidle")
    assert page.problems == []


def test_a_step_on_a_referral_sent_out_shows_its_consult_report_without_a_reload(
    page: Any,
) -> None:
    from playwright.sync_api import expect

    from partners.factories import ProviderFactory
    from referrals.factories import ReferralFactory
    from referrals.services.workflow import referral_log, referral_transition

    UserFactory(username="carla", role=Role.COORDINATOR)
    referral = referral_log(
        referral=ReferralFactory.build(
            provider=ProviderFactory(in_network=True),
            direction="outbound",
            received_at=timezone.now() - timedelta(days=5),
        ),
        actor=None,
    )
    for status in ("accepted", "scheduled"):
        referral = referral_transition(
            referral=referral,
            to_status=status,
            actor=None,
            appointment_at=timezone.now() - timedelta(hours=2),
        )
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill("carla")
    page.get_by_label("Password").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.goto(referral.get_absolute_url())
    report = page.get_by_test_id("consult-report")
    expect(report).to_contain_text("comes after the specialist sees the patient")
    page.get_by_role("button", name="Seen by the specialist").click()
    expect(page.get_by_test_id("status")).to_have_text("Seen")
    # The cell beside the steps follows without a reload, and its button works.
    report.get_by_role("button", name="Mark received").click()
    expect(page.get_by_test_id("consult-report")).to_contain_text("Received")
    referral.refresh_from_db()
    assert referral.report_received_at is not None
    assert page.problems == []


def test_a_manager_reads_the_conversion_of_each_source_on_a_phone(page: Any) -> None:
    from playwright.sync_api import expect

    from referrals.models import Inquiry

    UserFactory(username="dana", role=Role.MANAGER)
    Inquiry.objects.create(source="web", status="seen_new_patient")
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill("dana")
    page.get_by_label("Password").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.goto("/referrals/reports/conversion/")
    conversion = page.get_by_test_id("conversion-web")
    expect(conversion).to_contain_text("100.0%")
    # On the screen as the page opens, not in a table scrolled out of sight to the right.
    box = conversion.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
    assert page.problems == []
