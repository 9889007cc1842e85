"""An address that only takes a post, opened as a page, explains itself instead of
showing a browser's blank error; API answers keep their JSON."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from partners.factories import ProviderFactory
from referrals.factories import ReferralFactory
from referrals.services.workflow import referral_log

pytestmark = pytest.mark.django_db


def test_a_post_only_page_opened_directly_says_what_it_is_for(
    client_for: Any, coordinator: Any
) -> None:
    referral = referral_log(
        referral=ReferralFactory.build(provider=ProviderFactory.create()), actor=None
    )
    client = client_for(coordinator)
    for url in (
        reverse("referrals:bulk"),
        reverse("referrals:claim", args=[referral.pk]),
        reverse("referrals:delete", args=[referral.pk]),
    ):
        response = client.get(url)

        assert response.status_code == 405, url
        assert response["Allow"] == "POST"
        assert "This address is for a button, not for opening" in response.content.decode()


def test_an_api_answer_to_a_wrong_method_stays_json(coordinator: Any) -> None:
    from interop.services import api_token_create

    token = api_token_create(user=coordinator, days=30)[1]
    response = Client(headers={"Authorization": f"Bearer {token}"}).delete(
        reverse("api:referral-list")
    )

    assert response.status_code == 405
    assert response["Content-Type"].startswith("application/json")
    assert "not allowed" in response.json()["detail"]
