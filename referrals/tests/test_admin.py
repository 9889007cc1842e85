"""A referral edited in the Django admin leaves the same history and audit rows as one
edited in the app."""

from __future__ import annotations

import pytest
from django.urls import reverse

from audit.models import PatientDataAccess
from partners.factories import ProviderFactory
from referrals.factories import ReferralFactory
from referrals.models import Referral, ReferralEvent
from referrals.services.workflow import referral_log

pytestmark = pytest.mark.django_db


def _admin_form(referral: Referral, **changes: object) -> dict[str, object]:
    data = {
        "direction": referral.direction,
        "provider": referral.provider_id,
        "patient_first_name": referral.patient_first_name,
        "patient_last_name": referral.patient_last_name,
        "patient_dob": referral.patient_dob.isoformat(),
        "patient_phone": referral.patient_phone,
        "reason": referral.reason,
        "urgency": referral.urgency,
        "channel": referral.channel,
        "received_at_0": referral.received_at.strftime("%Y-%m-%d"),
        "received_at_1": referral.received_at.strftime("%H:%M:%S"),
        "assigned_to": referral.assigned_to_id or "",
        "decline_reason": referral.decline_reason,
        "out_of_network_reason": referral.out_of_network_reason,
        "events-TOTAL_FORMS": "0",
        "events-INITIAL_FORMS": "0",
        "events-MIN_NUM_FORMS": "0",
        "events-MAX_NUM_FORMS": "1000",
    }
    return {**data, **changes}


def test_an_admin_edit_is_written_to_the_history_and_the_audit_trail(
    client_for, administrator, coordinator
):
    referral = referral_log(referral=ReferralFactory.build(provider=ProviderFactory()), actor=None)
    client = client_for(administrator)
    url = reverse("admin:referrals_referral_change", args=[referral.pk])

    assert client.get(url).status_code == 200
    assert PatientDataAccess.objects.filter(
        action=PatientDataAccess.Action.VIEW, user=administrator, referral_id=referral.pk
    ).exists()

    response = client.post(
        url, _admin_form(referral, patient_phone="555-0142", assigned_to=coordinator.pk)
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    referral.refresh_from_db()
    assert referral.patient_phone == "555-0142"
    assert referral.assigned_to == coordinator
    kinds = set(ReferralEvent.objects.filter(referral=referral).values_list("kind", flat=True))
    assert {"edit", "assignment"} <= kinds
    edit = ReferralEvent.objects.get(referral=referral, kind="edit")
    assert edit.actor == administrator
    assert "555-0142" not in str(edit.changes)  # patient fields by name only
    changed = PatientDataAccess.objects.get(action=PatientDataAccess.Action.CHANGE)
    assert changed.fields == ["patient_phone"]


def test_a_referral_deleted_in_the_admin_or_the_app_leaves_its_number_in_the_audit_trail(
    client_for, administrator, manager
):
    first, second, third = (
        referral_log(referral=ReferralFactory.build(provider=ProviderFactory()), actor=None)
        for _ in range(3)
    )
    admin = client_for(administrator)
    response = admin.post(
        reverse("admin:referrals_referral_delete", args=[first.pk]), {"post": "yes"}
    )
    assert response.status_code == 302
    response = admin.post(
        reverse("admin:referrals_referral_changelist"),
        {"action": "delete_selected", "_selected_action": [second.pk], "post": "yes"},
    )
    assert response.status_code == 302
    client_for(manager).post(reverse("referrals:delete", args=[third.pk]))
    assert not Referral.objects.exists()
    deleted = PatientDataAccess.objects.filter(action=PatientDataAccess.Action.DELETE)
    assert sorted(deleted.values_list("referral_id", "user")) == sorted(
        [(first.pk, administrator.pk), (second.pk, administrator.pk), (third.pk, manager.pk)]
    )


def test_history_rows_cannot_be_deleted_in_the_admin(client_for, administrator, manager):
    from partners.models import TierChange
    from partners.services.tiers import provider_set_tier

    referral = referral_log(referral=ReferralFactory.build(provider=ProviderFactory()), actor=None)
    event = ReferralEvent.objects.get(referral=referral)
    provider = ProviderFactory()
    provider_set_tier(provider=provider, tier="A", reason="Refers weekly", actor=manager)
    change = TierChange.objects.get(provider=provider)
    admin = client_for(administrator)
    for url in (
        reverse("admin:referrals_referralevent_delete", args=[event.pk]),
        reverse("admin:partners_tierchange_delete", args=[change.pk]),
    ):
        assert admin.post(url, {"post": "yes"}).status_code == 403
    assert ReferralEvent.objects.filter(pk=event.pk).exists()
    assert TierChange.objects.filter(pk=change.pk).exists()


def test_a_sent_letter_and_an_activitys_ledger_fields_are_read_only_in_the_admin(
    client_for, administrator, liaison
):
    from decimal import Decimal

    from django.utils import timezone

    from outreach.models import Activity, Letter
    from outreach.services.activities import activity_log

    provider = ProviderFactory()
    letter = Letter.objects.create(
        provider=provider,
        kind="thank_you",
        subject="Thank you",
        body="Body",
        status="sent",
        due_on=timezone.localdate(),
    )
    activity = activity_log(
        activity=Activity(kind="lunch", cost=Decimal("100.00"), occurred_at=timezone.now()),
        providers=[provider],
        staff=[],
        actor=liaison,
    )
    admin = client_for(administrator)
    page = admin.get(reverse("admin:outreach_letter_change", args=[letter.pk])).content.decode()
    assert 'name="body"' not in page and 'name="status"' not in page
    assert (
        admin.post(
            reverse("admin:outreach_letter_delete", args=[letter.pk]), {"post": "yes"}
        ).status_code
        == 403
    )
    page = admin.get(reverse("admin:outreach_activity_change", args=[activity.pk])).content.decode()
    assert 'name="cost"' not in page and 'name="occurred_at_0"' not in page
    assert 'name="notes"' in page


def test_clearing_a_declined_referrals_reason_in_the_admin_is_refused_on_the_form(
    client_for, administrator
):
    from referrals.services.workflow import referral_transition

    referral = referral_transition(
        referral=referral_log(
            referral=ReferralFactory.build(provider=ProviderFactory()), actor=None
        ),
        to_status="declined",
        actor=None,
        decline_reason="Outside our scope.",
    )
    client = client_for(administrator)
    client.raise_request_exception = False
    url = reverse("admin:referrals_referral_change", args=[referral.pk])
    response = client.post(url, _admin_form(referral, decline_reason=""))
    assert response.status_code == 200
    assert "A declined referral keeps the reason" in response.content.decode()
    referral.refresh_from_db()
    assert referral.decline_reason == "Outside our scope."
