"""Partners as vCards (3.0, RFC 2426, which every phone reads; built with vobject), so a liaison can save a physician or a whole
office to the phone's contacts and call or fax it from the car park.

Only what belongs on a business card: names, credential, specialty, the office's address,
phone, referral fax and email. No notes, no tier or health, no birthdays: a phone's address
book syncs to places this app does not control.
"""

from __future__ import annotations

from collections.abc import Iterable

import vobject

from partners.models import Organization, Provider, StaffMember


def _card(
    *,
    uid: str,
    given: str,
    family: str,
    formatted: str,
    organization: Organization | None,
    title: str = "",
    phone: str = "",
    email: str = "",
) -> vobject.base.Component:
    card = vobject.vCard()
    card.add("uid").value = uid
    card.add("n").value = vobject.vcard.Name(family=family, given=given)
    card.add("fn").value = formatted
    if title:
        card.add("title").value = title
    if organization is not None:
        card.add("org").value = [organization.name]
        if organization.address_line1 or organization.city or organization.zip_code:
            address = card.add("adr")
            address.value = vobject.vcard.Address(
                street=", ".join(
                    line
                    for line in (organization.address_line1, organization.address_line2)
                    if line
                ),
                city=organization.city,
                region=organization.state,
                code=organization.zip_code,
                country="USA",
            )
            address.type_param = "WORK"
        if organization.phone:
            office = card.add("tel")
            office.value = organization.phone
            office.type_param = "WORK"
        if organization.fax:
            fax = card.add("tel")
            fax.value = organization.fax
            fax.type_paramlist = ["WORK", "FAX"]
    if phone:
        direct = card.add("tel")
        direct.value = phone
        direct.type_paramlist = ["WORK", "VOICE"]
    if email:
        mail = card.add("email")
        mail.value = email
        mail.type_param = "WORK"
    return card


def provider_card(provider: Provider) -> vobject.base.Component:
    return _card(
        uid=f"urn:npi:{provider.npi}" if provider.npi else f"referral-crm-provider-{provider.pk}",
        given=provider.first_name,
        family=provider.last_name,
        formatted=provider.display_name,
        organization=provider.organization,
        title=provider.specialty,
        phone=provider.phone,
        email=provider.email,
    )


def office_card(organization: Organization) -> vobject.base.Component:
    card = _card(
        uid=f"referral-crm-office-{organization.pk}",
        given="",
        family="",
        formatted=organization.name,
        organization=organization,
        email=organization.email,
    )
    # Apple's contacts show it as a company rather than a person with no name.
    card.add("x-abshowas").value = "COMPANY"
    return card


def staff_card(member: StaffMember) -> vobject.base.Component:
    return _card(
        uid=f"referral-crm-staff-{member.pk}",
        given=member.first_name,
        family=member.last_name,
        formatted=member.display_name,
        organization=member.organization,
        title=member.get_role_display(),
        phone=member.phone,
        email=member.email,
    )


def vcards(cards: Iterable[vobject.base.Component]) -> str:
    """One .vcf file holding every card (phones import them all at once)."""
    return "".join(card.serialize() for card in cards)
