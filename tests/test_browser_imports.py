"""Uploading a CMS shared patient patterns file in Debian's chromium at phone width: the
year and window filled in from CMS's file name, still editable, and no sideways scroll."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.urls import reverse

from core.factories import DEMO_PASSWORD, UserFactory
from core.roles import Role
from registry.models import ImportJob
from registry.tasks import import_nppes_file
from registry.tests.conftest import SHARED_DATA
from tests.test_browser import browser, page  # noqa: F401  (the shared chromium fixtures)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

HEAD5 = (
    SHARED_DATA
    / "shared_patient_patterns"
    / "physician-shared-patient-patterns-2014-days180_head5.txt"
)


def test_the_year_and_window_come_from_the_chosen_files_name_on_a_phone(
    page: Any,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    settings: Any,
    tmp_path: Any,
) -> None:
    from playwright.sync_api import expect

    settings.MEDIA_ROOT = tmp_path / "media"
    queued: list[int] = []
    monkeypatch.setattr(import_nppes_file, "apply_async", lambda args, **kw: queued.extend(args))
    UserFactory.create(username="ada", role=Role.ADMINISTRATOR)
    page.goto(reverse("registry:import_shared_patients"))
    page.get_by_label("Username").fill("ada")
    page.get_by_label("Password").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Import CMS shared patient patterns")).to_be_visible()
    year, window = page.get_by_label("Year"), page.get_by_label("Window")

    page.get_by_label("File").set_input_files(str(HEAD5))
    expect(year).to_have_value("2014")
    expect(window).to_have_value("180")
    # Another file whose name says nothing takes the guesses away with the first file...
    page.get_by_label("File").set_input_files(
        {"name": "patterns.txt", "mimeType": "text/plain", "buffer": HEAD5.read_bytes()}
    )
    expect(year).to_have_value("")
    # ...but never what was typed.
    year.fill("2015")
    page.get_by_label("File").set_input_files(str(HEAD5))
    expect(year).to_have_value("2015")
    expect(window).to_have_value("180")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")

    page.get_by_role("button", name="Upload and import").click()

    expect(page).to_have_url(re.compile(r"/registry/import/\d+/$"))
    expect(page.get_by_text("loaded as 2015's 180-day window")).to_be_visible()
    job = ImportJob.objects.get()
    assert (job.year, job.window_days, queued) == (2015, 180, [job.pk])
    assert page.problems == []
