"""Every page fits a phone: each product page any role can open, in chromium at phone
width, neither scrolls sideways, nor breaks a short word of its own across lines, nor
leaves an error in the console, and passes the axe-core accessibility rules (labels,
contrast, keyboard access to scrolling tables, ...)."""

from __future__ import annotations

from typing import Any

import pytest
from axe_playwright_python.sync_playwright import Axe
from django.test import Client

from core.factories import DEMO_PASSWORD
from tests.test_browser import PHONE, browser, page  # noqa: F401 - the shared browser fixtures
from tests.test_no_server_errors import SKIP_PREFIXES, _fill, _patterns, world  # noqa: F401

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Pages whose purpose is to leave the app (downloads) or that end the session.
NOT_PAGES = ("accounts/",)

# What sticks out past the right edge of the screen, if anything (for the failure message).
WIDE = """() => [...document.querySelectorAll('body *')]
  .filter(e => e.getBoundingClientRect().right > window.innerWidth + 1)
  .slice(0, 3).map(e => e.tagName.toLowerCase() + '.' + e.className)"""

# Short words of the app's own (a checkbox's label, a button, a status link) broken across
# lines: in a squeezed flex row, "Came" can end up as "Ca" over "me".
BROKEN_WORDS = """() => [...document.querySelectorAll(
    'main label, main a, main button, main .badge, main th')]
  .filter(e => e.children.length === 0 && /^\\S{2,24}$/.test(e.textContent.trim()))
  .filter(e => {
    const range = document.createRange();
    range.selectNodeContents(e);
    const lines = [...range.getClientRects()].filter(r => r.width > 0).map(r => Math.round(r.top));
    return new Set(lines).size > 1;
  })
  .slice(0, 3).map(e => e.tagName.toLowerCase() + ' "' + e.textContent.trim() + '"')"""


def _pages(user: Any, pks: list[int]) -> list[str]:
    """One URL per product page that answers this user with a whole HTML page (found
    with Django's test client, so the browser opens only real pages)."""
    client = Client()
    client.force_login(user)
    urls = []
    for route in _patterns():
        if route.startswith(SKIP_PREFIXES + NOT_PAGES):
            continue
        for pk in pks if "<" in route else [0]:
            url = _fill(route, pk)
            response = client.get(url)
            # Whole pages only: htmx fragments (type-ahead options and the like) are not
            # opened by themselves.
            if (
                response.status_code == 200
                and not response.streaming
                and b"<!doctype html>" in response.content[:200].lower()
            ):
                urls.append(url)
                break
    return urls


def test_every_page_fits_a_phone_whoever_opens_it(
    page: Any,  # noqa: F811 - the fixture imported above
    world: dict[str, Any],  # noqa: F811
) -> None:
    missing: list[str] = []
    page.on(
        "response", lambda r: missing.extend([f"{r.status} {r.url}"] if r.status >= 400 else [])
    )
    too_wide, broken_words, problems, inaccessible, visited = {}, {}, {}, {}, set()
    axe = Axe()
    # Each role signs in and opens the pages no role before it could (manager first: the
    # most pages; then what only a liaison or an administrator sees).
    for user in sorted(world["users"], key=lambda u: u.username != "manager"):
        urls = [url for url in _pages(user, world["pks"]) if url not in visited]
        visited.update(urls)
        if not urls:
            continue
        page.context.clear_cookies()
        page.goto("/accounts/login/")
        page.get_by_label("Username").fill(user.username)
        page.get_by_label("Password").fill(DEMO_PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_load_state()
        for url in urls:
            seen = len(page.problems), len(missing)
            page.goto(url)
            page.wait_for_load_state("networkidle")
            assert page.url.endswith(url), f"{user.username} was sent from {url} to {page.url}"
            if not page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"):
                too_wide[url] = page.evaluate(WIDE)
            if broken := page.evaluate(BROKEN_WORDS):
                broken_words[url] = broken
            violations = axe.run(page).response["violations"]
            if violations:
                inaccessible[url] = [
                    f"{v['id']} ({v['impact']}): {v['help']}, e.g. {v['nodes'][0]['html'][:120]}"
                    for v in violations
                ]
            if len(page.problems) > seen[0]:
                problems[url] = page.problems[seen[0] :] + missing[seen[1] :]
    assert len(visited) > 45
    assert page.viewport_size == PHONE
    assert too_wide == {}
    assert broken_words == {}
    assert problems == {}
    assert inaccessible == {}
