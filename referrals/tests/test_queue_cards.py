"""The work queue's rows, which a phone shows as cards (one markup, laid out by app.css):
patient per role, with the bulk checkbox and the Claim button for those who may change
referrals."""

import re

import pytest
from django.urls import reverse

from partners.factories import ProviderFactory
from referrals.factories import ReferralFactory
from referrals.services.workflow import referral_log, referral_transition

pytestmark = pytest.mark.django_db


def _cards(page: str) -> str:
    found = re.search(r"<tbody>.*?</tbody>", page, re.S)
    assert found is not None
    return found[0]


def test_a_coordinator_gets_one_card_per_row_with_checkbox_and_claim(client_for, coordinator):
    referral = referral_log(
        referral=ReferralFactory.build(provider=ProviderFactory(), patient_last_name="Quixotrel"),
        actor=None,
    )
    cards = _cards(client_for(coordinator).get(reverse("referrals:list")).content.decode())
    assert cards.count("data-queue-row=") == 1
    assert "Quixotrel" in cards
    assert f'value="{referral.pk}:{referral.updated_at.isoformat()}"' in cards
    assert 'form="bulk-form"' in cards
    assert reverse("referrals:claim", args=[referral.pk]) in cards
    assert 'data-sla="on_track"' in cards


def test_a_liaison_sees_initials_and_no_workflow_controls_on_the_cards(client_for, liaison):
    referral = referral_log(
        referral=ReferralFactory.build(
            provider=ProviderFactory(owner=liaison),
            patient_first_name="Zelda",
            patient_last_name="Quixotrel",
        ),
        actor=None,
    )
    cards = _cards(client_for(liaison).get(reverse("referrals:list")).content.decode())
    assert referral.patient_initials in cards
    assert "Quixotrel" not in cards
    assert "bulk-form" not in cards and "Claim" not in cards


def test_a_row_whose_clock_has_stopped_shows_no_appointment_due(client_for, coordinator):
    """Declined or cancelled, no appointment is coming: its row shows none due (as its
    page shows no appointment target), while an open one still shows its target day."""
    provider = ProviderFactory()
    declined = referral_log(referral=ReferralFactory.build(provider=provider), actor=None)
    referral_transition(
        referral=declined, to_status="declined", actor=None, decline_reason="Out of scope"
    )
    waiting = referral_log(referral=ReferralFactory.build(provider=provider), actor=None)

    page = client_for(coordinator).get(reverse("referrals:list"), {"open": ""}).content.decode()

    rows = dict(re.findall(r'<tr data-queue-row="(\d+)"(.*?)</tr>', _cards(page), re.S))
    appointment = r'data-label="Appointment">(.*?)</td>'
    assert "due" not in re.search(appointment, rows[str(declined.pk)], re.S)[1]
    assert "due" in re.search(appointment, rows[str(waiting.pk)], re.S)[1]
