"""Generated bad input for the FHIR facade (hypothesis): a valid referral with any one of
its values replaced by any JSON value, or any one key dropped, is either taken (201) or
refused with an OperationOutcome saying why (4xx); never a server error. Hostile search
parameters likewise."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from interop.tests.test_fhir_service_request import SEARCH, adapted_myringotomy
from partners.factories import ProviderFactory

pytestmark = pytest.mark.django_db

ClientFor = Callable[[Any], Client]
FUZZ = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=40)
    | st.sampled_from(["", "#pat", "#referrer", "Practitioner/1", "2026-02-30", "\x00", "9" * 400]),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)


def _paths(node: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every place in a JSON document: dictionary keys and list positions, depth first."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield (*path, key)
            yield from _paths(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield (*path, index)
            yield from _paths(value, (*path, index))


def _apply(document: dict[str, Any], path: tuple[Any, ...], value: Any, *, drop: bool) -> Any:
    changed = copy.deepcopy(document)
    parent = changed
    for step in path[:-1]:
        parent = parent[step]
    if drop:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return changed


def _assert_answered(response: Any, body: Any) -> None:
    sent = json.dumps(body)[:300]
    assert response.status_code < 500, sent
    if response.status_code >= 400:
        outcome = response.json()
        assert outcome["resourceType"] == "OperationOutcome", sent
        assert outcome["issue"][0]["diagnostics"], sent


@FUZZ
@given(data=st.data())
def test_a_referral_with_any_one_value_changed_is_taken_or_refused_with_a_reason(
    coordinator: User, api_client_for: ClientFor, data: st.DataObject
) -> None:
    partner = ProviderFactory.create()
    valid = adapted_myringotomy(partner.npi)
    path = data.draw(st.sampled_from(list(_paths(valid))), label="path")
    drop = data.draw(st.booleans(), label="drop")
    value = None if drop else data.draw(JSON_VALUES, label="value")
    body = _apply(valid, path, value, drop=drop)
    response = api_client_for(coordinator).post(
        SEARCH, json.dumps(body), content_type="application/fhir+json"
    )
    _assert_answered(response, body)


@FUZZ
@given(
    parameter=st.sampled_from(
        ["status", "requester", "requester:identifier", "authored", "_count", "_id", "page"]
    ),
    value=st.text(max_size=60),
    resource=st.sampled_from(
        ["ServiceRequest", "Practitioner", "PractitionerRole", "Organization"]
    ),
)
def test_any_search_value_is_answered_with_a_bundle_or_a_reason(
    coordinator: User, api_client_for: ClientFor, parameter: str, value: str, resource: str
) -> None:
    response = api_client_for(coordinator).get(f"/fhir/r4/{resource}", {parameter: value})
    _assert_answered(response, {parameter: value})
    if response.status_code == 200:
        assert response.json()["resourceType"] == "Bundle"
