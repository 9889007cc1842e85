from datetime import datetime, time, timedelta

import pytest
from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from core.dates import twelve_months_start
from outreach.factories import ActivityFactory
from partners.factories import ProviderFactory
from partners.models import HealthChange, Provider, TierChange
from partners.services.health import assess_health, providers_assess_health
from partners.services.tiers import (
    TierVolume,
    classify_tiers,
    provider_set_tier,
    providers_retier,
)
from partners.tasks import assess_partners
from referrals.factories import ReferralFactory

pytestmark = pytest.mark.django_db

TODAY = timezone.localdate()


def _referrals(provider, count, *, days_ago=10, direction="inbound"):
    at = timezone.now() - timedelta(days=days_ago)
    for _ in range(count):
        ReferralFactory(provider=provider, received_at=at, direction=direction)


def test_the_top_partners_sending_80_percent_are_a_and_growth_separates_b_from_c():
    volumes = [
        TierVolume(1, last_12m=50, last_6m=25),
        TierVolume(2, last_12m=30, last_6m=15),
        TierVolume(3, last_12m=8, last_6m=4),  # steady
        TierVolume(4, last_12m=3, last_6m=3),  # growing: 3 now, none before
        TierVolume(5, last_12m=3, last_6m=1),  # occasional, shrinking
        TierVolume(6, last_12m=0, last_6m=0),
    ]
    tiers = {pk: tier for pk, (tier, _reason) in classify_tiers(volumes).items()}
    assert tiers == {1: "A", 2: "A", 3: "B", 4: "B", 5: "C", 6: ""}


def test_partners_tied_at_the_80_percent_line_land_in_the_same_tier():
    volumes = [TierVolume(1, 10, 5), TierVolume(2, 5, 2), TierVolume(3, 5, 2)]
    tiers = {pk: tier for pk, (tier, _reason) in classify_tiers(volumes).items()}
    assert tiers[2] == tiers[3] == "A"


def test_nightly_tiering_writes_history_only_for_changed_tiers_with_no_actor():
    top, steady, quiet = ProviderFactory(tier="C"), ProviderFactory(tier="B"), ProviderFactory()
    _referrals(top, 40)
    _referrals(steady, 5, days_ago=200)
    result = providers_retier(as_of=TODAY)
    top.refresh_from_db()
    steady.refresh_from_db()
    quiet.refresh_from_db()
    assert (top.tier, steady.tier, quiet.tier) == ("A", "B", "")
    change = TierChange.objects.get()
    assert (change.provider, change.from_tier, change.to_tier) == (top, "C", "A")
    assert change.changed_by is None and change.kind == TierChange.Kind.NIGHTLY
    assert "40 referrals in 12 months" in change.reason
    assert result.changed == 1
    # A second run the same night changes nothing.
    assert providers_retier(as_of=TODAY).changed == 0
    assert TierChange.objects.count() == 1


def test_nightly_tiering_uses_one_aggregate_query_however_many_partners(
    django_assert_max_num_queries,
):
    for provider in ProviderFactory.create_batch(30, tier="A"):
        _referrals(provider, 1)
    providers_retier(as_of=TODAY)  # first run: every tier moves
    ProviderFactory.create_batch(30)
    # The aggregate, then the transaction with one locking read: no query per partner.
    with django_assert_max_num_queries(5):
        providers_retier(as_of=TODAY)


def test_a_manager_pin_survives_nightly_tiering_until_its_date(manager):
    provider = ProviderFactory(tier="")
    _referrals(provider, 3, days_ago=200)
    _referrals(ProviderFactory(), 30)
    provider_set_tier(
        provider=provider,
        tier="A",
        reason="New hospitalist group opening",
        actor=manager,
        pinned_until=TODAY + timedelta(days=30),
    )
    providers_retier(as_of=TODAY)
    provider.refresh_from_db()
    assert provider.tier == "A" and provider.tier_pinned
    # After the date the nightly tiering takes over again and says so in the history.
    providers_retier(as_of=TODAY + timedelta(days=31))
    provider.refresh_from_db()
    assert provider.tier == "C"
    assert not provider.tier_pinned and provider.tier_pinned_until is None
    kinds = list(provider.tier_changes.order_by("pk").values_list("kind", "to_tier"))
    assert kinds == [("override", "A"), ("pin_cleared", "A"), ("nightly", "C")]


def test_a_pin_without_a_date_holds_until_a_manager_clears_it(client_for, manager):
    provider = ProviderFactory(tier="")
    client = client_for(manager)
    client.post(
        reverse("partners:provider_tier", args=[provider.pk]), {"tier": "B", "reason": "Promising"}
    )
    providers_retier(as_of=TODAY + timedelta(days=900))
    provider.refresh_from_db()
    assert provider.tier == "B"
    client.post(reverse("partners:provider_unpin_tier", args=[provider.pk]))
    providers_retier(as_of=TODAY)
    provider.refresh_from_db()
    assert provider.tier == "" and not provider.tier_pinned


def test_returning_a_tier_nobody_pinned_to_nightly_tiering_says_nothing_changed(
    client_for, manager
):
    # The button pressed twice, or on a page opened before a colleague cleared the pin.
    provider = ProviderFactory(tier="B")
    response = client_for(manager).post(
        reverse("partners:provider_unpin_tier", args=[provider.pk]), follow=True
    )
    assert "already set by nightly tiering" in response.content.decode()
    assert not provider.tier_changes.exists()


def test_a_pin_date_in_the_past_is_refused_with_a_message(client_for, manager):
    provider = ProviderFactory(tier="B")
    response = client_for(manager).post(
        reverse("partners:provider_tier", args=[provider.pk]),
        {"tier": "A", "reason": "x", "pinned_until": "2001-01-01"},
        follow=True,
    )
    assert "Choose today or a later date" in response.content.decode()
    provider.refresh_from_db()
    assert provider.tier == "B"


def _ago(days):
    return (TODAY - timedelta(days=days)).isoformat()


def _health(**overrides):
    facts = {
        "as_of": TODAY,
        "last_referral_on": TODAY - timedelta(days=5),
        "first_12m_on": TODAY - timedelta(days=305),
        "last_12m": 11,  # one about every 30 days
        "last_6m": 6,
        "last_touch_on": TODAY - timedelta(days=20),
    }
    return assess_health(**{**facts, **overrides})


def test_a_partner_referring_on_its_usual_cadence_and_recently_visited_is_active():
    health, reasons = _health()
    assert health == Provider.Health.ACTIVE
    assert {"code": "on_cadence", "last": _ago(5), "gap": 30} in reasons


def test_a_partner_silent_for_more_than_twice_its_usual_gap_is_at_risk():
    health, reasons = _health(
        last_referral_on=TODAY - timedelta(days=70), first_12m_on=TODAY - timedelta(days=370)
    )
    assert health == Provider.Health.AT_RISK
    assert reasons[0] == {"code": "overdue", "last": _ago(70), "gap": 30}


def test_a_halved_volume_against_the_prior_six_months_is_at_risk():
    health, reasons = _health(last_12m=12, last_6m=3)
    assert health == Provider.Health.AT_RISK
    assert {"code": "volume_drop", "recent": 3, "prior": 9} in reasons


def test_a_busy_partner_nobody_touched_for_a_quarter_is_at_risk():
    health, reasons = _health(last_touch_on=TODAY - timedelta(days=120))
    assert health == Provider.Health.AT_RISK
    assert {"code": "no_touch", "last": _ago(120)} in reasons


def test_half_a_year_without_a_referral_is_dormant_and_none_ever_is_new():
    assert _health(last_referral_on=TODAY - timedelta(days=200))[0] == Provider.Health.DORMANT
    health, reasons = _health(last_referral_on=None, first_12m_on=None, last_12m=0, last_6m=0)
    assert health == Provider.Health.NEW
    assert reasons[0] == {"code": "never_referred"}


def test_the_nightly_assessment_stores_health_and_records_each_change():
    steady, gone = ProviderFactory(), ProviderFactory()
    for days in (10, 40, 70, 100):
        _referrals(steady, 1, days_ago=days)
    ActivityFactory(occurred_at=timezone.now() - timedelta(days=3)).providers.add(steady)
    _referrals(gone, 3, days_ago=400)
    providers_assess_health(as_of=TODAY)
    steady.refresh_from_db()
    gone.refresh_from_db()
    assert steady.health == Provider.Health.ACTIVE
    assert gone.health == Provider.Health.DORMANT
    assert {"code": "touched", "last": _ago(3)} in steady.health_reasons
    assert HealthChange.objects.filter(provider=gone, from_health="new", to_health="dormant")
    providers_assess_health(as_of=TODAY)
    assert HealthChange.objects.count() == 2  # nothing moved on the second run


def test_the_nightly_task_is_scheduled_and_runs_tiering_and_health():
    assert any(
        entry["task"] == "partners.tasks.assess_partners"
        for entry in settings.CELERY_BEAT_SCHEDULE.values()
    )
    provider = ProviderFactory()
    _referrals(provider, 2)
    assess_partners()
    provider.refresh_from_db()
    assert provider.tier == "A"
    assert provider.health == Provider.Health.AT_RISK  # referring, but never touched


def test_the_partner_page_explains_health_in_words_and_shows_volume_and_reciprocity(
    client_for, manager
):
    provider = ProviderFactory()
    _referrals(provider, 4, days_ago=400)
    _referrals(provider, 2, days_ago=15)
    _referrals(provider, 5, days_ago=20, direction="outbound")
    providers_assess_health(as_of=TODAY)
    page = client_for(manager).get(provider.get_absolute_url()).content.decode()
    assert "Last referral 15 days ago; 2 in 12 months, too few to know a usual gap." in page
    assert "No visit, call or other touch ever logged." in page
    assert "They sent us <strong>2</strong>; we sent them <strong>5</strong>." in page
    assert "We sent 3 more than we received." in page
    assert page.count("<rect ") == 12
    month_of_the_referrals = timezone.localdate(timezone.now() - timedelta(days=15))
    assert f"{month_of_the_referrals:%b %Y}: 2</title>" in page


def test_the_partner_list_filters_by_health(client_for, coordinator):
    ProviderFactory(last_name="Wiebe", health=Provider.Health.AT_RISK)
    ProviderFactory(last_name="Pilcher", health=Provider.Health.ACTIVE)
    page = (
        client_for(coordinator)
        .get(reverse("partners:provider_list"), {"health": "at_risk"})
        .content.decode()
    )
    assert "Wiebe" in page and "Pilcher" not in page


def test_the_partner_page_offers_managers_the_tier_form_with_its_current_tier(client_for, manager):
    provider = ProviderFactory(tier="B")
    page = client_for(manager).get(provider.get_absolute_url()).content.decode()
    form = page[page.index(reverse("partners:provider_tier", args=[provider.pk])) :]
    assert '<option value="B" selected>B: steady referrer</option>' in form
    assert '<label for="id_reason" class="form-label requiredField">Reason' in form
    assert 'class="form-control" required aria-describedby="id_reason_helptext"' in form
    assert "kept in the partner&#39;s history" in form
    assert '<input type="date" name="pinned_until" class="form-control"' in form


def test_a_refused_tier_change_comes_back_as_typed_with_the_error_by_its_field(client_for, manager):
    provider = ProviderFactory(tier="C")
    url = reverse("partners:provider_tier", args=[provider.pk])
    response = client_for(manager).post(
        url, {"tier": "B", "reason": "Sends us every knee now", "pinned_until": "2020-01-01"}
    )
    assert response.status_code == 200
    page = response.content.decode()
    form = page[page.index(url) :]
    assert "Sends us every knee now" in form  # the reason typed is still there
    assert '<option value="B" selected>' in form
    assert 'class="form-control is-invalid"' in form
    assert '<div class="invalid-feedback d-block">' in form
    provider.refresh_from_db()
    assert provider.tier == "C"


def test_nightly_tiering_and_health_count_the_same_twelve_months_as_the_partner_page():
    # A referral on the first day of the twelve months the partner page, the partner list
    # and the reports count (that day a year ago, whole): the nightly run must count it too.
    partner = ProviderFactory()
    days = [TODAY - timedelta(days=n) for n in (365, 100, 10)]
    for day in days:
        at = timezone.make_aware(datetime.combine(day, time(12, 0)))
        ReferralFactory(provider=partner, received_at=at, direction="inbound")
    assert partner.referral_figures(since=twelve_months_start()).received == 3

    providers_retier(as_of=TODAY)
    providers_assess_health(as_of=TODAY)

    partner.refresh_from_db()
    assert "3 referrals in 12 months" in partner.tier_changes.get().reason
    # Three in 12 months give a usual gap (two would be "too few to know").
    assert partner.health_reasons[0] == {
        "code": "on_cadence",
        "last": days[-1].isoformat(),
        "gap": round((days[-1] - days[0]).days / 2),
    }
