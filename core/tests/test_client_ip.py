"""The client's address behind the practice's own proxies (TRUSTED_PROXIES), never one a
client wrote into X-Forwarded-For itself."""

from __future__ import annotations

import pytest
from django.test import RequestFactory

from core.client_ip import client_ip


def _request(forwarded: str | None = None):
    request = RequestFactory().get("/", REMOTE_ADDR="10.0.0.5")
    if forwarded is not None:
        request.META["HTTP_X_FORWARDED_FOR"] = forwarded
    return request


def test_with_no_trusted_proxy_a_forwarded_address_is_not_believed(settings):
    settings.TRUSTED_PROXIES = 0
    assert client_ip(_request("203.0.113.9")) == "10.0.0.5"


@pytest.mark.parametrize(
    "proxies, forwarded, expected",
    [
        (1, "203.0.113.9", "203.0.113.9"),
        # The client wrote its own first entry; our one proxy appended the real one.
        (1, "198.51.100.1, 203.0.113.9", "203.0.113.9"),
        (2, "198.51.100.1, 203.0.113.9, 10.0.0.2", "203.0.113.9"),
        (1, " 2001:db8::1 ", "2001:db8::1"),
        # Not through our proxies, or nonsense: the peer's own address.
        (2, "203.0.113.9", "10.0.0.5"),
        (1, "", "10.0.0.5"),
        (1, "not-an-address", "10.0.0.5"),
        (1, "1.2.3.4\x00", "10.0.0.5"),
    ],
)
def test_behind_trusted_proxies_the_client_is_read_from_the_right(
    settings, proxies, forwarded, expected
):
    settings.TRUSTED_PROXIES = proxies
    assert client_ip(_request(forwarded)) == expected


@pytest.mark.django_db
def test_the_audit_trail_records_the_client_behind_the_proxy(client_for, coordinator, settings):
    from audit.models import PatientDataAccess
    from referrals.factories import ReferralFactory

    settings.TRUSTED_PROXIES = 1
    referral = ReferralFactory()
    client_for(coordinator).get(
        referral.get_absolute_url(),
        REMOTE_ADDR="10.0.0.5",
        HTTP_X_FORWARDED_FOR="198.51.100.1, 203.0.113.9",
    )
    assert PatientDataAccess.objects.get(referral_id=referral.pk).ip_address == "203.0.113.9"
