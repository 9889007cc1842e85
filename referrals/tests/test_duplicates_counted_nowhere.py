"""Every other place a referral is counted leaves its copies out: the nightly tiering, the
relationship health, the rekindle queue, the registry finder's partner counts, the
dashboard (each checked here, received and sent out; the FHIR facade in interop's tests)."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from core.factories import UserFactory
from core.roles import Role
from partners.factories import ProviderFactory
from partners.models import Provider
from partners.services.health import providers_assess_health
from partners.services.tiers import providers_retier
from referrals.factories import ReferralFactory
from referrals.models import Referral
from referrals.services.duplicates import referral_mark_duplicate
from referrals.services.workflow import referral_log

pytestmark = pytest.mark.django_db

DOB = date(1950, 4, 2)


def _logged(provider: Provider, *, days_ago: float = 1, **kwargs) -> Referral:
    kwargs.setdefault("patient_last_name", "Olsen")
    kwargs.setdefault("patient_dob", DOB)
    if kwargs.get("direction") == "outbound" and not provider.in_network:
        kwargs.setdefault("out_of_network_reason", "The patient asked for this specialist.")
    return referral_log(
        referral=ReferralFactory.build(
            provider=provider, received_at=timezone.now() - timedelta(days=days_ago), **kwargs
        ),
        actor=None,
    )


def _with_copies(provider: Provider, copies: int, **kwargs) -> Referral:
    """One referral from `provider` entered `copies` more times, each marked a copy."""
    kept = _logged(provider, **kwargs)
    for _ in range(copies):
        referral_mark_duplicate(referral=_logged(provider, **kwargs), original=kept, actor=None)
    return kept


def test_the_nightly_tiering_counts_a_partner_once_for_a_referral_entered_many_times():
    steady = ProviderFactory()
    for n in range(4):
        _logged(steady, days_ago=10 + n, patient_last_name=f"Patient{n}")
    faxed_often = ProviderFactory()
    _with_copies(faxed_often, copies=6)

    providers_retier(as_of=timezone.localdate())

    steady.refresh_from_db()
    faxed_often.refresh_from_db()
    # Seven referrals counted would make it the top partner; it sent one.
    assert (steady.tier, faxed_often.tier) == ("A", "C")


def test_the_health_check_counts_no_copy_as_a_referral():
    provider = ProviderFactory()
    kept = _with_copies(provider, copies=3)

    providers_assess_health(as_of=timezone.localdate())

    provider.refresh_from_db()
    # Four counted would set a cadence (a gap between referrals); one is "few".
    [volume] = [r for r in provider.health_reasons if r["code"] == "few_referrals"]
    assert volume["count"] == 1
    assert volume["last"] == timezone.localtime(kept.received_at).date().isoformat()


def test_the_rekindle_queue_sees_a_drop_that_copies_would_hide():
    from outreach.services.rekindle import rekindle_candidates

    liaison = UserFactory(role=Role.LIAISON)
    provider = ProviderFactory(owner=liaison)
    for n in range(4):
        _logged(provider, days_ago=100 + n, patient_last_name=f"Earlier{n}")
    # This quarter one patient, faxed four times.
    _with_copies(provider, copies=3, days_ago=5)

    found = {row.pk: row for row in rekindle_candidates(now=timezone.now())}

    assert provider.pk in found
    assert (found[provider.pk].recent, found[provider.pk].prior) == (1, 4)


def test_the_registry_finder_counts_each_way_without_copies():
    from registry.selectors import partner_summaries

    provider = ProviderFactory(in_network=True)
    _with_copies(provider, copies=2)
    _with_copies(provider, copies=2, direction="outbound")

    summary = partner_summaries([provider.npi])[provider.npi]

    assert (summary.inbound, summary.outbound) == (1, 1)


def test_the_dashboard_counts_no_copy_as_open_or_received(client_for, manager):
    specialist = ProviderFactory(in_network=True)
    _with_copies(specialist, copies=2, direction="outbound")
    _with_copies(ProviderFactory(), copies=2)

    context = client_for(manager).get(reverse("core:dashboard")).context

    assert context["sent_open"] == 1
    assert context["received_30d"] == 1
    assert sum(row["count"] for row in context["pipeline"]) == 1
