"""The work queue and the referral page in Debian's chromium: the partner filter applies
the partner picked, badges keep to their column, and long words typed into a referral wrap
instead of widening the page."""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Any

import pytest
from django.utils import timezone

from core.factories import UserFactory
from core.roles import Role
from partners.factories import ProviderFactory
from referrals.factories import ReferralFactory
from referrals.services.workflow import referral_log
from tests.test_browser import browser, page  # noqa: F401 - the shared browser fixtures
from tests.test_browser_csp import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _log(**fields: Any) -> Any:
    return referral_log(referral=ReferralFactory.build(**fields), actor=None)


def _rows(tab: Any) -> Any:
    return tab.locator("[data-queue-row]")


def test_picking_a_partner_in_the_queue_filter_shows_only_their_referrals(
    page: Any,  # noqa: F811 - the fixture imported above
) -> None:
    from playwright.sync_api import expect

    UserFactory(username="cora", role=Role.COORDINATOR)
    wiebe = ProviderFactory.create(first_name="David", last_name="Wiebe")
    other = ProviderFactory.create(first_name="Terri", last_name="King")
    for _ in range(2):
        _log(provider=wiebe)
    for _ in range(3):
        _log(provider=other)
    page.set_viewport_size({"width": 1366, "height": 768})
    sign_in(page, "cora")
    page.goto("/referrals/")
    expect(_rows(page)).to_have_count(5)

    page.locator("summary", has_text="Filters").click()
    search = page.get_by_label("Partner")
    search.fill("Wieb")
    page.locator("[data-picker-choice]", has_text="Wiebe").click()

    # Applied at once, without pressing Enter: the list and the address say so.
    expect(_rows(page)).to_have_count(2)
    assert f"provider={wiebe.pk}" in page.url

    # Clearing the partner shows everyone's again.
    search.fill("")
    expect(_rows(page)).to_have_count(5)
    assert page.problems == []


def test_a_possible_duplicate_badge_stays_in_its_column_on_a_laptop(
    page: Any,  # noqa: F811 - the fixture imported above
) -> None:
    from playwright.sync_api import expect

    UserFactory(username="cora", role=Role.COORDINATOR)
    coordinator = UserFactory(username="dana", first_name="Dana", last_name="Brooks")
    provider = ProviderFactory.create()
    same_patient = {
        "provider": provider,
        "patient_last_name": "Olsen",
        "patient_dob": date(1950, 4, 2),
        "assigned_to": coordinator,
    }
    _log(received_at=timezone.now() - timedelta(days=2), **same_patient)
    _log(received_at=timezone.now(), **same_patient)
    page.set_viewport_size({"width": 1366, "height": 768})
    sign_in(page, "cora")
    page.goto("/referrals/")

    badge = page.locator("[data-duplicate]")
    expect(badge).to_have_count(1)
    next_cell = badge.locator("xpath=ancestor::td[1]/following-sibling::td[1]")
    badge_right = badge.evaluate("b => b.getBoundingClientRect().right")
    next_left = next_cell.evaluate("c => c.getBoundingClientRect().left")
    assert badge_right <= next_left
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def test_one_long_word_typed_into_a_referral_wraps_on_a_phone(
    page: Any,  # noqa: F811 - the fixture imported above
) -> None:
    from playwright.sync_api import expect

    UserFactory(username="cora", role=Role.COORDINATOR)
    referral = _log(
        provider=ProviderFactory.create(),
        patient_last_name="Wolfeschlegelsteinhausenbergerdorffwelchevoralternwarengewissenhaft",
        reason="Prior auth ref: AUTHZ20261204NEBRASKAMEDICAIDQX88812345678901" + "X" * 3000,
    )
    sign_in(page, "cora")
    page.goto(referral.get_absolute_url())

    expect(page.locator("dt", has_text="Reason")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    assert page.problems == []


def test_the_export_and_the_back_button_follow_the_filters_changed_in_place(
    page: Any,  # noqa: F811 - the fixture imported above
) -> None:
    from playwright.sync_api import expect

    UserFactory(username="cora", role=Role.COORDINATOR)
    for _ in range(2):
        _log(provider=ProviderFactory.create(in_network=True), direction="outbound")
    for _ in range(3):
        _log(provider=ProviderFactory.create())
    page.set_viewport_size({"width": 1366, "height": 768})
    sign_in(page, "cora")
    page.goto("/referrals/")
    expect(_rows(page)).to_have_count(5)
    page.locator("summary", has_text="Filters").click()
    page.get_by_label("Direction").select_option("outbound")
    expect(_rows(page)).to_have_count(2)
    # The export is the list on the screen, not the one the page first opened with.
    expect(page.locator("#queue-export")).to_have_count(1)
    assert "direction=outbound" in page.locator("#queue-export").get_attribute("href")
    page.get_by_label("Direction").select_option("")
    expect(_rows(page)).to_have_count(5)
    page.go_back()
    expect(_rows(page)).to_have_count(2)
    # Back, the form shows the filter the list was made with.
    expect(page.get_by_label("Direction")).to_have_value("outbound")
    assert page.problems == []


def test_typing_or_filtering_faster_than_the_server_answers_leaves_no_console_error(
    page: Any,  # noqa: F811 - the fixture imported above
) -> None:
    """On a slow connection a second request goes while the first is still out. htmx
    writes an aborted request to the console as an error ("htmx:afterRequest"), so the
    picker and the queue filter wait for the first answer and send the newest after it,
    rather than abort it."""
    import time

    from playwright.sync_api import expect

    UserFactory(username="cora", role=Role.COORDINATOR)
    wiebe = ProviderFactory.create(first_name="David", last_name="Wiebe")
    _log(provider=wiebe, urgency="urgent")
    _log(provider=ProviderFactory.create(), urgency="routine")
    page.set_viewport_size({"width": 1366, "height": 768})
    sign_in(page, "cora")

    def slowly(route: Any) -> None:
        time.sleep(0.8)  # a phone's connection between two clinics
        route.continue_()

    page.route(re.compile(r"typeahead|/referrals/\?"), slowly)
    page.goto("/referrals/")
    page.locator("summary", has_text="Filters").click()
    # Focus asks for the first choices; the letters typed go while that is still out.
    search = page.get_by_label("Partner")
    search.focus()
    page.wait_for_timeout(300)
    search.press_sequentially("Wieb", delay=50)
    expect(page.locator("[data-picker-choice]", has_text="Wiebe")).to_be_visible()
    # Two filters changed quicker than the queue answers.
    page.locator("#id_urgency").select_option("urgent")
    page.locator("#id_urgency").select_option("routine")
    expect(page).to_have_url(re.compile(r"urgency=routine"))
    expect(_rows(page)).to_have_count(1)
    page.wait_for_load_state("networkidle")
    assert page.problems == []
