"""GET /api/v1/partners/removed/: the partners deleted or merged away since a time, so a
sync that reads partners by updated_since can drop the ones that are gone."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
import yaml
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from partners.factories import ProviderFactory
from partners.models import Provider, ProviderRemoval
from partners.services.merges import partner_merge

pytestmark = pytest.mark.django_db

ClientFor = Callable[[Any], Client]
URL = "/api/v1/partners/removed/"


def removed(client: Client, **params: Any) -> Any:
    return client.get(reverse("api:partner-removal-list"), params)


def removed_at(provider_id: int, when: datetime) -> None:
    ProviderRemoval.objects.filter(provider_id=provider_id).update(removed_at=when)


def test_the_address_sits_beside_the_partners() -> None:
    assert reverse("api:partner-removal-list") == URL


def test_deleted_and_merged_partners_are_listed_since_a_time_oldest_first(
    liaison: User, manager: User, api_client_for: ClientFor
) -> None:
    long_ago, deleted, survivor, merged = ProviderFactory.create_batch(4)
    now = timezone.now()
    long_ago_id, deleted_id = long_ago.pk, deleted.pk  # delete() clears pk
    long_ago.delete()
    removed_at(long_ago_id, now - timedelta(days=30))
    deleted.delete()
    removed_at(deleted_id, now - timedelta(days=2))
    partner_merge(survivor=survivor, duplicate=merged, actor=manager)
    removed_at(merged.pk, now - timedelta(days=1))

    response = removed(api_client_for(liaison), since=(now - timedelta(days=7)).isoformat())

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["count"] == 2
    rows = body["results"]
    for row in rows:
        row["removed_at"] = datetime.fromisoformat(row["removed_at"])
    assert rows == [
        {
            "id": deleted_id,
            "npi": deleted.npi,
            "removed_at": now - timedelta(days=2),
            "reason": "deleted",
            "merged_into": None,
        },
        {
            "id": merged.pk,
            "npi": merged.npi,
            "removed_at": now - timedelta(days=1),
            "reason": "merged",
            "merged_into": survivor.pk,
        },
    ]
    # The survivor is no removal: it comes with the changed partners (updated_since).
    assert Provider.objects.filter(pk=survivor.pk).exists()


def test_since_includes_a_removal_at_that_very_time(
    liaison: User, api_client_for: ClientFor
) -> None:
    provider = ProviderFactory.create()
    provider_id = provider.pk
    provider.delete()
    at = datetime.fromisoformat("2026-03-01T15:00:00+00:00")
    removed_at(provider_id, at)
    client = api_client_for(liaison)
    assert [
        row["id"] for row in removed(client, since="2026-03-01T10:00:00-05:00").json()["results"]
    ] == [provider_id]
    assert removed(client, since="2026-03-01T15:00:00.000001Z").json()["count"] == 0


def test_a_time_beyond_utcs_years_is_before_or_after_every_removal(
    liaison: User, api_client_for: ClientFor
) -> None:
    provider = ProviderFactory.create()
    provider.delete()
    client = api_client_for(liaison)
    assert removed(client, since="0001-01-01T00:00:00+05:00").json()["count"] == 1
    assert removed(client, since="9999-12-31T23:59:59-05:00").json()["count"] == 0


def test_removals_come_in_pages(liaison: User, api_client_for: ClientFor) -> None:
    providers = ProviderFactory.create_batch(3)
    Provider.objects.filter(pk__in=[p.pk for p in providers]).delete()
    client = api_client_for(liaison)
    since = (timezone.now() - timedelta(hours=1)).isoformat()

    first = removed(client, since=since, page_size=2).json()
    second = removed(client, since=since, page_size=2, page=2).json()

    assert first["count"] == 3
    assert first["next"] is not None and "page=2" in first["next"]
    assert second["next"] is None
    listed = [row["id"] for row in first["results"] + second["results"]]
    assert sorted(listed) == sorted(p.pk for p in providers)
    assert removed(client, since=since, page_size=2, page=3).status_code == 404


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (
            {},
            "Required: the ISO 8601 time to list removals from, with its offset "
            "(e.g. 2026-03-01T00:00:00Z).",
        ),
        (
            {"since": "yesterday"},
            "Not an ISO 8601 time: give one with its offset (e.g. 2026-03-01T00:00:00Z).",
        ),
        (
            {"since": "2026-02-30T00:00:00Z"},
            "Not an ISO 8601 time: give one with its offset (e.g. 2026-03-01T00:00:00Z).",
        ),
        (
            {"since": "2026-03-01T00:00:00"},
            "Give the time's offset (Z for UTC, or e.g. -05:00): without one the time is "
            "ambiguous, and a removal could be missed.",
        ),
        (
            {"since": "2026-03-01"},
            "Give the time's offset (Z for UTC, or e.g. -05:00): without one the time is "
            "ambiguous, and a removal could be missed.",
        ),
        (
            {"since": ""},
            "Required: the ISO 8601 time to list removals from, with its offset "
            "(e.g. 2026-03-01T00:00:00Z).",
        ),
        (
            {"since": ["2026-03-01T00:00:00Z", "2026-04-01T00:00:00Z"]},
            "Give it once: it takes one value.",
        ),
    ],
)
def test_a_missing_unreadable_or_naive_since_is_a_400_saying_what_is_wrong(
    liaison: User, api_client_for: ClientFor, params: dict[str, Any], message: str
) -> None:
    response = removed(api_client_for(liaison), **params)
    assert response.status_code == 400
    assert response.json() == {"since": [message]}


def test_removals_need_a_token_and_the_right_to_read_partners(
    no_role_user: User, manager: User, api_client_for: ClientFor, client_for: ClientFor
) -> None:
    since = {"since": "2026-01-01T00:00:00Z"}
    assert Client().get(URL, since).status_code == 401
    # The signed-in browser session does not open the API.
    assert client_for(manager).get(URL, since).status_code == 401
    assert api_client_for(no_role_user).get(URL, since).status_code == 403
    assert api_client_for(manager).get(URL, since).status_code == 200


def test_nothing_is_written_through_the_removals(manager: User, api_client_for: ClientFor) -> None:
    assert api_client_for(manager).post(URL, {}).status_code == 405


def test_a_page_of_removals_costs_the_same_queries_as_rows_grow(
    liaison: User, token_for: Callable[[Any], str], django_assert_num_queries: Any
) -> None:
    client = Client(headers={"Authorization": f"Bearer {token_for(liaison)}"})
    since = {"since": (timezone.now() - timedelta(hours=1)).isoformat()}
    ProviderFactory.create_batch(2)
    Provider.objects.all().delete()
    # Token, expired tokens, permissions, count and the page.
    with django_assert_num_queries(5):
        assert len(client.get(URL, since).json()["results"]) == 2
    ProviderFactory.create_batch(10)
    Provider.objects.all().delete()
    with django_assert_num_queries(5):
        assert len(client.get(URL, since).json()["results"]) == 12


def test_the_openapi_schema_describes_the_removals(db: None) -> None:
    schema = yaml.safe_load(Client().get(reverse("api:schema")).content)
    operation = schema["paths"][URL]["get"]
    since = next(p for p in operation["parameters"] if p["name"] == "since")
    assert since["required"] is True
    assert since["schema"]["format"] == "date-time"
    assert {"200", "400", "401", "403"} <= set(operation["responses"])
    assert {"page", "page_size"} <= {p["name"] for p in operation["parameters"]}
    row = schema["components"]["schemas"]["PartnerRemoval"]
    assert set(row["properties"]) == {"id", "npi", "removed_at", "reason", "merged_into"}
    reasons = schema["components"]["schemas"]["RemovalReasonEnum"]["enum"]
    assert reasons == ["deleted", "merged"]
