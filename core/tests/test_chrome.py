"""The page chrome (navigation, messages, scripts) is written once, in Jinja2, and drawn
around Django template pages and Jinja2 pages alike."""

from __future__ import annotations

import re

import pytest
from django.test import RequestFactory
from django.urls import reverse
from django.views.defaults import server_error

from partners.factories import ProviderFactory
from referrals.factories import ReferralFactory
from referrals.services.workflow import referral_log

pytestmark = pytest.mark.django_db

DJANGO_TEMPLATE_PAGE = "partners:organization_list"
JINJA2_PAGE = "referrals:list"


def _nav(html: str) -> str:
    found = re.search(r"<nav class=\"navbar.*?</nav>", html, re.S)
    assert found is not None
    nav = found.group(0)
    # Each form's CSRF token is masked afresh.
    return re.sub(r'name="csrfmiddlewaretoken" value="\w+"', "", nav)


@pytest.mark.parametrize("role", ["manager", "liaison"])
def test_both_kinds_of_page_draw_the_same_navigation_for_a_role(client_for, request, role):
    client = client_for(request.getfixturevalue(role))
    django_page = client.get(reverse(DJANGO_TEMPLATE_PAGE)).content.decode()
    jinja_page = client.get(reverse(JINJA2_PAGE)).content.decode()
    assert _nav(django_page) == _nav(jinja_page)
    assert (reverse("audit:list") in _nav(django_page)) is (role == "manager")
    for page in (django_page, jinja_page):
        assert "bootstrap.bundle.min.js" in page
        assert re.search(r'hx-headers=\'\{"X-CSRFToken": "\w+"\}\'', page)


def test_a_message_is_shown_once_on_the_next_page(client_for, manager):
    client = client_for(manager)
    response = client.post(
        reverse("partners:organization_create"), {"name": "Lakeside Family Medicine"}, follow=True
    )
    assert response.content.decode().count("alert-success") == 1
    assert "alert-success" not in client.get(reverse(JINJA2_PAGE)).content.decode()


def test_the_server_error_page_draws_without_a_request_context():
    request = RequestFactory().get("/")
    response = server_error(request)
    assert response.status_code == 500
    page = response.content.decode()
    assert "Referral CRM" in page
    assert "Log out" not in page  # drawn as for a visitor


def test_pages_of_the_queue_keep_its_filters(client_for, manager):
    ReferralFactory.create_batch(30, urgency="urgent")
    page = client_for(manager).get(reverse(JINJA2_PAGE), {"urgency": "urgent", "open": ""})
    html = page.content.decode()
    assert "Page 1 of 2" in html
    link = re.search(r'href="\?([^"]*page=2[^"]*)"', html).group(1)
    assert "urgency=urgent" in link and "open=" in link


def test_a_refused_page_names_the_role_and_whom_to_ask(client_for, manager):
    page = client_for(manager).get(reverse("registry:import"))
    assert page.status_code == 403
    html = page.content.decode()
    assert "Your role (Practice manager) does not include this page" in html
    assert "ask your practice manager" not in html


def test_the_dashboard_counts_referrals_to_us_by_status_and_those_we_sent_apart(
    client_for, manager
):
    for direction in ("inbound", "inbound", "outbound"):
        referral_log(
            referral=ReferralFactory.build(
                provider=ProviderFactory(in_network=True), direction=direction
            ),
            actor=None,
        )
    page = client_for(manager).get(reverse("core:dashboard")).content.decode()
    pipeline = re.search(r'data-testid="pipeline">(.*?)</div>', page, re.S)[1]
    received = re.search(r"Received <span[^>]*>(\d+)</span>", pipeline)[1]
    sent = re.search(r'data-testid="sent-open">\s*We sent out, still open <span[^>]*>(\d+)<', page)
    assert (received, sent[1]) == ("2", "1")


def test_a_refused_request_is_one_line_in_the_log_not_a_traceback(client_for, liaison, caplog):
    with caplog.at_level("WARNING", logger="django.request"):
        assert client_for(liaison).get(reverse("audit:list")).status_code == 403
    refused = [r for r in caplog.records if r.name == "django.request"]
    assert refused and refused[0].getMessage().startswith("Forbidden")
    assert all(record.exc_info is None for record in refused)
