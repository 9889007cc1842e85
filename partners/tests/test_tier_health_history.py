"""A partner's Changes page lists its tier and health changes too: those made by the
nightly tiering and health check, and a manager's tier override, with the reason each
gave. They are kept in their own tables (TierChange, HealthChange, written in bulk at
night, with reasons the record's history has no room for) and woven into the page by time,
each on the page whose record changes surround it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from core.templatetags.people import person
from partners.factories import ProviderFactory
from partners.models import HealthChange, Provider, TierChange
from partners.services.health import providers_assess_health
from partners.services.tiers import provider_set_tier, providers_retier
from referrals.factories import ReferralFactory

pytestmark = pytest.mark.django_db


def _history_url(provider: Provider) -> str:
    return reverse("partners:provider_history", args=[provider.pk])


def test_the_nightly_tiering_and_health_check_are_on_the_changes_page_with_their_reasons(
    client_for, manager
):
    provider = ProviderFactory()
    for days in (10, 40, 70, 100, 130):
        ReferralFactory(provider=provider, received_at=timezone.now() - timedelta(days=days))
    providers_retier(as_of=timezone.localdate())
    providers_assess_health(as_of=timezone.localdate())
    assessed = Provider.objects.get(pk=provider.pk)
    assert assessed.tier == "A" and assessed.health

    page = client_for(manager).get(_history_url(provider)).content.decode()

    assert "Nightly tiering: 5 referrals in 12 months" in page
    assert "Tier" in page and "A: top referrer" in page
    assert "Nightly health check" in page
    assert "Health" in page and assessed.get_health_display() in page
    assert "by the system" in page


def test_a_managers_tier_override_is_on_the_changes_page_by_them_with_their_reason(
    client_for, manager
):
    provider = ProviderFactory(tier="C")
    provider_set_tier(provider=provider, tier="A", reason="Opening a second clinic", actor=manager)
    page = client_for(manager).get(_history_url(provider)).content.decode()
    assert "Set by a manager: Opening a second clinic" in page
    assert f"by {person(manager)}" in page
    assert "C: occasional referrer" in page and "A: top referrer" in page


def test_each_tier_change_is_on_the_page_whose_record_changes_surround_it(client_for, manager):
    provider = ProviderFactory(phone="(402) 555-0000")
    long_ago = timezone.now() - timedelta(days=400)
    # Older than every record change but the first: on the last page only.
    TierChange.objects.create(
        provider=provider,
        kind=TierChange.Kind.NIGHTLY,
        from_tier="",
        to_tier="C",
        reason="The oldest tier change",
        changed_at=long_ago,
    )
    Provider.history.filter(id=provider.pk).update(history_date=long_ago - timedelta(days=1))
    for n in range(30):
        provider.phone = f"(402) 555-{n + 1:04d}"
        provider.save()
    # Newer than every record change: on the first page only.
    TierChange.objects.create(
        provider=provider,
        kind=TierChange.Kind.NIGHTLY,
        from_tier="C",
        to_tier="B",
        reason="The newest tier change",
        changed_at=timezone.now() + timedelta(seconds=1),
    )
    client = client_for(manager)
    first = client.get(_history_url(provider)).content.decode()
    last = client.get(_history_url(provider), {"page": 2}).content.decode()
    assert "The newest tier change" in first and "The newest tier change" not in last
    assert "The oldest tier change" in last and "The oldest tier change" not in first
    # Newest first on the page: the tier change above the phone change before it.
    assert first.index("The newest tier change") < first.index("(402) 555-0030")


def test_the_changes_page_reads_in_the_same_queries_however_many_tier_and_health_changes(
    client_for, manager
):
    provider = ProviderFactory()
    client = client_for(manager)
    url = _history_url(provider)
    client.get(url)

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get(url).status_code == 200
        return len(captured.captured_queries)

    few = queries()
    # The record's history, then its tier changes and its health changes (one query each).
    assert few == 9
    now = timezone.now()
    TierChange.objects.bulk_create(
        TierChange(
            provider=provider,
            kind=TierChange.Kind.OVERRIDE,
            from_tier="B",
            to_tier="A",
            reason=f"Override {n}",
            changed_by=manager,
            changed_at=now - timedelta(minutes=n),
        )
        for n in range(20)
    )
    HealthChange.objects.bulk_create(
        HealthChange(provider=provider, from_health="active", to_health="at_risk", changed_at=now)
        for _ in range(20)
    )
    assert queries() == few
    assert client.get(url).content.decode().count("Set by a manager: Override") == 20


def test_an_expired_managers_tier_handed_back_at_night_says_so(client_for, manager):
    provider = ProviderFactory(tier="A")
    provider_set_tier(
        provider=provider,
        tier="A",
        reason="Opening a second clinic",
        actor=manager,
        pinned_until=timezone.localdate() - timedelta(days=1),
    )
    providers_retier(as_of=timezone.localdate())
    page = client_for(manager).get(_history_url(provider)).content.decode()
    assert "Returned to nightly tiering: The manager&#x27;s tier was kept until" in page
    assert "Kept from the nightly tiering" in page
    # No referrals in 12 months: the nightly tiering takes the tier away.
    assert "Nightly tiering: No referrals in 12 months" in page
