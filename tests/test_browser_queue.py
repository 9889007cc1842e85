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
from referrals.services import referral_log
from tests.test_browser import browser, page  # noqa: F401 - the shared browser fixtures

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

    expect(page.locator("tr[data-overdue]")).to_have_count(1)
    expect(page.locator("tr[data-overdue] [data-sla]")).to_have_text("First contact overdue")

    page.locator("tr[data-overdue]").get_by_role("button", name="Claim").click()
    expect(page.get_by_text(f"Referral #{late.pk} is yours.")).to_be_visible()

    page.get_by_label(f"Select referral {late.pk}").check()
    page.get_by_label(f"Select referral {fresh.pk}").check()
    page.get_by_label("Move selected to").select_option("accepted")
    page.get_by_role("button", name="Apply to selected").click()
    expect(page.get_by_text(f"Accepted 2 referrals (#{late.pk}, #{fresh.pk}).")).to_be_visible()

    assert set(Referral.objects.values_list("status", flat=True)) == {Status.ACCEPTED}
    assert Referral.objects.get(pk=late.pk).assigned_to.username == "cora"
    # The page fits a phone: nothing but the table scrolls sideways.
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390
    assert page.problems == []
