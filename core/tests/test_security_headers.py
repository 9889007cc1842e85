"""The Content-Security-Policy (django-csp, referral_crm/settings.py) on every kind of
response: staff pages, the public intake form, the REST API and FHIR facade, errors."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from intake.services import intake_link_create
from interop.services import api_token_create
from partners.factories import OrganizationFactory

pytestmark = pytest.mark.django_db


def policy(response: Any) -> dict[str, list[str]]:
    """The Content-Security-Policy header as {directive: [sources]}."""
    assert "Content-Security-Policy" in response, "every response carries the policy"
    directives = (part.split() for part in response["Content-Security-Policy"].split(";"))
    return {name: sources for name, *sources in directives}


def assert_strict(response: Any) -> None:
    found = policy(response)
    assert found["default-src"] == ["'self'"]
    # Only this site's own files run: no inline script or handler, no eval, no CDN.
    assert found["script-src"] == ["'self'"]
    assert found["style-src"] == ["'self'"]
    assert found["object-src"] == ["'none'"]
    assert found["base-uri"] == ["'self'"]
    assert found["form-action"] == ["'self'"]
    assert found["frame-ancestors"] == ["'none'"]
    assert found["connect-src"] == ["'self'"]
    # The faxed document previewed from the browser's own copy (static/js/app.js).
    assert "blob:" in found["img-src"] and "blob:" in found["frame-src"]
    assert "'unsafe-inline'" not in response["Content-Security-Policy"]
    assert "'unsafe-eval'" not in response["Content-Security-Policy"]
    # What a browser refuses is reported, and logged (core.csp).
    assert found["report-uri"] == [reverse("core:csp_report")]


def test_a_staff_page_and_the_sign_in_page_carry_the_strict_policy(client_for, manager):
    response = client_for(manager).get(reverse("core:dashboard"))
    assert response.status_code == 200
    assert_strict(response)
    assert_strict(Client().get(reverse("login")))


def test_the_public_intake_form_carries_the_strict_policy(coordinator):
    office = OrganizationFactory()
    _, token = intake_link_create(organization=office, actor=coordinator, label="front desk")
    response = Client().get(reverse("intake:public_form", args=[token]))
    assert response.status_code == 200
    assert_strict(response)


def test_api_and_fhir_answers_carry_the_strict_policy(manager):
    token = api_token_create(user=manager, days=30)[1]
    client = Client(headers={"Authorization": f"Bearer {token}"})
    response = client.get(reverse("api:partner-list"))
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/json")
    assert_strict(response)
    assert_strict(client.get(reverse("fhir:metadata")))
    # Refusals too: a missing token, an unknown address.
    assert_strict(Client().get(reverse("api:partner-list")))
    assert_strict(Client().get("/api/v1/no-such-thing/"))


def test_a_missing_page_carries_the_strict_policy(client_for, manager):
    response = client_for(manager).get("/no-such-page/")
    assert response.status_code == 404
    assert_strict(response)
