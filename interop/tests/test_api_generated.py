"""Requests generated from the REST API's own OpenAPI schema (schemathesis): whatever the
parameters, the API never answers with a server error, and every answer matches what the
schema promises (status codes, content type, response body)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from django.contrib.auth.models import User
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck, settings

from partners.factories import ProviderFactory
from referrals.factories import ReferralFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _keep_the_test_connection() -> Iterator[None]:
    """Requests go through the whole WSGI stack in this process, on the test's database.
    As Django's test client does, the connection is not closed at the end of each request
    (it holds the test's transaction)."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@pytest.fixture
def token_headers(coordinator: User, token_for: Any) -> dict[str, str]:
    # Rows to read, patient details included (a coordinator sees them).
    for provider in ProviderFactory.create_batch(3):
        ReferralFactory.create_batch(2, provider=provider)
    return {"Authorization": f"Bearer {token_for(coordinator)}"}


# The schema the API publishes at /api/v1/schema/, generated the same way (no request, no
# database needed while the tests are collected).
schema = schemathesis.openapi.from_dict(
    json.loads(json.dumps(SchemaGenerator().get_schema(request=None, public=True), default=str))
)
schema.app = get_wsgi_application()


@schema.parametrize()
@settings(
    max_examples=100,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_every_generated_request_gets_an_answer_the_schema_promises(
    case: Any, token_headers: dict[str, str]
) -> None:
    case.call_and_validate(headers=token_headers)
