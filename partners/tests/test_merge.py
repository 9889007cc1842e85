from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone

from outreach.factories import ActivityFactory, TaskFactory
from outreach.models import Activity, Letter, Task
from partners.factories import OrganizationFactory, ProviderFactory, StaffMemberFactory
from partners.models import Organization, PartnerMerge, Provider, StaffMember, TierChange
from partners.services.merges import partner_merge, partner_merge_preview
from partners.services.tiers import provider_set_tier
from referrals.factories import ReferralFactory
from referrals.models import Referral

pytestmark = pytest.mark.django_db


def _history(provider):
    referrals = ReferralFactory.create_batch(3, provider=provider)
    ActivityFactory().providers.add(provider)
    TaskFactory(provider=provider)
    Letter.objects.create(
        kind="thank_you",
        referral=referrals[0],
        provider=provider,
        subject="Thank you",
        body="Thank you",
        due_on=referrals[0].received_at.date(),
    )
    provider_set_tier(provider=provider, tier="B", reason="Steady", actor=None)


def test_merging_two_providers_keeps_every_piece_of_history(manager):
    survivor = ProviderFactory(phone="", email="")
    duplicate = ProviderFactory(
        phone="(402) 555-0100", email="dup@example.org", notes="Likes mornings"
    )
    _history(survivor)
    _history(duplicate)
    shared = ActivityFactory()
    shared.providers.add(survivor, duplicate)
    before = {
        "referrals": Referral.objects.count(),
        "tasks": Task.objects.count(),
        "letters": Letter.objects.count(),
        "tier changes": TierChange.objects.count(),
        "activities": Activity.objects.count(),
    }

    merge = partner_merge(survivor=survivor, duplicate=duplicate, actor=manager)

    assert not Provider.objects.filter(pk=duplicate.pk).exists()
    assert survivor.referrals.count() == 6
    assert survivor.tasks.count() == 2
    assert survivor.letters.count() == 2
    assert survivor.tier_changes.count() == 2
    assert survivor.activities.count() == 3  # the shared visit is linked once
    after = {
        "referrals": Referral.objects.count(),
        "tasks": Task.objects.count(),
        "letters": Letter.objects.count(),
        "tier changes": TierChange.objects.count(),
        "activities": Activity.objects.count(),
    }
    assert after == before
    survivor.refresh_from_db()
    assert survivor.phone == "(402) 555-0100" and survivor.email == "dup@example.org"
    assert "Likes mornings" in survivor.notes
    assert (merge.merged_by, merge.duplicate_id, merge.duplicate_npi) == (
        manager,
        duplicate.pk,
        duplicate.npi,
    )
    assert merge.moved["referrals"] == 3
    assert list(survivor.merges.all()) == [merge]


@pytest.mark.parametrize("kind", [Task.Kind.REKINDLE, Task.Kind.ANNUAL_MEETING])
def test_two_records_each_with_an_open_reminder_merge_into_one_open_reminder(manager, kind):
    # The nightly jobs give each record of a duplicated partner its own open task; a
    # partner has one open task of these kinds at a time.
    survivor, duplicate = ProviderFactory(), ProviderFactory()
    kept = TaskFactory(provider=survivor, kind=kind)
    extra = TaskFactory(provider=duplicate, kind=kind)
    done = TaskFactory(provider=duplicate, kind=kind, status=Task.Status.DONE)

    partner_merge(survivor=survivor, duplicate=duplicate, actor=manager)

    assert list(survivor.tasks.open()) == [kept]
    extra.refresh_from_db()
    assert (extra.provider, extra.status) == (survivor, Task.Status.CANCELLED)
    done.refresh_from_db()
    assert (done.provider, done.status) == (survivor, Task.Status.DONE)


def test_a_partner_who_opted_out_on_either_record_stays_opted_out(client_for, manager):
    survivor = ProviderFactory(letters_opt_out=False)
    duplicate = ProviderFactory(letters_opt_out=True)
    url = reverse("partners:provider_merge", args=[survivor.pk])

    preview = client_for(manager).get(url, {"duplicate": duplicate.pk}).content.decode()
    partner_merge(survivor=survivor, duplicate=duplicate, actor=manager)

    assert "Opted out of letters" in preview
    survivor.refresh_from_db()
    assert survivor.letters_opt_out


def test_a_specialist_in_network_on_either_record_stays_in_network(client_for, manager):
    """The record kept is the one with the right NPI, often the one from the registry;
    the duplicate is the one the practice worked with and marked as a preferred partner.
    Merged, the specialist is still in network, or every patient sent to them afterwards
    would count as leakage and ask why; the preview says so."""
    survivor = ProviderFactory(in_network=False)
    duplicate = ProviderFactory(in_network=True)
    url = reverse("partners:provider_merge", args=[survivor.pk])

    preview = client_for(manager).get(url, {"duplicate": duplicate.pk}).content.decode()
    partner_merge(survivor=survivor, duplicate=duplicate, actor=manager)

    assert "In network" in preview
    survivor.refresh_from_db()
    assert survivor.in_network


def test_how_the_partner_asked_to_be_written_to_comes_over_from_either_record(client_for, manager):
    """The record kept often came from the registry with the defaults; the duplicate is the
    one the practice worked with, where the office asked for faxes, a monthly summary and
    a call instead of a thank-you letter. A choice made on either record is kept (the
    record kept's own choice first), and the preview shows each, by its name."""
    survivor = ProviderFactory(report_cadence=Provider.ReportCadence.WEEKLY)
    duplicate = ProviderFactory(
        preferred_channel=Provider.PreferredChannel.FAX,
        report_cadence=Provider.ReportCadence.MONTHLY,
        thank_you_by=Provider.ThankYouBy.CALL,
    )
    url = reverse("partners:provider_merge", args=[survivor.pk])

    preview = client_for(manager).get(url, {"duplicate": duplicate.pk}).content.decode()
    partner_merge(survivor=survivor, duplicate=duplicate, actor=manager)

    assert "A monthly summary" in preview and "Call (a task" in preview
    survivor.refresh_from_db()
    assert survivor.preferred_channel == Provider.PreferredChannel.FAX
    assert survivor.thank_you_by == Provider.ThankYouBy.CALL
    # Both chose: the record kept's choice stands (the preview showed both).
    assert survivor.report_cadence == Provider.ReportCadence.WEEKLY


def test_a_tier_a_manager_pinned_on_the_duplicate_comes_over_pinned(manager):
    until = timezone.localdate() + timedelta(days=90)
    keep = ProviderFactory(tier="C")
    gone = ProviderFactory(tier="A", tier_pinned=True, tier_pinned_until=until)
    preview = partner_merge_preview(survivor=keep, duplicate=gone)
    assert next(f.result for f in preview.fields if f.label == "Tier") == "A: top referrer"
    assert "NUCC taxonomy code" in [f.label for f in preview.fields]  # as the model says it
    partner_merge(survivor=keep, duplicate=gone, actor=manager)
    keep.refresh_from_db()
    assert (keep.tier, keep.tier_pinned, keep.tier_pinned_until) == ("A", True, until)
    # The survivor's own pin stands against the duplicate's.
    mine = ProviderFactory(tier="B", tier_pinned=True)
    other = ProviderFactory(tier="A", tier_pinned=True)
    partner_merge(survivor=mine, duplicate=other, actor=manager)
    mine.refresh_from_db()
    assert (mine.tier, mine.tier_pinned) == ("B", True)


def test_the_duplicates_open_rekindle_task_goes_to_the_survivors_owner(
    manager, liaison, other_liaison
):
    survivor = ProviderFactory(owner=liaison)
    duplicate = ProviderFactory(owner=other_liaison)
    task = TaskFactory(provider=duplicate, assignee=other_liaison, kind=Task.Kind.REKINDLE)

    partner_merge(survivor=survivor, duplicate=duplicate, actor=manager)

    task.refresh_from_db()
    assert (task.provider, task.assignee) == (survivor, liaison)


def test_merging_offices_moves_providers_staff_and_activities_and_takes_the_npi(manager):
    survivor = OrganizationFactory(npi="")
    duplicate = OrganizationFactory(npi="1245319599")
    ProviderFactory.create_batch(2, organization=duplicate)
    StaffMemberFactory.create_batch(3, organization=duplicate)
    ActivityFactory(organization=duplicate)
    merge = partner_merge(survivor=survivor, duplicate=duplicate, actor=manager)
    survivor.refresh_from_db()
    assert survivor.npi == "1245319599"
    assert survivor.providers.count() == 2
    assert StaffMember.objects.filter(organization=survivor).count() == 3
    assert survivor.activities.count() == 1
    assert not Organization.objects.filter(pk=duplicate.pk).exists()
    assert merge.kind == PartnerMerge.Kind.ORGANIZATION


def test_offices_with_two_different_npis_are_not_merged(manager):
    survivor = OrganizationFactory(npi="1245319599")
    duplicate = OrganizationFactory(npi="1003000126")
    with pytest.raises(ValidationError, match="different billing entities"):
        partner_merge(survivor=survivor, duplicate=duplicate, actor=manager)
    assert Organization.objects.filter(pk=duplicate.pk).exists()


def test_a_manager_previews_side_by_side_then_confirms(client_for, manager):
    survivor = ProviderFactory(last_name="Wiebe")
    duplicate = ProviderFactory(last_name="Wiebe-Dup", phone="(402) 555-0101")
    ReferralFactory.create_batch(2, provider=duplicate)
    client = client_for(manager)
    url = reverse("partners:provider_merge", args=[survivor.pk])
    found = client.get(url, {"q": "wiebe-dup"}).content.decode()
    assert f"?duplicate={duplicate.pk}" in found
    preview = client.get(url, {"duplicate": duplicate.pk}).content.decode()
    assert "(402) 555-0101" in preview
    assert "2 referrals" in preview
    # Two factory providers have two NPIs: the preview warns they may be two people.
    assert 'data-testid="npi-differs"' in preview and "usually mean two different people" in preview
    refused = client.post(url, {"duplicate": duplicate.pk})
    assert "Tick the box to confirm the merge." in refused.content.decode()
    assert Provider.objects.filter(pk=duplicate.pk).exists()
    response = client.post(url, {"duplicate": duplicate.pk, "confirm": "on"})
    assert response.status_code == 302
    assert not Provider.objects.filter(pk=duplicate.pk).exists()
    assert survivor.referrals.count() == 2


def test_only_managers_may_merge(client_for, liaison, coordinator):
    survivor = ProviderFactory(owner=liaison)
    duplicate = ProviderFactory(owner=liaison)
    url = reverse("partners:provider_merge", args=[survivor.pk])
    for user in (liaison, coordinator):
        response = client_for(user).post(url, {"duplicate": duplicate.pk, "confirm": "on"})
        assert response.status_code == 403
    assert Provider.objects.filter(pk=duplicate.pk).exists()


def test_merging_a_record_into_itself_is_refused_with_a_message(client_for, manager):
    provider = ProviderFactory()
    url = reverse("partners:provider_merge", args=[provider.pk])
    response = client_for(manager).post(url, {"duplicate": provider.pk, "confirm": "on"})
    assert "cannot merge into itself" in response.content.decode()
    assert Provider.objects.filter(pk=provider.pk).exists()


def test_a_merge_that_would_break_a_one_row_rule_is_refused_naming_it(client_for, manager):
    from datetime import date
    from decimal import Decimal

    from outreach.factories import EventFactory, PlannedVisitFactory
    from outreach.models import ActivityShare, Invitation

    # Offices: one liaison planned both for the same day (one plan entry per office a day).
    survivor, duplicate = OrganizationFactory(), OrganizationFactory()
    day = date(2026, 12, 7)
    planned = PlannedVisitFactory(organization=survivor, planned_on=day)
    PlannedVisitFactory(organization=duplicate, planned_on=day, liaison=planned.liaison)
    url = reverse("partners:organization_merge", args=[survivor.pk])
    client = client_for(manager)
    preview = client.get(url, {"duplicate": duplicate.pk}).content.decode()
    assert (
        "1 of the duplicate&#x27;s planned visits and the survivor&#x27;s have the same" in preview
    )
    refused = client.post(url, {"duplicate": duplicate.pk, "confirm": "on"})
    assert refused.status_code == 200 and "only one may stay" in refused.content.decode()
    assert Organization.objects.filter(pk=duplicate.pk).exists()

    # Providers: both records shared one lunch's cost, and both were invited to one event.
    keep, gone = ProviderFactory(), ProviderFactory()
    lunch = ActivityFactory(kind=Activity.Kind.LUNCH)
    for provider in (keep, gone):
        ActivityShare.objects.create(
            activity=lunch, provider=provider, year=2026, amount=Decimal("20.00")
        )
    event = EventFactory()
    for provider in (keep, gone):
        Invitation.objects.create(event=event, provider=provider)
    with pytest.raises(ValidationError) as refusal:
        partner_merge(survivor=keep, duplicate=gone, actor=manager)
    said = " ".join(refusal.value.messages)
    assert "gifts and meals" in said.lower() or "shares" in said.lower()
    assert "invitations" in said.lower()
    assert Provider.objects.filter(pk=gone.pk).exists()
    assert ActivityShare.objects.filter(provider=gone).count() == 1


def test_a_duplicates_event_invitations_move_to_the_survivor(manager):
    from outreach.factories import EventFactory
    from outreach.models import Invitation

    keep, gone = ProviderFactory(), ProviderFactory()
    event = EventFactory()
    invited = Invitation.objects.create(event=event, provider=gone, rsvp="yes", attended=True)
    merge = partner_merge(survivor=keep, duplicate=gone, actor=manager)
    invited.refresh_from_db()  # not deleted with the duplicate
    assert invited.provider_id == keep.pk and invited.attended
    assert merge.moved.get("invitations") == 1
