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
