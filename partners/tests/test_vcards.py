import datetime

import pytest
import vobject
from django.urls import reverse

from partners.factories import OrganizationFactory, ProviderFactory, StaffMemberFactory
from partners.models import StaffMember

pytestmark = pytest.mark.django_db


def _cards(response):
    assert response.status_code == 200
    assert response["Content-Type"] == "text/vcard; charset=utf-8"
    return list(vobject.readComponents(response.content.decode()))


def _tels(card):
    return {
        tel.value: {kind.upper() for kind in tel.params.get("TYPE", [])}
        for tel in card.contents.get("tel", [])
    }


def test_a_partner_is_saved_to_contacts_with_the_office_phone_fax_and_address(client_for, liaison):
    office = OrganizationFactory(
        name="Kearney Family Practice",
        address_line1="3219 Central Ave",
        address_line2="Suite 200",
        city="Kearney",
        state="NE",
        zip_code="68847",
        phone="(308) 555-0100",
        fax="(308) 555-0111",
    )
    provider = ProviderFactory(
        organization=office,
        first_name="Ana",
        last_name="Okafor",
        credential="MD",
        specialty="Family Medicine",
        phone="(308) 555-0123",
        email="aokafor@kfp.example",
        notes="Prefers lunch meetings; wife's name is Dana",
    )
    response = client_for(liaison).get(reverse("partners:provider_vcard", args=[provider.pk]))

    assert response["Content-Disposition"] == 'attachment; filename="ana-okafor-md.vcf"'
    (card,) = _cards(response)
    assert card.fn.value == "Ana Okafor, MD"
    assert (card.n.value.given, card.n.value.family) == ("Ana", "Okafor")
    assert card.uid.value == f"urn:npi:{provider.npi}"
    assert card.org.value == ["Kearney Family Practice"]
    assert card.title.value == "Family Medicine"
    address = card.adr.value
    assert (address.street, address.city, address.region, address.code) == (
        "3219 Central Ave, Suite 200",
        "Kearney",
        "NE",
        "68847",
    )
    assert _tels(card) == {
        "(308) 555-0100": {"WORK"},
        "(308) 555-0111": {"WORK", "FAX"},
        "(308) 555-0123": {"WORK", "VOICE"},
    }
    assert card.email.value == "aokafor@kfp.example"
    # A business card: nothing of the relationship notes goes into a phone's address book.
    assert "lunch" not in response.content.decode()


def test_an_office_saves_itself_its_physicians_and_its_staff_without_their_birthdays(
    client_for, liaison
):
    office = OrganizationFactory(name="Dundee Family Practice")
    ProviderFactory.create_batch(2, organization=office)
    StaffMemberFactory(
        organization=office,
        first_name="Rosa",
        last_name="Diaz",
        role=StaffMember.Role.REFERRAL_COORDINATOR,
        birthday=datetime.date(1984, 5, 1),
    )
    ProviderFactory()  # at another office: not in this file

    response = client_for(liaison).get(reverse("partners:organization_vcard", args=[office.pk]))

    cards = _cards(response)
    assert len(cards) == 4
    assert cards[0].fn.value == "Dundee Family Practice"
    assert cards[0].contents["x-abshowas"][0].value == "COMPANY"
    assert {card.org.value[0] for card in cards} == {"Dundee Family Practice"}
    rosa = next(card for card in cards if card.fn.value == "Rosa Diaz")
    assert rosa.title.value == StaffMember.Role.REFERRAL_COORDINATOR.label
    assert "bday" not in rosa.contents and "1984" not in response.content.decode()


def test_odd_and_hostile_names_come_back_exactly_as_typed(client_for, liaison):
    office = OrganizationFactory(name="Smith, Jones; & Partners\nLLC", address_line2="")
    provider = ProviderFactory(
        organization=office, first_name="<script>", last_name="O'Brien; Jr\\", credential=""
    )
    response = client_for(liaison).get(reverse("partners:provider_vcard", args=[provider.pk]))

    (card,) = _cards(response)
    assert card.fn.value == "<script> O'Brien; Jr\\"
    assert card.n.value.family == "O'Brien; Jr\\"
    assert card.org.value == ["Smith, Jones; & Partners\nLLC"]


def test_only_those_who_may_see_the_partner_get_its_card(client_for, no_role_user, client):
    provider = ProviderFactory()
    for url in (
        reverse("partners:provider_vcard", args=[provider.pk]),
        reverse("partners:organization_vcard", args=[provider.organization.pk]),
    ):
        assert client_for(no_role_user).get(url).status_code in (403, 404)
        assert client.get(url).status_code == 302  # signed out: to the sign-in page


def test_the_partner_and_office_pages_offer_it(client_for, liaison):
    provider = ProviderFactory()
    client = client_for(liaison)
    page = client.get(reverse("partners:provider_detail", args=[provider.pk])).content.decode()
    assert reverse("partners:provider_vcard", args=[provider.pk]) in page
    office = provider.organization
    page = client.get(reverse("partners:organization_detail", args=[office.pk])).content.decode()
    assert reverse("partners:organization_vcard", args=[office.pk]) in page


@pytest.mark.parametrize(
    "role", ["manager", "liaison", "other_liaison", "coordinator", "administrator"]
)
def test_whoever_may_open_the_partner_page_may_save_its_card(client_for, request, liaison, role):
    provider = ProviderFactory(owner=liaison)
    client = client_for(request.getfixturevalue(role))
    page = client.get(reverse("partners:provider_detail", args=[provider.pk])).status_code
    card = client.get(reverse("partners:provider_vcard", args=[provider.pk])).status_code
    assert card == page
    office = provider.organization
    page = client.get(reverse("partners:organization_detail", args=[office.pk])).status_code
    card = client.get(reverse("partners:organization_vcard", args=[office.pk])).status_code
    assert card == page
