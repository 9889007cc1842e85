"""The letter template editor's live preview and the print queue, in chromium at phone
width, with no console errors."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.utils import timezone

from core.factories import DEMO_PASSWORD, UserFactory
from core.roles import Role
from outreach.models import Letter, LetterTemplate
from partners.factories import ProviderFactory
from tests.test_browser import browser, page  # noqa: F401 - shared fixtures

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _sign_in(tab: Any, username: str) -> None:
    tab.goto("/")
    tab.get_by_label("Username").fill(username)
    tab.get_by_label("Password").fill(DEMO_PASSWORD)
    tab.get_by_role("button", name="Sign in").click()


def test_a_manager_sees_the_preview_change_while_typing(page: Any) -> None:  # noqa: F811
    from playwright.sync_api import expect

    UserFactory.create(username="maria", role=Role.MANAGER)
    _sign_in(page, "maria")
    page.goto("/outreach/templates/")
    page.get_by_role("link", name=re.compile("Your patient is scheduled")).click()
    preview = page.locator("#preview")
    expect(preview).to_contain_text("J.D.")
    page.get_by_label("Subject").fill("See you soon, Dr. {{ provider_last_name }}")
    expect(page.locator("#preview")).to_contain_text("See you soon, Dr. Whitfield")
    # The preview saved nothing.
    assert not LetterTemplate.objects.filter(subject__startswith="See you soon").exists()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    assert page.problems == []


def test_a_coordinator_marks_a_fax_sent_from_the_print_queue(page: Any) -> None:  # noqa: F811
    from playwright.sync_api import expect

    UserFactory.create(username="cora", role=Role.COORDINATOR)
    letter = Letter.objects.create(
        kind=LetterTemplate.Kind.THANK_YOU,
        provider=ProviderFactory.create(last_name="Pilcher"),
        subject="Thank you for referring R.O.",
        body="Dear Dr. Pilcher,\n\nThank you.",
        due_on=timezone.localdate(),
        status=Letter.Status.PRINT_QUEUE,
        channel=Letter.Channel.FAX,
        recipient="(402) 555-0100",
        message_id="<browser-test@referral-crm>",
    )
    _sign_in(page, "cora")
    page.goto("/outreach/print-queue/")
    expect(page.get_by_text("Thank you for referring R.O.")).to_be_visible()
    # One tap asks first: a letter marked sent leaves the queue for good.
    asked: list[str] = []

    def decline(dialog: Any) -> None:
        asked.append(dialog.message)
        dialog.dismiss()

    page.once("dialog", decline)
    page.get_by_role("button", name="Mark faxed").click()
    expect(page.get_by_role("button", name="Mark faxed")).to_be_visible()
    assert asked and asked[0].startswith("Was it faxed?")
    letter.refresh_from_db()
    assert letter.status == Letter.Status.PRINT_QUEUE
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Mark faxed").click()
    expect(page.locator(f"#letter-{letter.pk}")).to_contain_text("Sent")
    letter.refresh_from_db()
    assert letter.status == Letter.Status.SENT
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    assert page.problems == []


def test_a_manager_sends_a_newsletter_and_watches_its_progress(page: Any) -> None:  # noqa: F811
    from playwright.sync_api import expect

    from outreach import newsletters
    from outreach.models import NewsletterIssue

    UserFactory.create(username="maria", role=Role.MANAGER)
    ProviderFactory.create(tier="A", last_name="Aardvark", email="a@example.org")
    ProviderFactory.create(tier="C", email="c@example.org")
    _sign_in(page, "maria")
    page.goto("/outreach/newsletters/")
    page.get_by_role("link", name="New newsletter").click()
    expect(page.locator("#audience-count")).to_have_text("2")
    page.get_by_label("A: top referrer").check()
    expect(page.locator("#audience-count")).to_have_text("1")
    page.get_by_label("Subject").fill("Spring news for Dr. {{ provider_last_name }}")
    expect(page.locator("#preview")).to_contain_text("Spring news for Dr. Aardvark")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.get_by_role("button", name="Review and send").click()
    # Nothing goes out on the first press: the count to confirm, the text kept.
    expect(page.get_by_text("This newsletter goes to 1 active partner.")).to_be_visible()
    assert not NewsletterIssue.objects.exists()
    page.get_by_role("button", name="Send to 1 partner").click()

    # Queued, unless a test worker still running from an earlier test (the suite's worker
    # fixture is session-wide) already took the task.
    expect(page.locator("#progress")).to_contain_text(re.compile("Queued|Preparing|Done"))
    issue = NewsletterIssue.objects.get()
    # The worker's part, done here (idempotent: one letter per issue and partner): the page
    # keeps polling and shows where it stands.
    newsletters.newsletter_prepare(issue_id=issue.pk)
    Letter.objects.filter(newsletter=issue).update(status=Letter.Status.SENT)
    expect(page.locator("#progress")).to_contain_text("Done", timeout=10_000)
    expect(page.locator("#progress")).to_contain_text("Sent: 1")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    assert page.problems == []
