"""The day plan's office type-ahead: a search box instead of a list of every office."""

from __future__ import annotations

import pytest
from django.urls import reverse

from outreach.factories import EventFactory
from partners.factories import OrganizationFactory, ProviderFactory

pytestmark = pytest.mark.django_db

URL = "outreach:day_plan_office_typeahead"


def matches(client, text: str) -> str:
    return client.get(reverse(URL), {"organization_search": text}).content.decode()


def test_it_finds_the_liaisons_own_and_unowned_offices_by_name_city_or_zip(
    client_for, liaison, other_liaison
):
    mine = OrganizationFactory(name="Dundee Family Practice", city="Omaha", zip_code="68132")
    ProviderFactory(organization=mine, owner=liaison)
    unowned = OrganizationFactory(name="Capitol Primary Care", city="Lincoln", zip_code="68508")
    ProviderFactory(organization=unowned, owner=None)
    theirs = OrganizationFactory(name="Dundee Pediatrics", city="Omaha", zip_code="68132")
    ProviderFactory(organization=theirs, owner=other_liaison)
    client = client_for(liaison)

    found = matches(client, "dundee")
    assert f'data-picker-choice="{mine.pk}"' in found
    assert "Dundee Pediatrics" not in found  # another liaison's office
    assert "Capitol Primary Care" in matches(client, "lincoln")
    assert "Dundee Family Practice" in matches(client, "681")
    assert "Dundee Family Practice" in matches(client, "family omaha")
    assert "No office of yours matches" in matches(client, "nowhere")
    assert "data-picker-choice" not in matches(client, "d")  # too short to search
    assert client.get(reverse(URL), {"organization_search": "du\x00n"}).status_code == 200


def test_a_manager_finds_every_office_and_a_coordinator_none(client_for, manager, coordinator):
    office = OrganizationFactory(name="Dundee Pediatrics")
    ProviderFactory(organization=office, owner=None)
    ProviderFactory(organization=OrganizationFactory(name="Dundee Family Practice"))
    found = matches(client_for(manager), "dundee")
    assert "Dundee Pediatrics" in found and "Dundee Family Practice" in found
    assert (
        client_for(coordinator).get(reverse(URL), {"organization_search": "du"}).status_code == 403
    )


def test_it_answers_with_at_most_ten_matches(client_for, manager):
    for number in range(12):
        OrganizationFactory(name=f"Lakeside Clinic {number:02d}")
    assert matches(client_for(manager), "lakeside").count("data-picker-choice") == 10


def test_the_plan_page_has_the_type_ahead_and_no_list_of_every_office(client_for, liaison):
    OrganizationFactory.create_batch(3)
    page = client_for(liaison).get(reverse("outreach:day_plan")).content.decode()
    add_form = page.split("Add an office")[1].split("Suggested")[0]
    assert "<select" not in add_form
    assert f'hx-get="{reverse(URL)}"' in add_form
    assert 'for="id_organization_search"' in add_form
    assert 'id="id_organization_search"' in add_form


def test_the_office_search_boxes_hint_is_short_enough_to_read_whole_on_a_phone(client_for, liaison):
    # Beside its button, the box is about 240px wide on a phone: "Type an office name,
    # city or ZIP" lost its "ZIP", the very hint that one may search by it.
    event = EventFactory(organizer=liaison)
    client = client_for(liaison)
    for url in (reverse("outreach:day_plan"), reverse("outreach:event_detail", args=[event.pk])):
        page = client.get(url).content.decode()
        assert 'placeholder="Office name, city or ZIP"' in page
