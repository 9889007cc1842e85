"""A referral's page in chromium: on a phone the status and next step come before the
details (a coordinator acts without scrolling); on a desktop the details sit on the left."""

from __future__ import annotations

import re
from datetime import date
from typing import Any

import pytest

from core.factories import DEMO_PASSWORD, UserFactory
from core.roles import Role
from intake.models import StagedDocument
from partners.factories import ProviderFactory
from referrals.factories import ReferralFactory
from referrals.services.workflow import referral_log
from tests.test_browser import browser, page  # noqa: F401 - the shared browser fixtures

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PDF = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"


def _box(locator: Any, side: str) -> float:
    return float(locator.evaluate(f"element => element.getBoundingClientRect().{side}"))


def test_on_a_phone_the_next_step_comes_before_the_details(
    page: Any,  # noqa: F811 - the fixture imported above
) -> None:
    from playwright.sync_api import expect

    UserFactory(username="cora", first_name="Cora", role=Role.COORDINATOR)
    referral = referral_log(
        referral=ReferralFactory.build(
            provider=ProviderFactory(last_name="Wiebe"), patient_last_name="Olsen"
        ),
        actor=None,
    )
    page.goto(referral.get_absolute_url())
    page.get_by_label("Username").fill("cora")
    page.get_by_label("Password").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Sign in").click()

    next_step = page.get_by_role("heading", name="Next step")
    details = page.locator("dt", has_text="Patient")
    expect(next_step).to_be_in_viewport()
    expect(page.get_by_test_id("phone-summary")).to_contain_text("Olsen")
    expect(page.get_by_test_id("phone-summary")).to_contain_text("Wiebe")
    assert _box(next_step, "top") < _box(details, "top")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")

    page.set_viewport_size({"width": 1280, "height": 800})
    expect(page.get_by_test_id("phone-summary")).to_be_hidden()
    # Side by side: the details on the left, the status and next step on the right.
    assert _box(details, "left") < _box(next_step, "left")


def test_a_faxed_document_is_shown_beside_the_form_while_the_referral_is_typed(
    page: Any,  # noqa: F811 - the fixture imported above
    settings: Any,
    tmp_path: Any,
) -> None:
    import segno
    from playwright.sync_api import expect

    UserFactory(username="cora", first_name="Cora", role=Role.COORDINATOR)
    scan = tmp_path / "fax-page-1.png"
    segno.make("Referral for Ruth Olsen").save(str(scan), kind="png", scale=8)
    page.set_viewport_size({"width": 1280, "height": 800})
    page.goto("/referrals/new/")
    page.get_by_label("Username").fill("cora")
    page.get_by_label("Password").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Sign in").click()

    page.get_by_label("Faxed or scanned documents").set_input_files(str(scan))
    shown = page.locator("#document-preview img[data-preview-of='fax-page-1.png']")
    expect(shown).to_be_visible()
    assert shown.evaluate("img => img.complete && img.naturalWidth > 0")
    # Beside the form, not under it.
    form_field = page.get_by_label("Faxed or scanned documents")
    assert _box(form_field, "right") <= _box(shown, "left")

    # Sent too early: the form comes back with the document kept, and shown beside it again.
    settings.PRIVATE_STORAGE_ROOT = tmp_path / "private"
    page.get_by_role("button", name="Log referral").click()
    expect(page.get_by_test_id("kept-documents")).to_contain_text("fax-page-1.png")
    expect(shown).to_be_visible()
    assert shown.evaluate("img => img.complete && img.naturalWidth > 0")
    assert page.problems == []


def test_a_fax_chosen_once_is_kept_through_a_typo_and_attached_when_the_form_is_sent(
    page: Any,  # noqa: F811 - the fixture imported above
    settings: Any,
    tmp_path: Any,
) -> None:
    from playwright.sync_api import expect

    settings.PRIVATE_STORAGE_ROOT = tmp_path / "private"
    UserFactory(username="cora", first_name="Cora", role=Role.COORDINATOR)
    provider = ProviderFactory.create(last_name="Wiebe")
    page.goto(f"/referrals/new/?provider={provider.pk}")
    page.get_by_label("Username").fill("cora")
    page.get_by_label("Password").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Sign in").click()

    page.get_by_label("Patient first name").fill("Ruth")
    page.get_by_label("Patient last name").fill("Olsen")
    page.get_by_label("Patient date of birth").fill("2999-01-01")
    page.get_by_label("Reason for referral").fill("See fax")
    page.get_by_label("Faxed or scanned documents").set_input_files(
        {"name": "fax 0412.pdf", "mimeType": "application/pdf", "buffer": PDF}
    )
    page.get_by_role("button", name="Log referral").click()

    # Sent back for the typo: the fax is listed as kept, not to be chosen again.
    expect(page.get_by_text("The date of birth cannot be in the future.")).to_be_visible()
    kept = page.get_by_test_id("kept-documents")
    expect(kept).to_contain_text("fax 0412.pdf")
    expect(kept.get_by_label("Remove fax 0412.pdf")).not_to_be_checked()
    expect(page.get_by_label("Faxed or scanned documents")).to_be_enabled()
    expect(page.get_by_text(re.compile("choose .* again"))).to_have_count(0)

    page.get_by_label("Patient date of birth").fill("1950-04-02")
    page.get_by_role("button", name="Log referral").click()
    expect(page.get_by_test_id("status")).to_have_text("Received")
    expect(page.get_by_role("link", name="fax 0412.pdf")).to_be_visible()
    assert not StagedDocument.objects.exists()
    assert list((tmp_path / "private").glob("staged/**/*.pdf")) == []
    assert page.problems == []


def test_why_out_of_network_is_asked_only_of_a_patient_sent_out_of_network(
    page: Any,  # noqa: F811 - the fixture imported above
) -> None:
    from playwright.sync_api import expect

    UserFactory(username="cora", first_name="Cora", role=Role.COORDINATOR)
    in_network = ProviderFactory(first_name="Ines", last_name="Quellmark", in_network=True)
    ProviderFactory(first_name="Otto", last_name="Quellfar", in_network=False)
    page.goto("/referrals/new/")
    page.get_by_label("Username").fill("cora")
    page.get_by_label("Password").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Sign in").click()

    # A referral to us: no such question.
    reason = page.get_by_label("Why out of network")
    expect(reason).to_be_hidden()
    page.get_by_label("Direction").select_option("outbound")
    expect(reason).to_be_visible()
    page.get_by_label("Direction").select_option("inbound")
    expect(reason).to_be_hidden()

    # Refer out: asked until an in-network specialist is chosen, and again for one who is not.
    page.goto("/referrals/refer-out/")
    expect(reason).to_be_visible()
    search = page.locator("[data-picker] input[type=search]")
    search.fill("Quellmark")
    page.locator("[data-picker-choice]", has_text="Ines Quellmark").click()
    expect(reason).to_be_hidden()
    search.fill("Quellfar")
    page.locator("[data-picker-choice]", has_text="Otto Quellfar").click()
    expect(reason).to_be_visible()

    # Editing a referral sent to an in-network partner: not asked.
    sent = referral_log(
        referral=ReferralFactory.build(provider=in_network, direction="outbound"), actor=None
    )
    page.goto(f"/referrals/{sent.pk}/edit/")
    expect(page.get_by_label("Patient last name")).to_be_visible()
    expect(reason).to_be_hidden()
    assert page.problems == []


def test_on_a_phone_a_coordinator_marks_a_referral_faxed_twice_as_the_copy(
    page: Any,  # noqa: F811 - the fixture imported above
) -> None:
    from playwright.sync_api import expect

    UserFactory(username="cora", first_name="Cora", role=Role.COORDINATOR)
    partner = ProviderFactory(last_name="Wiebe")
    original, copy = (
        referral_log(
            referral=ReferralFactory.build(
                provider=partner, patient_last_name="Olsen", patient_dob=date(1950, 4, 2)
            ),
            actor=None,
        )
        for _ in range(2)
    )
    page.goto(copy.get_absolute_url())
    page.get_by_label("Username").fill("cora")
    page.get_by_label("Password").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Sign in").click()

    asked: list[str] = []

    def answer(dialog: Any) -> None:
        asked.append(dialog.message)
        # Refused the first time: nothing happens.
        dialog.accept() if len(asked) > 1 else dialog.dismiss()

    page.on("dialog", answer)
    mark = page.get_by_role("button", name=f"This is a copy of #{original.pk}")
    mark.click()
    expect(page.get_by_test_id("duplicate-of")).to_have_count(0)
    mark.click()
    expect(page.get_by_test_id("duplicate-of")).to_contain_text(f"referral #{original.pk}")
    expect(page.get_by_text("is marked as a duplicate of")).to_be_visible()
    assert "told nothing" in asked[0]
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    assert page.problems == []
