"""Save a partner, or a whole office, to the phone's contacts (.vcf)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.utils.text import slugify

from core.types import AuthedRequest
from partners.selectors import get_organization_for_user, get_provider_for_user
from partners.vcards import office_card, provider_card, staff_card, vcards

VCARD_TYPE = "text/vcard; charset=utf-8"


def _download(text: str, name: str) -> HttpResponse:
    response = HttpResponse(text, content_type=VCARD_TYPE)
    response["Content-Disposition"] = f'attachment; filename="{slugify(name) or "contact"}.vcf"'
    return response


@login_required
def provider_vcard(request: AuthedRequest, pk: int) -> HttpResponse:
    provider = get_provider_for_user(request.user, pk)
    return _download(vcards([provider_card(provider)]), provider.display_name)


@login_required
def organization_vcard(request: AuthedRequest, pk: int) -> HttpResponse:
    """The office, its physicians and its staff, one card each, in one file."""
    organization = get_organization_for_user(request.user, pk)
    providers = organization.providers.select_related("organization").order_by("last_name", "pk")
    staff = organization.staff.select_related("organization").order_by("last_name", "pk")
    cards = [
        office_card(organization),
        *(provider_card(provider) for provider in providers),
        *(staff_card(member) for member in staff),
    ]
    return _download(vcards(cards), organization.name)
