"""Every link a role is shown leads to a page it may open.

A link to a page that then answers "not found" or "forbidden" looks like a broken app to a
liaison: a letter on a partner's timeline that only its owner may open, a task on a
referral that is someone else's. Each demo role follows every link from its dashboard
outward over the demo data and must meet neither.
"""

from __future__ import annotations

import io
import re

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client

from core.management.commands.seed_demo import DEMO_USERS

pytestmark = pytest.mark.django_db

HREF = re.compile(r'href="(/[^"#]*)"')
# Links that act rather than show (signing out) or hand over a file.
NOT_PAGES = ("/accounts/logout/", "/static/", "export", ".csv", ".ics", "/download")
PAGES_PER_ROLE = 300


def _broken_links(client: Client) -> tuple[int, list[str]]:
    queue: list[tuple[str, str]] = [("/", "(start)")]
    seen: set[str] = set()
    broken: list[str] = []
    while queue and len(seen) < PAGES_PER_ROLE:
        url, source = queue.pop(0)
        if url in seen:
            continue
        seen.add(url)
        response = client.get(url, follow=True)
        if response.status_code != 200:
            broken.append(f"{url} ({response.status_code}), linked from {source}")
            continue
        if not response.get("Content-Type", "").startswith("text/html"):
            continue
        for href in HREF.findall(response.content.decode()):
            href = href.replace("&amp;", "&")
            if href not in seen and not any(part in href for part in NOT_PAGES):
                queue.append((href, url))
    return len(seen), broken


def test_every_link_each_role_is_shown_opens():
    call_command("seed_demo", referrals=150, stdout=io.StringIO())
    problems = []
    for username, *_ in DEMO_USERS:
        client = Client()
        client.force_login(get_user_model().objects.get(username=username))
        pages, broken = _broken_links(client)
        assert pages > 40, f"the crawl reached too little of the app as {username}"
        problems += [f"{username}: {line}" for line in broken]
    assert not problems, "links a role cannot open:\n" + "\n".join(problems)
