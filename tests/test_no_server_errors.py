"""Generated bad input across every product page and form: never a server error.

Every URL pattern outside the admin is requested by every role with hostile query strings,
then every form found on it is posted back with hostile values in each of its fields. Any
5xx (or an unhandled exception) fails the test with the URL and the role.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from html.parser import HTMLParser
from typing import Any

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from core.factories import UserFactory
from core.roles import Role
from outreach.factories import ActivityFactory, EventFactory, PlannedVisitFactory, TaskFactory
from outreach.models import Invitation, LetterTemplate, NewsletterIssue, Task
from outreach.services.letters import letter_template_for
from outreach.services.loop import thank_you_prepare
from partners.factories import ProviderFactory, StaffMemberFactory
from referrals.factories import ReferralFactory
from referrals.models import Status
from referrals.services.workflow import referral_log, referral_transition

pytestmark = pytest.mark.django_db

HOSTILE = [
    "<script>alert(1)</script>",
    "'; DROP TABLE referrals_referral; --",
    "x" * 20_000,
    "\u202eevil\u200b\u0000",
    "-1",
    "99999999999999999999",
    "2026-02-30",
    "🩺👩‍⚕️",
    "",
]
SKIP_PREFIXES = ("admin/", "accounts/logout/")
NAME_ATTR = re.compile(r'<(?:input|select|textarea)[^>]*\bname="([^"]+)"')
FORM = re.compile(r'<form[^>]*method="post"[^>]*?(?:action="([^"]*)")?[^>]*>(.*?)</form>', re.S)


def _patterns(resolver: URLResolver | None = None, prefix: str = "") -> Iterator[str]:
    resolver = resolver or get_resolver()
    for entry in resolver.url_patterns:
        route = prefix + str(entry.pattern)
        if isinstance(entry, URLResolver):
            yield from _patterns(entry, route)
        elif isinstance(entry, URLPattern):
            yield route


def _fill(route: str, pk: int) -> str:
    route = re.sub(r"<int:\w+>", str(pk), route)
    route = re.sub(r"<(?:str|slug):\w+>", "not-a-real-token", route)
    route = re.sub(r"<[^>]+>", "x", route)
    return "/" + route.lstrip("^").rstrip("$")


@pytest.fixture
def world() -> dict[str, Any]:
    liaison = UserFactory.create(username="liaison", role=Role.LIAISON)
    provider = ProviderFactory.create(owner=liaison, email="p@example.org")
    StaffMemberFactory.create(organization=provider.organization)
    referral = referral_log(referral=ReferralFactory.build(provider=provider), actor=None)
    for status in (Status.ACCEPTED, Status.SCHEDULED, Status.SEEN):
        referral = referral_transition(
            referral=referral, to_status=status, actor=None, appointment_at=referral.received_at
        )
    thank_you_prepare(referral_id=referral.pk)
    ActivityFactory.create(logged_by=liaison).providers.add(provider)
    TaskFactory.create(assignee=liaison, provider=provider)
    rekindle = TaskFactory.create(assignee=liaison, provider=provider, kind=Task.Kind.REKINDLE)
    visit = PlannedVisitFactory.create(liaison=liaison, organization=provider.organization)
    invitation = Invitation.objects.create(event=EventFactory.create(), provider=provider)
    newsletter = NewsletterIssue.objects.create(subject="News", body="Dear {{ provider_name }}")
    return {
        "users": [
            liaison,
            UserFactory.create(username="manager", role=Role.MANAGER),
            UserFactory.create(username="coordinator", role=Role.COORDINATOR),
            UserFactory.create(username="admin", role=Role.ADMINISTRATOR),
        ],
        "pks": sorted(
            {
                provider.pk,
                referral.pk,
                # Made if missing: a browser test's flush before this one empties the
                # rows the data migrations made.
                letter_template_for(LetterTemplate.Kind.THANK_YOU).pk,
                letter_template_for(LetterTemplate.Kind.EVENT_REMINDER).pk,
                1,
                visit.pk,
                invitation.event_id,
                invitation.pk,
                newsletter.pk,
                rekindle.pk,
            }
        ),
    }


def _check(response: Any, what: str) -> None:
    assert response.status_code < 500, f"{response.status_code} for {what}"


def test_no_page_or_form_answers_with_a_server_error(world: dict[str, Any]) -> None:
    routes = [r for r in _patterns() if not r.startswith(SKIP_PREFIXES)]
    assert len(routes) > 20
    hostile = itertools.cycle(HOSTILE)
    for user in world["users"]:
        client = Client(raise_request_exception=False)
        client.force_login(user)
        for route, pk in itertools.product(routes, world["pks"]):
            url = _fill(route, pk)
            query = {
                key: next(hostile)
                for key in (
                    "q",
                    "page",
                    "status",
                    "provider",
                    "received_after",
                    "scope",
                    "state",
                    "organization",
                    "number",
                    "mine",
                )
            }
            response = client.get(url, query)
            _check(response, f"GET {url} as {user.username}")
            page = client.get(url)
            _check(page, f"GET {url} as {user.username}")
            if page.status_code != 200 or "html" not in page.get("Content-Type", ""):
                continue
            for action, body in FORM.findall(page.content.decode()):
                names = set(NAME_ATTR.findall(body)) - {"csrfmiddlewaretoken"}
                data = {name: next(hostile) for name in names}
                target = action or url
                _check(client.post(target, data), f"POST {target} as {user.username}")
                _check(
                    client.post(target, data, HTTP_HX_REQUEST="true"),
                    f"htmx POST {target} as {user.username}",
                )


# One field at a time, the others left at the values the page itself shows, so a request
# gets past the validation of the other fields and into the views and services behind them.
ONE_FIELD_HOSTILE = ["ab\x00cd", "9" * 5000, "²", "2026-13-45", "-1", "1e999", "x" * 20_000]


class _FormReader(HTMLParser):
    """The forms of a page with the values a browser would send back unchanged."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict[str, Any]] = []
        self._select: str | None = None
        self._textarea: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {key: value or "" for key, value in attrs}
        if tag == "form":
            self.forms.append(
                {"method": a.get("method", "get").lower(), "action": a.get("action"), "fields": {}}
            )
            return
        if not self.forms or not a.get("name"):
            return
        fields = self.forms[-1]["fields"]
        name = a["name"]
        kind = a.get("type", "text").lower()
        if tag == "input" and kind in ("checkbox", "radio"):
            if "checked" in a or name not in fields:
                fields[name] = a.get("value", "on")
        elif tag == "input" and kind not in ("submit", "button", "image", "reset", "file"):
            fields[name] = a.get("value", "")
        elif tag == "select":
            self._select = name
            fields.setdefault(name, "")
        elif tag == "option" and self._select:
            if "selected" in a or not fields.get(self._select):
                fields[self._select] = a.get("value", "")
        elif tag == "textarea":
            self._textarea = name
            fields[name] = ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "select":
            self._select = None
        elif tag == "textarea":
            self._textarea = None

    def handle_data(self, data: str) -> None:
        if self._textarea and self.forms:
            self.forms[-1]["fields"][self._textarea] += data


def test_no_form_answers_with_a_server_error_with_one_field_hostile_at_a_time(
    world: dict[str, Any],
) -> None:
    routes = [r for r in _patterns() if not r.startswith(SKIP_PREFIXES)]
    failures: set[str] = set()
    for user in world["users"]:
        client = Client(raise_request_exception=False)
        client.force_login(user)
        for route, pk in itertools.product(routes, world["pks"]):
            if "<int:" not in route and pk != world["pks"][0]:
                continue
            url = _fill(route, pk)
            page = client.get(url)
            if page.status_code != 200 or "html" not in page.get("Content-Type", ""):
                continue
            reader = _FormReader()
            reader.feed(page.content.decode())
            for form in reader.forms:
                target = form["action"] or url
                if "logout" in target:
                    continue
                send = client.get if form["method"] == "get" else client.post
                fields = {k: v for k, v in form["fields"].items() if k != "csrfmiddlewaretoken"}
                for name, value in itertools.product(fields, ONE_FIELD_HOSTILE):
                    response = send(target, {**fields, name: value})
                    if response.status_code >= 500:
                        failures.add(
                            f"{send.__name__.upper()} {target} {name}={value[:12]!r} as {user.username}"
                        )
    assert not failures, sorted(failures)
