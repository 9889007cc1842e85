"""An office's link with a tampered address: refused with the office's own page, never
a server error."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("reference", ["\x00", "AB\x00CD", "\x00" * 8])
def test_a_confirmation_address_with_a_nul_character_is_not_found(link_and_token, reference):
    _link, token = link_and_token
    client = Client(raise_request_exception=False)

    response = client.get(reverse("intake:public_submitted", args=[token, reference]))

    assert response.status_code == 404
    page = response.content.decode()
    assert "We have no referral with that reference" in page
