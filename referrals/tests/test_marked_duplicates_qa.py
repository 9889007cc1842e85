"""Marking duplicates, as a demanding coordinator and practice manager use it: deleting the
referral kept, putting a copy back, and the queue's flags."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from django.urls import reverse

from partners.factories import ProviderFactory
from referrals.factories import ReferralFactory
from referrals.models import Referral
from referrals.services.duplicates import referral_mark_duplicate
from referrals.services.workflow import referral_log

pytestmark = pytest.mark.django_db

DOB = date(1950, 4, 2)


def _logged(**kwargs: Any) -> Referral:
    kwargs.setdefault("patient_last_name", "Olsen")
    kwargs.setdefault("patient_dob", DOB)
    return referral_log(referral=ReferralFactory.build(**kwargs), actor=None)


def test_deleting_the_referral_kept_is_refused_with_the_reason_not_a_server_error(
    client_for, manager
):
    provider = ProviderFactory()
    original = _logged(provider=provider)
    copy = _logged(provider=provider)
    referral_mark_duplicate(referral=copy, original=original, actor=manager)
    client = client_for(manager)
    client.raise_request_exception = False

    response = client.post(reverse("referrals:delete", args=[original.pk]), follow=True)

    assert response.status_code == 200
    assert f"#{copy.pk}" in response.content.decode()
    assert Referral.objects.filter(pk=original.pk).exists()
