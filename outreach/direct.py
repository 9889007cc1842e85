"""Direct secure messaging for partners who prefer the portal.

Direct (the ONC's secure health email) is SMTP between HISPs: the practice hands the
message to its HISP's SMTP relay, which signs and encrypts it for the recipient's HISP.
So sending is ordinary SMTP to a separately configured relay (settings.DIRECT_EMAIL,
from DIRECT_EMAIL_URL), and the recipient is the provider's Direct address as published
in the NPPES endpoint file (registry.RegistryEndpoint, endpoint type DIRECT, by NPI).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import EmailMessage, get_connection
from django.core.mail.backends.base import BaseEmailBackend
from django.core.validators import validate_email

from registry.models import RegistryEndpoint

if TYPE_CHECKING:
    from outreach.models import Letter

DIRECT_ENDPOINT_TYPE = "DIRECT"
# The longest address SMTP carries (RFC 5321's 256-octet path, less its angle brackets),
# and so the longest a letter's recipient column holds.
MAX_ADDRESS_LENGTH = 254


def relay_configured() -> bool:
    return bool(settings.DIRECT_EMAIL)


def _address(endpoint: str) -> str:
    """The endpoint as a plain address (NPPES rows sometimes carry a mailto: prefix), or
    "" when it is not an email address at all, or one too long to send to."""
    address = endpoint.strip()
    if address.lower().startswith("mailto:"):
        address = address[len("mailto:") :]
    if len(address) > MAX_ADDRESS_LENGTH:
        return ""
    try:
        validate_email(address)
    except ValidationError:
        return ""
    return address


def direct_addresses(npis: Iterable[str]) -> dict[str, str]:
    """NPI → Direct address for those of `npis` that publish one: one query for any number
    of providers. A provider with several keeps the first valid one in a stable order."""
    wanted = [npi for npi in set(npis) if npi]
    found: dict[str, str] = {}
    if not wanted:
        return found
    # provider__npi is the endpoint's own npi column (the key points at npi): no join, and
    # typed as the NPI string it is (django-stubs take provider_id for an integer id).
    rows = (
        RegistryEndpoint.objects.filter(
            provider__npi__in=wanted, endpoint_type__iexact=DIRECT_ENDPOINT_TYPE
        )
        .order_by("provider__npi", "pk")
        .values_list("provider__npi", "endpoint")
    )
    for npi, endpoint in rows:
        if npi not in found:
            address = _address(endpoint)
            if address:
                found[npi] = address
    return found


def direct_address(npi: str) -> str:
    return direct_addresses([npi]).get(npi, "")


def relay_connection() -> BaseEmailBackend:
    """An SMTP connection to the HISP's relay (not the ordinary EMAIL_URL server)."""
    config: dict[str, Any] = settings.DIRECT_EMAIL or {}
    return get_connection(
        backend=config.get("EMAIL_BACKEND", "django.core.mail.backends.smtp.EmailBackend"),
        host=config.get("EMAIL_HOST"),
        port=config.get("EMAIL_PORT"),
        username=config.get("EMAIL_HOST_USER") or "",
        password=config.get("EMAIL_HOST_PASSWORD") or "",
        use_tls=config.get("EMAIL_USE_TLS", False),
        use_ssl=config.get("EMAIL_USE_SSL", False),
        timeout=settings.EMAIL_TIMEOUT,
    )


def direct_message(letter: Letter, pdf: bytes, connection: BaseEmailBackend) -> EmailMessage:
    """The Direct message for a letter: its text, with the letter as a PDF attachment
    (what an EHR's Direct inbox files into the chart), under the letter's Message-ID."""
    message = EmailMessage(
        subject=letter.subject_line,
        body=letter.body,
        from_email=settings.DIRECT_FROM_EMAIL or settings.DEFAULT_FROM_EMAIL,
        to=[letter.recipient],
        headers={"Message-ID": letter.message_id, "X-Referral-CRM-Letter": str(letter.pk)},
        connection=connection,
    )
    message.attach(f"letter-{letter.pk}.pdf", pdf, "application/pdf")
    return message
