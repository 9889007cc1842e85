"""Issue 3 part 2 in Debian's chromium at phone width: import a spreadsheet, then read the
partner 360 page and the merge preview, with no console errors and no sideways scroll."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from core.factories import DEMO_PASSWORD, UserFactory
from core.roles import Role
from partners.factories import ProviderFactory, make_npi
from partners.models import Provider
from partners.services.health import providers_assess_health
from referrals.factories import ReferralFactory
from tests.test_browser import browser, page  # noqa: F401  (the shared chromium fixtures)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _fits_the_phone(tab: Any) -> bool:
    wide = tab.evaluate(
        "[...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().right"
        " > window.innerWidth + 1).map(e => e.tagName + '.' + e.className + ' ' +"
        " e.textContent.trim().slice(0, 40))"
    )
    assert wide == [], wide
    return tab.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def test_a_manager_imports_partners_and_reads_the_partner_page_on_a_phone(page: Any) -> None:  # noqa: F811
    from playwright.sync_api import expect

    UserFactory.create(username="maria", first_name="Maria", role=Role.MANAGER)
    page.goto("/")
    page.get_by_label("Username").fill("maria")
    page.get_by_label("Password").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Sign in").click()

    npi = make_npi(4242)
    sheet = (
        "NPI,First Name,Last Name,Practice,Phone\n"
        f"{npi},Ana,Reyes,Kearney Family Practice,(308) 555-0101\n"
        "1234567890,Bo,Lund,Kearney Family Practice,\n"
    )
    page.goto("/partners/")
    page.get_by_role("link", name="Import").click()
    page.get_by_label("Spreadsheet").set_input_files(
        files=[{"name": "partners.csv", "mimeType": "text/csv", "buffer": sheet.encode()}]
    )
    page.get_by_role("button", name="Upload and continue").click()
    expect(page.get_by_role("heading", name="Which column holds what?")).to_be_visible()
    assert _fits_the_phone(page)
    page.get_by_role("button", name="Preview the import").click()
    expect(page.get_by_text("check digit is wrong")).to_be_visible()
    assert _fits_the_phone(page)
    page.get_by_role("button", name="Import 1 partner").click()
    expect(page.get_by_text("Imported: 1 created")).to_be_visible()

    provider = Provider.objects.get(npi=npi)
    ReferralFactory.create(provider=provider, received_at=timezone.now() - timedelta(days=3))
    providers_assess_health(as_of=timezone.localdate())
    page.goto(provider.get_absolute_url())
    expect(page.get_by_role("heading", name="Ana Reyes")).to_be_visible()
    expect(page.get_by_text("No visit, call or other touch ever logged.").first).to_be_visible()
    expect(page.locator("svg.sparkline rect")).to_have_count(12)
    assert _fits_the_phone(page)

    duplicate = ProviderFactory.create(first_name="Ana", last_name="Reyes-Dup")
    page.get_by_role("link", name="Merge a duplicate").click()
    page.get_by_label("Find the duplicate").fill("Reyes-Dup")
    page.get_by_role("button", name="Find").click()
    page.get_by_role("link", name="Preview merge").click()
    expect(page.get_by_text(f"{duplicate.npi} kept in the merge record")).to_be_visible()
    page.get_by_label(re.compile("I checked that these are the same")).check()
    page.get_by_role("button", name="Merge and delete the duplicate").click()
    expect(page.get_by_text(re.compile("Merged “Ana Reyes-Dup"))).to_be_visible()
    assert not Provider.objects.filter(pk=duplicate.pk).exists()
    assert page.problems == []


def test_an_office_with_a_long_email_address_fits_the_phone(page: Any) -> None:  # noqa: F811
    from playwright.sync_api import expect

    from partners.factories import OrganizationFactory, StaffMemberFactory

    UserFactory.create(username="maria", first_name="Maria", role=Role.MANAGER)
    office = OrganizationFactory.create(
        name="West Waynehaven Pediatrics",
        email="frontdesk.scheduling.department@westwaynehavenpediatricsgroup.org",
    )
    StaffMemberFactory.create(
        organization=office, email="referral.coordinator.office@westwaynehavenpediatricsgroup.org"
    )
    page.goto("/")
    page.get_by_label("Username").fill("maria")
    page.get_by_label("Password").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.goto(office.get_absolute_url())
    expect(page.get_by_role("heading", name="West Waynehaven Pediatrics")).to_be_visible()
    assert _fits_the_phone(page)


def test_the_shared_patients_card_comes_into_the_partner_page_on_a_phone(
    page: Any,  # noqa: F811
    settings: Any,
) -> None:
    from django.core.management import call_command
    from playwright.sync_api import expect

    from registry.tests.test_shared_patients import FIRST, HEAD5, SECOND

    call_command("import_shared_patients", str(HEAD5), "--no-progress", verbosity=0)
    settings.PRACTICE_NPIS = [SECOND]
    partner = ProviderFactory.create(npi=FIRST, first_name="Ada", last_name="Quist")
    UserFactory.create(username="lia", first_name="Lia", role=Role.LIAISON)
    page.goto("/")
    page.get_by_label("Username").fill("lia")
    page.get_by_label("Password").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.goto(partner.get_absolute_url())
    card = page.locator("#shared-patients")
    card.scroll_into_view_if_needed()
    expect(card.get_by_text("Shared Medicare patients")).to_be_visible()
    expect(card.get_by_text("our clinician", exact=True)).to_be_visible()
    expect(card.get_by_test_id("share-to-us")).to_contain_text("27 of 27")
    assert _fits_the_phone(page)
    assert page.problems == []
