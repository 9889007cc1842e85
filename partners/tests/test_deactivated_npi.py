"""A partner whose NPI the NPPES registry lists as deactivated (a physician who retired,
moved away or died) is flagged on their page, so the liaison checks before the next letter
or visit; the page reads it in the query that loads the partner."""

from __future__ import annotations

from datetime import date

import pytest
from django.urls import reverse

from partners.factories import ProviderFactory
from registry.factories import RegistryProviderFactory

pytestmark = pytest.mark.django_db


def test_a_partner_whose_npi_was_deactivated_is_flagged_on_their_page(client_for, liaison):
    provider = ProviderFactory.create()
    RegistryProviderFactory.create(
        npi=provider.npi, deactivated=True, deactivation_date=date(2026, 9, 30)
    )
    page = client_for(liaison).get(provider.get_absolute_url()).content.decode()
    assert 'data-testid="npi-deactivated"' in page
    assert f"NPI {provider.npi} as deactivated since Sep 30, 2026" in page


def test_an_active_or_unlisted_npi_is_not_flagged(client_for, liaison):
    listed, unlisted = ProviderFactory.create(), ProviderFactory.create()
    RegistryProviderFactory.create(npi=listed.npi, deactivated=False)
    client = client_for(liaison)
    for provider in (listed, unlisted):
        page = client.get(provider.get_absolute_url()).content.decode()
        assert 'data-testid="npi-deactivated"' not in page


def test_the_partner_list_finds_the_partners_whose_npi_was_deactivated(client_for, manager):
    gone = ProviderFactory.create(last_name="Retiredson")
    practising = ProviderFactory.create(last_name="Practisington")
    unlisted = ProviderFactory.create(last_name="Unlistedby")
    RegistryProviderFactory.create(npi=gone.npi, deactivated=True)
    RegistryProviderFactory.create(npi=practising.npi, deactivated=False)
    client = client_for(manager)
    url = reverse("partners:provider_list")

    found = client.get(url, {"registry": "npi_deactivated"}).content.decode()
    everyone = client.get(url).content.decode()

    assert gone.last_name in found
    assert practising.last_name not in found and unlisted.last_name not in found
    assert all(p.last_name in everyone for p in (gone, practising, unlisted))


def test_an_unknown_registry_filter_is_said_not_ignored(client_for, manager):
    page = client_for(manager).get(reverse("partners:provider_list"), {"registry": "gone"})
    assert page.status_code == 200
    assert "Select a valid choice" in page.content.decode()
