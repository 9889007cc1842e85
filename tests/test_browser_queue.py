"""The SLA work queue in chromium at phone width: overdue rows stand out, a coordinator
claims one and moves several at once."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from core.factories import DEMO_PASSWORD, UserFactory
from core.roles import Role
from partners.factories import ProviderFactory
from referrals.factories import ReferralFactory
from referrals.models import Referral, Status
from referrals.services.workflow import referral_log, referral_transition
from tests.test_browser import PHONE, browser, page  # noqa: F401 - the shared browser fixtures

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_coordinator_claims_an_overdue_referral_and_accepts_two_at_once(
    page: Any,  # noqa: F811 - the fixture imported above
) -> None:
    from playwright.sync_api import expect

    UserFactory(username="cora", first_name="Cora", role=Role.COORDINATOR)
    provider = ProviderFactory(last_name="Wiebe")
    late = referral_log(
        referral=ReferralFactory.build(
            provider=provider, urgency="stat", received_at=timezone.now() - timedelta(hours=6)
        ),
        actor=None,
    )
    fresh = referral_log(referral=ReferralFactory.build(provider=provider), actor=None)

    page.goto("/referrals/")
    page.get_by_label("Username").fill("cora")
    page.get_by_label("Password").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Sign in").click()

    # At phone width each row is laid out as a card: no column headings, each row as wide
    # as the screen at most, nothing to scroll sideways.
    cards = page.locator("table.table-queue")
    expect(cards.locator("[data-queue-row]")).to_have_count(2)
    expect(cards.locator("thead th").first).not_to_be_in_viewport()
    for box in cards.locator("[data-queue-row]").evaluate_all(
        "rows => rows.map(row => row.getBoundingClientRect().width)"
    ):
        assert box <= 390
    assert (
        cards.locator("[data-queue-row]").first.evaluate("row => getComputedStyle(row).display")
        == "block"
    )
    overdue = cards.locator("[data-overdue]")
    expect(overdue).to_have_count(1)
    expect(overdue.locator("[data-sla]")).to_have_text("First contact overdue")
    expect(overdue).to_contain_text("Wiebe")

    overdue.get_by_role("button", name="Claim").click()
    expect(page.get_by_text(f"Referral #{late.pk} is yours.")).to_be_visible()

    cards.get_by_label(f"Select referral {late.pk}").check()
    cards.get_by_label(f"Select referral {fresh.pk}").check()
    page.get_by_label("Move selected to").select_option("accepted")
    page.get_by_role("button", name="Apply to selected").click()
    expect(page.get_by_text(f"Accepted 2 referrals (#{late.pk}, #{fresh.pk}).")).to_be_visible()

    assert set(Referral.objects.values_list("status", flat=True)) == {Status.ACCEPTED}
    assert (
        Referral.objects.values_list("assigned_to__username", flat=True).get(pk=late.pk) == "cora"
    )
    # The page fits a phone: nothing scrolls sideways.
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")

    # On a desktop the rows are a table again, and its checkboxes drive the same bulk form.
    page.set_viewport_size({"width": 1280, "height": 800})
    table = page.locator("table.table-queue")
    expect(table.locator("thead th", has_text="Coordinator")).to_be_visible()
    assert (
        table.locator("[data-queue-row]").first.evaluate("row => getComputedStyle(row).display")
        == "table-row"
    )
    # Declining without a reason is refused, and the selection and the choice stay.
    table.get_by_label(f"Select referral {fresh.pk}").check()
    page.get_by_label("Move selected to").select_option("declined")
    page.get_by_role("button", name="Apply to selected").click()
    expect(page.get_by_text("Say why the selected referrals are declined.")).to_be_visible()
    expect(table.get_by_label(f"Select referral {fresh.pk}")).to_be_checked()
    expect(page.get_by_label("Move selected to")).to_have_value("declined")
    assert Referral.objects.get(pk=fresh.pk).status == Status.ACCEPTED

    page.get_by_label("Move selected to").select_option("on_hold")
    page.get_by_role("button", name="Apply to selected").click()
    expect(page.get_by_text(f"Put 1 referral (#{fresh.pk}) on hold.")).to_be_visible()
    assert Referral.objects.get(pk=fresh.pk).status == Status.ON_HOLD
    assert Referral.objects.get(pk=late.pk).status == Status.ACCEPTED

    # Back on a phone, one referral is cancelled from its page: the reason is asked for
    # (the browser will not send the form without it) and shown once it is saved.
    page.set_viewport_size(PHONE)
    page.goto(f"/referrals/{late.pk}/")
    status = page.get_by_test_id("status")
    # The form's submit says what it does; Close shuts the form and cancels nothing.
    page.get_by_text("Cancel…").click()
    expect(page.get_by_role("button", name="Cancel", exact=True)).to_have_count(0)
    page.get_by_role("button", name="Close", exact=True).click()
    expect(page.get_by_label("Why is it cancelled?")).to_be_hidden()
    expect(status).to_have_text("Accepted")
    page.get_by_text("Cancel…").click()
    page.get_by_role("button", name="Cancel the referral").click()
    expect(status).to_have_text("Accepted")
    page.get_by_label("Why is it cancelled?").fill(
        "The patient chose to be seen at another practice."
    )
    page.get_by_role("button", name="Cancel the referral").click()
    expect(status).to_have_text("Cancelled")
    expect(
        page.get_by_text("Cancelled: The patient chose to be seen at another practice.")
    ).to_be_visible()
    assert Referral.objects.get(pk=late.pk).cancel_reason.startswith("The patient chose")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    assert page.problems == []


def test_on_a_laptop_screen_the_queue_shows_every_column_and_claim_without_scrolling_sideways(
    page: Any,  # noqa: F811 - the fixture imported above
) -> None:
    from playwright.sync_api import expect

    UserFactory(username="cora", role=Role.COORDINATOR)
    # What a real queue holds: a long patient name, long partner names, and a referral booked
    # later than its target (the longest SLA badge), none of them claimed yet.
    referral_log(
        referral=ReferralFactory.build(
            provider=ProviderFactory(first_name="Maximiliana", last_name="Vandenberghe-Okafor"),
            patient_first_name="Jane<script>alert(1)</script>",
            patient_last_name="Ærøskøbing-Ñúñez",
            urgency="urgent",
            received_at=timezone.now() - timedelta(days=9, hours=5),
        ),
        actor=None,
    )
    received = timezone.now() - timedelta(days=40)
    late = referral_log(
        referral=ReferralFactory.build(
            provider=ProviderFactory(first_name="Jacqueline", last_name="Livingston-Hudson"),
            urgency="stat",
            received_at=received,
        ),
        actor=None,
    )
    late = referral_transition(
        referral=late, to_status="accepted", actor=None, at=received + timedelta(hours=1)
    )
    referral_transition(
        referral=late,
        to_status="scheduled",
        actor=None,
        # Still to come (a past one with no outcome would be flagged for that instead).
        appointment_at=timezone.now() + timedelta(days=2),
    )
    page.set_viewport_size({"width": 1366, "height": 900})
    page.goto("/referrals/")
    page.get_by_label("Username").fill("cora")
    page.get_by_label("Password").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Sign in").click()

    expect(page.locator("[data-queue-row]")).to_have_count(2)
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    table = page.locator("table.table-queue")
    assert table.evaluate("t => t.scrollWidth <= t.parentElement.clientWidth")
    for heading in ("SLA", "Coordinator", "To appointment"):
        expect(table.locator("thead th", has_text=heading)).to_be_in_viewport()
    claims = page.get_by_role("button", name="Claim")
    expect(claims).to_have_count(2)
    for right in claims.evaluate_all("bs => bs.map(b => b.getBoundingClientRect().right)"):
        assert right <= 1366
    expect(claims.first).to_be_in_viewport(ratio=1)
    badge = page.locator("[data-sla=appointment_late]")
    expect(badge).to_have_text("Appointment later than target")
    expect(badge).to_be_in_viewport(ratio=1)
    assert badge.evaluate("b => b.scrollWidth <= b.clientWidth")
    assert page.problems == []
