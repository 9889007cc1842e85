"""A possible duplicate the coordinator has looked at and found to be a referral of its own
stops being flagged: the decision is kept, with who made it and when."""

from __future__ import annotations

import re
from datetime import date
from typing import Any

import pytest
from django.urls import reverse
from django.utils import timezone

from partners.factories import ProviderFactory
from referrals.factories import ReferralFactory
from referrals.models import Referral, ReferralEvent
from referrals.services.duplicates import referral_mark_duplicate
from referrals.services.workflow import referral_log

pytestmark = pytest.mark.django_db

DOB = date(1950, 4, 2)


def _logged(**kwargs: Any) -> Referral:
    kwargs.setdefault("patient_last_name", "Olsen")
    kwargs.setdefault("patient_dob", DOB)
    return referral_log(referral=ReferralFactory.build(**kwargs), actor=None)


def _flagged(referral: Referral) -> bool:
    row: Any = Referral.objects.with_duplicate_flag().get(pk=referral.pk)
    return bool(row.possible_duplicate)


def _queue_badges(client, pk: int) -> str:
    page = client.get(reverse("referrals:list"), {"status": "received"}).content.decode()
    [row] = re.findall(rf'data-queue-row="{pk}"[^>]*>((?:(?!</tr>).)*)', page, re.S)
    return row


def _entry_data(provider, **overrides: str) -> dict[str, Any]:
    return {
        "direction": "inbound",
        "provider": provider.pk,
        "channel": "phone",
        "urgency": "routine",
        "received_at": timezone.localtime().strftime("%Y-%m-%dT%H:%M"),
        "patient_first_name": "Ruth",
        "patient_last_name": "Olsen",
        "patient_dob": DOB.isoformat(),
        "reason": "The other knee",
        **overrides,
    }


def test_a_referral_confirmed_as_new_at_entry_is_not_flagged_in_the_queue(client_for, coordinator):
    provider = ProviderFactory()
    earlier = _logged(provider=provider)
    client = client_for(coordinator)
    response = client.post(
        reverse("referrals:create"), _entry_data(provider, confirm_duplicate="on")
    )
    assert response.status_code == 302
    new = Referral.objects.exclude(pk=earlier.pk).get()

    assert not _flagged(new)
    assert "Possible duplicate" not in _queue_badges(client, new.pk)
    # Its history says who decided, and about which referral.
    event = ReferralEvent.objects.filter(referral=new, kind=ReferralEvent.Kind.EDIT).get()
    assert event.actor == coordinator
    assert event.changes == [
        {
            "field": "Possible duplicate",
            "new": f"A referral of its own, not a copy of #{earlier.pk}",
        }
    ]
    page = client.get(new.get_absolute_url()).content.decode()
    assert 'data-testid="possible-duplicates"' not in page
    assert 'data-testid="not-duplicates"' in page and f"#{earlier.pk}</a>" in page


def test_a_later_referral_of_the_same_patient_is_flagged_again(client_for, coordinator):
    provider = ProviderFactory()
    _logged(provider=provider)
    client = client_for(coordinator)
    client.post(reverse("referrals:create"), _entry_data(provider, confirm_duplicate="on"))
    third = _logged(provider=provider)
    assert _flagged(third)


def test_a_flag_on_a_referral_that_came_by_itself_is_cleared_from_its_page(client_for, coordinator):
    provider = ProviderFactory()
    first = _logged(provider=provider)
    second = _logged(provider=provider)
    client = client_for(coordinator)
    page = client.get(second.get_absolute_url()).content.decode()
    assert "Not a copy: a referral of its own" in page

    response = client.post(
        reverse("referrals:not_duplicate", args=[second.pk]),
        {"version": second.updated_at.isoformat()},
        follow=True,
    )

    page = response.content.decode()
    assert "kept as a referral of its own" in page
    assert 'data-testid="possible-duplicates"' not in page
    assert not _flagged(second)
    # Still markable, should the coordinator find out otherwise later.
    assert f"This is a copy of #{first.pk}" in page
    event = ReferralEvent.objects.filter(referral=second, kind=ReferralEvent.Kind.EDIT).get()
    assert event.actor == coordinator
    # The decision holds both ways: the first one's page no longer warns of the second.
    page = client.get(first.get_absolute_url()).content.decode()
    assert 'data-testid="possible-duplicates"' not in page
    assert 'data-testid="not-duplicates"' in page and f"#{second.pk}</a>" in page


def test_clearing_a_flag_is_refused_when_the_referral_changed_meanwhile(client_for, coordinator):
    provider = ProviderFactory()
    _logged(provider=provider)
    second = _logged(provider=provider)
    seen = second.updated_at
    Referral.objects.filter(pk=second.pk).update(urgency="urgent", updated_at=timezone.now())
    response = client_for(coordinator).post(
        reverse("referrals:not_duplicate", args=[second.pk]),
        {"version": seen.isoformat()},
        follow=True,
    )
    assert "Someone changed this referral after you opened it" in response.content.decode()
    assert _flagged(second)


def test_only_those_who_work_referrals_may_clear_a_flag(client_for, liaison):
    provider = ProviderFactory()
    _logged(provider=provider)
    second = _logged(provider=provider)
    response = client_for(liaison).post(
        reverse("referrals:not_duplicate", args=[second.pk]),
        {"version": second.updated_at.isoformat()},
    )
    assert response.status_code == 403
    assert _flagged(second)


def test_a_copy_put_back_is_not_flagged_as_a_possible_copy_of_the_same_one(coordinator):
    from referrals.services.duplicates import referral_unmark_duplicate

    provider = ProviderFactory()
    original = _logged(provider=provider)
    copy = _logged(provider=provider)
    referral_mark_duplicate(referral=copy, original=original, actor=coordinator)
    referral_unmark_duplicate(referral=copy, actor=coordinator)
    assert not _flagged(copy)


def test_a_new_patient_or_partner_on_a_cleared_referral_is_checked_again(client_for, coordinator):
    from referrals.services.edit import referral_edit

    provider, other = ProviderFactory(), ProviderFactory()
    _logged(provider=provider)
    # Another patient of another partner, in before the check (and the day before).
    _logged(provider=other, patient_last_name="Berg")
    second = _logged(provider=provider)
    client_for(coordinator).post(
        reverse("referrals:not_duplicate", args=[second.pk]),
        {"version": second.updated_at.isoformat()},
    )
    assert not _flagged(second)
    second.refresh_from_db()
    second.provider = other
    second.patient_last_name = "Berg"
    referral_edit(referral=second, fields=["provider", "patient_last_name"], actor=coordinator)
    assert _flagged(second)
