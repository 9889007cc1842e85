"""Generated paths through the referral pipeline (hypothesis): whatever a coordinator tries,
in whatever order, a referral only ever takes an allowed move; a refused move changes
nothing; every move leaves exactly one history row; the SLA clock (first contact) starts
at the first answer and never moves; and the referral's inquiry only goes forward in the
new-patient funnel."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from partners.factories import ProviderFactory
from referrals.factories import ReferralFactory
from referrals.models import Inquiry, Referral, ReferralEvent, Status
from referrals.models.pipeline import TRANSITIONS
from referrals.services.workflow import referral_log, referral_transition

pytestmark = pytest.mark.django_db

# How far along the funnel each inquiry stage is. Seen and lost both end it.
FUNNEL_ORDER: dict[str, int] = {
    Inquiry.Status.INQUIRY: 0,
    Inquiry.Status.SCHEDULED: 1,
    Inquiry.Status.SEEN_NEW_PATIENT: 2,
    Inquiry.Status.LOST: 2,
}

REASONS = st.sampled_from(["", "   ", "Out of network.", "<b>x</b>"])
# Days from now (None leaves the appointment out): mostly possible ones, some mistyped.
APPOINTMENT_IN = st.sampled_from([0, 0, 0, 1, 7, 30, 365, None, -10, 400])


def test_any_sequence_of_moves_keeps_the_pipeline_and_its_history_consistent(
    coordinator: Any,
) -> None:
    moves_seen: set[tuple[str, str]] = set()
    partner = ProviderFactory.create()

    @settings(
        max_examples=80,
        deadline=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
    @given(data=st.data())
    def walk(data: st.DataObject) -> None:
        referral = referral_log(
            referral=ReferralFactory.build(
                provider=partner, received_at=timezone.now() - timedelta(days=2)
            ),
            actor=coordinator,
        )
        first_contact = None
        funnel: str = Inquiry.Status.INQUIRY
        for _ in range(data.draw(st.integers(min_value=1, max_value=12), label="moves")):
            before = Referral.objects.get(pk=referral.pk)
            events = ReferralEvent.objects.filter(referral=referral).count()
            # Mostly a move the pipeline offers (so walks get far), sometimes any status.
            allowed = TRANSITIONS[before.status]
            offered = bool(allowed) and data.draw(st.sampled_from([True, True, True, False]))
            choices: list[str] = list(allowed) if offered else list(Status.values)
            to_status = data.draw(st.sampled_from(choices), label="to")
            reason = data.draw(REASONS, label="reason")
            days = data.draw(APPOINTMENT_IN, label="appointment in days")
            try:
                referral = referral_transition(
                    referral=before,
                    to_status=to_status,
                    actor=coordinator,
                    decline_reason=reason,
                    cancel_reason=reason,
                    appointment_at=None if days is None else timezone.now() + timedelta(days=days),
                )
            except ValidationError as error:
                assert error.messages
                after = Referral.objects.get(pk=referral.pk)
                assert (after.status, after.updated_at) == (before.status, before.updated_at)
                assert ReferralEvent.objects.filter(referral=referral).count() == events
                referral = after
                continue
            assert to_status in allowed
            moves_seen.add((before.status, referral.status))
            last = ReferralEvent.objects.filter(referral=referral).order_by("-pk").first()
            assert ReferralEvent.objects.filter(referral=referral).count() == events + 1
            assert last is not None
            assert (last.from_status, last.to_status) == (before.status, referral.status)
            # The first answer to a new referral starts the contact clock; later moves
            # never move it.
            if first_contact is None:
                first_contact = referral.contacted_at
                assert first_contact is not None and first_contact >= referral.received_at
            assert referral.contacted_at == first_contact
            stage = Inquiry.objects.get(referral=referral).status
            assert FUNNEL_ORDER[stage] >= FUNNEL_ORDER[funnel], (funnel, stage)
            if FUNNEL_ORDER[funnel] == 2:
                assert stage == funnel, (funnel, stage)  # seen or lost is final
            funnel = stage
        stored = Referral.objects.get(pk=referral.pk)
        history = list(ReferralEvent.objects.filter(referral=referral).order_by("pk"))
        assert history[-1].to_status == stored.status
        if stored.status == Status.CLOSED:
            assert stored.closed_at is not None

    walk()
    # The generated walks went well past the first step of the pipeline.
    reached = {to for _, to in moves_seen}
    assert {Status.SCHEDULED, Status.SEEN, Status.CLOSED, Status.CANCELLED} <= reached
