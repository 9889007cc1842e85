"""A patient sent out twice to the same specialist (logged by fax and again as an
e-referral, or by two coordinators): the second is marked as a copy of the first, as a
referral received twice is. Cancelled with a reason instead, it still counted as a second
patient sent to that partner (reciprocity, the partner's page)."""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Any

import pytest
from django.urls import reverse
from django.utils import timezone

from outreach.models import Letter
from outreach.services.loop import referral_events_missing_messages
from partners.factories import ProviderFactory
from partners.models import Provider
from referrals.factories import ReferralFactory
from referrals.models import Inquiry, Referral, ReferralEvent, Status
from referrals.selectors import reciprocity_over_time, turnaround
from referrals.services.duplicates import referral_mark_duplicate, referral_unmark_duplicate
from referrals.services.workflow import referral_log

pytestmark = pytest.mark.django_db

DOB = date(1950, 4, 2)


def _sent(specialist: Provider, **kwargs: Any) -> Referral:
    kwargs.setdefault("patient_last_name", "Olsen")
    kwargs.setdefault("patient_dob", DOB)
    reason = "" if specialist.in_network else "The patient asked for this specialist."
    return referral_log(
        referral=ReferralFactory.build(
            provider=specialist, direction="outbound", out_of_network_reason=reason, **kwargs
        ),
        actor=None,
    )


def test_a_patient_sent_twice_to_a_specialist_is_marked_as_a_copy_from_its_page(
    client_for, coordinator
):
    specialist = ProviderFactory(in_network=True)
    first = _sent(specialist)
    second = _sent(specialist)
    client = client_for(coordinator)

    page = client.get(second.get_absolute_url()).content.decode()
    assert f"This is a copy of #{first.pk}" in page
    assert "the specialist is sent nothing" in page
    response = client.post(
        reverse("referrals:mark_duplicate", args=[second.pk]),
        {"original": first.pk, "version": second.updated_at.isoformat()},
        follow=True,
    )

    text = response.content.decode()
    assert f"Referral #{second.pk} is marked as a duplicate of #{first.pk}" in text
    assert "the specialist is sent nothing" in text
    assert "referring office" not in text
    second.refresh_from_db()
    assert second.status == Status.CANCELLED and second.duplicate_of_id == first.pk
    # No clock of ours runs on a referral sent out: marking it started none.
    assert second.contacted_at is None
    assert not Letter.objects.filter(referral=second).exists()
    assert (second.pk, Status.CANCELLED) not in referral_events_missing_messages()
    assert not Inquiry.objects.filter(referral=second).exists()


def _figures(specialist: Provider) -> dict[str, object]:
    now = timezone.now()
    year_ago = now - timedelta(days=365)
    today = timezone.localdate()
    _, months = reciprocity_over_time(since=today - timedelta(days=60), until=today)
    flows: Any = Provider.objects.with_reciprocity(since=year_ago).get()
    figures = specialist.referral_figures(since=year_ago)
    return {
        "partner page": (figures.outbound, figures.sent),
        "reciprocity": flows.sent,
        "reciprocity over time": sum(row["sent"] for row in months),
        "turnaround": turnaround(start=year_ago, end=now + timedelta(seconds=1))["outbound"][
            "sent"
        ],
    }


def test_a_copy_sent_out_counts_in_no_figure(manager):
    specialist = ProviderFactory(in_network=False)
    first = _sent(specialist)
    second = _sent(specialist)
    assert _figures(specialist)["reciprocity"] == 2

    referral_mark_duplicate(referral=second, original=first, actor=manager)

    assert _figures(specialist) == {
        "partner page": (1, 1),
        "reciprocity": 1,
        "reciprocity over time": 1,
        "turnaround": 1,
    }


def test_the_leakage_report_counts_a_copy_sent_out_nowhere(client_for, manager):
    specialist = ProviderFactory(in_network=False)
    first = _sent(specialist)
    referral_mark_duplicate(referral=_sent(specialist), original=first, actor=manager)

    page = client_for(manager).get(reverse("referrals:leakage")).content.decode()

    assert 'data-testid="leakage">100.0%<' in page
    assert "1 of 1" in page
    # Not a referral "declined by the specialist or cancelled" either: it was never one.
    assert 'data-testid="dropped"' not in page
    sent_out = re.search(r'Sent out</div><div class="fs-4"><a href="([^"]+)">1</a>', page)
    assert sent_out, "the total sent is 1, linking to the rows behind it"
    rows = client_for(manager).get(sent_out[1].replace("&amp;", "&")).content.decode()
    assert re.findall(r'data-queue-row="(\d+)"', rows) == [str(first.pk)]


def test_a_copy_sent_out_put_back_is_sent_again_with_no_inquiry(coordinator):
    specialist = ProviderFactory(in_network=True)
    first = _sent(specialist)
    second = _sent(specialist)
    referral_mark_duplicate(referral=second, original=first, actor=coordinator)

    referral_unmark_duplicate(referral=second, actor=coordinator)

    second.refresh_from_db()
    assert second.status == Status.RECEIVED and second.duplicate_of_id is None
    assert second.contacted_at is None
    # An inquiry is a patient coming to us: one we sent out is not one.
    assert not Inquiry.objects.filter(referral=second).exists()
    assert ReferralEvent.objects.filter(referral=second, to_status=Status.RECEIVED).count() == 2


def test_a_referral_sent_out_is_no_copy_of_one_received(client_for, coordinator):
    partner = ProviderFactory(in_network=True)
    received = referral_log(
        referral=ReferralFactory.build(
            provider=partner, patient_last_name="Olsen", patient_dob=DOB
        ),
        actor=None,
    )
    sent = _sent(partner)

    response = client_for(coordinator).post(
        reverse("referrals:mark_duplicate", args=[sent.pk]),
        {"original": received.pk, "version": sent.updated_at.isoformat()},
        follow=True,
    )

    assert (
        f"Referral #{received.pk} was received, and this one sent out: choose the referral "
        "this one repeats."
    ) in response.content.decode()
    sent.refresh_from_db()
    assert sent.duplicate_of_id is None and sent.status == Status.RECEIVED


def test_the_queue_filtered_by_network_lists_no_copy_sent_out(client_for, manager):
    specialist = ProviderFactory(in_network=False)
    first = _sent(specialist)
    referral_mark_duplicate(referral=_sent(specialist), original=first, actor=manager)

    page = client_for(manager).get(reverse("referrals:list"), {"network": "false"})

    assert re.findall(r'data-queue-row="(\d+)"', page.content.decode()) == [str(first.pk)]
