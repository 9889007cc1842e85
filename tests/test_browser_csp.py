"""Every page works under the Content-Security-Policy (referral_crm/settings.py): whatever
the policy refuses (an inline script, handler or style, eval, a third-party file) shows in
the console as an error ("Refused to ..."), and a page with any console error fails."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from fpdf import FPDF

from core.factories import DEMO_PASSWORD, UserFactory
from core.roles import Role
from outreach.factories import TaskFactory
from partners.factories import OrganizationFactory, ProviderFactory
from referrals.factories import ReferralFactory
from referrals.models import Referral
from referrals.services.workflow import referral_log
from tests.test_browser import browser, page  # noqa: F401 - the shared browser fixtures

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def sign_in(tab: Any, username: str) -> None:
    tab.goto("/accounts/login/")
    tab.get_by_label("Username").fill(username)
    tab.get_by_label("Password").fill(DEMO_PASSWORD)
    tab.get_by_role("button", name="Sign in").click()
    tab.wait_for_url(re.compile(r"^(?!.*/accounts/login/)"))


def visit(tab: Any, path: str) -> None:
    """Open `path`, let every script, style, image and frame load, and expect no errors."""
    response = tab.goto(path)
    assert response is not None and response.status == 200, path
    assert "content-security-policy" in response.headers, path
    tab.wait_for_load_state("networkidle")
    assert tab.problems == [], path


def fax_pdf(folder: Path) -> Path:
    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("Helvetica", size=14)
    pdf.cell(text="Referral for Ruth Olsen: chronic knee pain")
    path = folder / "fax.pdf"
    pdf.output(str(path))
    return path


def test_a_manager_works_through_every_kind_of_page_with_no_refusal_in_the_console(
    page: Any,  # noqa: F811 - the fixture imported above
    tmp_path: Path,
) -> None:
    from playwright.sync_api import expect

    manager = UserFactory.create(username="maria", first_name="Maria", role=Role.MANAGER)
    office = OrganizationFactory.create(name="Maple Family Practice")
    provider = ProviderFactory.create(organization=office, first_name="Grace", last_name="Hopper")
    referral = referral_log(referral=ReferralFactory.build(provider=provider), actor=manager)
    TaskFactory.create(assignee=manager, title="Call the Maple front desk")
    page.set_viewport_size({"width": 1280, "height": 800})
    sign_in(page, "maria")

    for path in [
        "/",
        "/partners/",
        f"/partners/{provider.pk}/",
        f"/partners/{provider.pk}/edit/",
        f"/partners/offices/{office.pk}/",
        "/referrals/",
        f"/referrals/{referral.pk}/",
        # The reports; two of them draw SVG charts (static/css/charts.css).
        "/referrals/reports/conversion/",
        "/referrals/reports/reciprocity/",
        "/referrals/reports/leakage/",
        "/referrals/reports/turnaround/",
        "/referrals/reports/referrers/",
        "/outreach/lift/",
        "/outreach/tasks/",
        "/outreach/print-queue/",
        "/outreach/templates/",
        "/audit/",
        # The authenticator set-up page: its QR code is an SVG drawn on the server.
        "/accounts/two-factor/set-up/",
    ]:
        visit(page, path)
    qr_code = page.get_by_role("img", name=re.compile("QR code"))
    expect(qr_code).to_be_visible()
    assert qr_code.evaluate("img => img.complete && img.naturalWidth > 0")

    # htmx under the policy: the queue filter swaps the rows in place.
    visit(page, "/referrals/")
    page.get_by_text("Filters").click()
    page.locator("#id_urgency").select_option("urgent")
    expect(page).to_have_url(re.compile(r"urgency=urgent"))
    page.wait_for_load_state("networkidle")

    # A new referral: the partner type-ahead (htmx) and the faxed PDF previewed from blob:.
    visit(page, "/referrals/new/")
    page.get_by_label("Faxed or scanned documents").set_input_files(str(fax_pdf(tmp_path)))
    shown = page.locator("#document-preview iframe[data-preview-of='fax.pdf']")
    expect(shown).to_be_attached()
    assert shown.get_attribute("src").startswith("blob:")
    search = page.locator("[data-picker] input[type=search]").first
    search.fill("Hopp")
    page.locator("[data-picker-choice]").first.click()
    expect(search).to_have_class(re.compile("is-valid"))
    page.wait_for_timeout(500)  # the frame's document has loaded (or been refused) by now
    assert page.problems == []

    # Deleting asks first, from app.js rather than an inline onsubmit handler.
    visit(page, f"/referrals/{referral.pk}/")
    page.once("dialog", lambda dialog: dialog.dismiss())
    page.get_by_role("button", name="Delete").click()
    page.wait_for_timeout(300)
    assert Referral.objects.filter(pk=referral.pk).exists()
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Delete").click()
    page.wait_for_load_state("networkidle")
    assert not Referral.objects.filter(pk=referral.pk).exists()
    assert page.problems == []


def test_an_administrator_uses_the_admin_with_no_refusal_in_the_console(
    page: Any,  # noqa: F811 - the fixture imported above
) -> None:
    from playwright.sync_api import expect

    admin = UserFactory.create(username="ada", role=Role.ADMINISTRATOR)
    provider = ProviderFactory.create(first_name="Grace", last_name="Hopper")
    ProviderFactory.create(first_name="Alan", last_name="Turing")
    referral = referral_log(referral=ReferralFactory.build(provider=provider), actor=admin)
    page.set_viewport_size({"width": 1280, "height": 800})
    sign_in(page, "ada")

    visit(page, "/admin/")
    # A changelist with its filters and date drill-down.
    visit(page, "/admin/referrals/referral/?status__exact=received")
    page.get_by_role("link", name="Received", exact=True).first.click()
    page.wait_for_load_state("networkidle")
    visit(page, "/admin/auth/user/")

    # A change form: the date and time shortcuts and the partner autocomplete (select2).
    visit(page, f"/admin/referrals/referral/{referral.pk}/change/")
    page.get_by_role("link", name="Today").first.click()
    page.get_by_role("link", name="Now").first.click()
    page.locator("a[id^=calendarlink]").first.click()
    expect(page.locator(".calendarbox").first).to_be_visible()
    page.locator(".calendarbox .calendar-cancel a").first.click()
    page.locator(".select2-selection").first.click()
    page.locator(".select2-search__field").fill("Tur")
    expect(page.locator(".select2-results__option", has_text="Turing")).to_be_visible()
    page.locator(".select2-results__option", has_text="Turing").click()
    page.get_by_role("button", name="Save", exact=True).click()
    page.wait_for_load_state("networkidle")
    referral.refresh_from_db()
    assert referral.provider.last_name == "Turing"
    assert page.problems == []


def test_what_the_browser_refuses_reaches_the_log(
    page: Any,  # noqa: F811 - the fixture imported above
    caplog: Any,
) -> None:
    """A real refusal, reported by Chromium itself to the policy's report-uri."""
    import logging
    import time

    from django.core.cache import caches

    from core import csp

    caches["api-throttle"].delete(csp.budget_key("127.0.0.1"))  # other tests' reports
    UserFactory.create(username="maria", role=Role.MANAGER)
    sign_in(page, "maria")
    with caplog.at_level(logging.WARNING, logger="referral_crm.csp"):
        # An inline script, as an injected one would be: refused, and reported.
        page.evaluate(
            "() => { const s = document.createElement('script');"
            " s.textContent = 'window.ran = true'; document.body.append(s); }"
        )
        deadline = time.monotonic() + 10
        while "Content-Security-Policy refused" not in caplog.text:
            assert time.monotonic() < deadline, "no report reached the server"
            time.sleep(0.1)

    assert page.evaluate("() => window.ran === undefined")
    assert any("Content Security Policy" in problem for problem in page.problems), page.problems
    (message,) = [r.getMessage() for r in caplog.records if r.name == "referral_crm.csp"]
    assert message.startswith("Content-Security-Policy refused script-src")
    assert message.endswith(" from inline on /")
