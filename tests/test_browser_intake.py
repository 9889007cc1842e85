"""A referring office sends a referral from a phone; the coordinator works it to closed."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.utils import timezone

from audit.models import PatientDataAccess
from core.factories import DEMO_PASSWORD, UserFactory
from core.roles import Role
from intake.models import IntakeSubmission
from partners.factories import OrganizationFactory, ProviderFactory
from referrals.models import Status
from tests.test_browser import PHONE, browser, page  # noqa: F401 - shared fixtures

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PDF = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"


def test_an_office_submits_from_a_phone_and_the_coordinator_closes_the_referral(
    page: Any,  # noqa: F811
    browser: Any,  # noqa: F811
    live_server: Any,
    settings: Any,
    tmp_path: Any,
) -> None:
    from playwright.sync_api import expect

    settings.PRIVATE_STORAGE_ROOT = tmp_path / "private"
    office = OrganizationFactory.create(name="Maple Family Practice")
    ProviderFactory.create(
        organization=office, first_name="Grace", last_name="Hopper", credential="MD"
    )
    UserFactory.create(username="carla", first_name="Carla", role=Role.COORDINATOR)

    # The coordinator makes a link for the office and copies it.
    page.goto("/")
    page.get_by_label("Username").fill("carla")
    page.get_by_label("Password").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.goto(office.get_absolute_url())
    page.get_by_role("link", name="Intake links").click()
    page.get_by_label("Label").fill("front desk")
    page.get_by_role("button", name="Create link").click()
    expect(page.get_by_text("shown only this once")).to_be_visible()
    link_url = page.get_by_label("New intake link").input_value()
    assert re.search(r"/intake/[A-Za-z0-9_-]{40,}/$", link_url)

    # The office, with no account, opens the link on a phone.
    office_context = browser.new_context(viewport=PHONE)
    office_page = office_context.new_page()
    office_page.set_default_timeout(15_000)
    problems: list[str] = []
    office_page.on("console", lambda m: problems.extend([m.text] if m.type == "error" else []))
    office_page.on("pageerror", lambda error: problems.append(str(error)))
    office_page.goto(link_url)
    expect(office_page.get_by_role("heading", name="Send a referral")).to_be_visible()
    # Nothing sticks out sideways at phone width.
    assert office_page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    office_page.get_by_label(re.compile("Grace Hopper")).check()
    office_page.get_by_label("Patient first name").fill("Ruth")
    office_page.get_by_label("Patient last name").fill("Olsen")
    office_page.get_by_label("Patient date of birth").fill("1950-04-02")
    office_page.get_by_label("Reason for referral").fill(
        "Chronic knee pain <script>alert(1)</script>"
    )
    office_page.get_by_label("Urgent").check()
    office_page.get_by_label("Documents (optional)").set_input_files(
        {"name": "referral.pdf", "mimeType": "application/pdf", "buffer": PDF}
    )
    office_page.get_by_label("Your name").fill("Dana")
    office_page.get_by_role("button", name="Send referral").click()
    expect(office_page.get_by_role("heading", name="Referral received")).to_be_visible()
    reference = office_page.get_by_test_id("reference").inner_text().strip()
    assert reference == IntakeSubmission.objects.get().reference
    assert "Olsen" not in office_page.content()
    assert problems == []
    office_context.close()

    # The coordinator finds it at the top of the work queue and works it to closed.
    page.goto("/referrals/")
    page.get_by_role("link", name="Olsen, Ruth").click()
    expect(page.get_by_test_id("reference")).to_have_text(reference)
    expect(page.get_by_text("Chronic knee pain <script>alert(1)</script>")).to_be_visible()
    expect(page.get_by_role("link", name="referral.pdf")).to_be_visible()
    status = page.get_by_test_id("status")
    expect(status).to_have_text("Received")
    page.get_by_role("button", name="Accept").click()
    expect(status).to_have_text("Accepted")
    page.get_by_text("Schedule…").click()
    # Booked for later today: a patient is marked seen on the day of the appointment.
    page.get_by_label("Appointment date and time").fill(f"{timezone.localdate()}T23:55")
    page.get_by_role("button", name="Schedule", exact=True).click()
    expect(status).to_have_text("Scheduled")
    page.get_by_role("button", name="Mark seen").click()
    expect(status).to_have_text("Seen")
    page.get_by_role("button", name="Report sent").click()
    expect(status).to_have_text("Report sent")
    page.get_by_role("button", name="Close").click()
    expect(status).to_have_text("Closed")
    submission = IntakeSubmission.objects.select_related("referral").get()
    assert submission.referral.status == Status.CLOSED
    # Her reads of the patient's details are on the audit trail.
    assert PatientDataAccess.objects.filter(
        referral_id=submission.referral.pk, action=PatientDataAccess.Action.VIEW
    ).exists()
    assert page.problems == []
