"""Partners who prefer the portal get a Direct secure message at the Direct address the
NPPES registry publishes for their NPI, through the practice's Direct relay, with email,
fax and mail as fallbacks; the letter records the channel and address used."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.core import mail

from bench.smtp_sink import SmtpSink
from outreach import direct
from outreach.models import Letter, LetterTemplate
from outreach.services import delivery, letters, loop
from partners.factories import ProviderFactory
from partners.models import Provider
from referrals.factories import ReferralFactory
from referrals.models import Status
from referrals.services.workflow import referral_log
from registry.models import RegistryEndpoint

pytestmark = pytest.mark.django_db

K = LetterTemplate.Kind
PORTAL = Provider.PreferredChannel.PORTAL


@pytest.fixture
def relay(settings) -> Iterator[SmtpSink]:
    """The aiosmtpd sink standing in for the HISP's SMTP relay."""
    sink = SmtpSink().start()
    settings.DIRECT_EMAIL = {
        "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
        "EMAIL_HOST": "127.0.0.1",
        "EMAIL_PORT": sink.port,
    }
    settings.DIRECT_FROM_EMAIL = "referrals@direct.riverside-ortho.example"
    yield sink
    sink.stop()


def _endpoint(npi: str, endpoint: str, kind: str = "DIRECT") -> None:
    RegistryEndpoint.objects.create(
        provider_id=npi,
        endpoint_type=kind,
        endpoint_type_description="Direct Messaging Address",
        endpoint=endpoint,
        row_hash=f"{npi}{endpoint}"[:32],
    )


def _acknowledgment(provider: Provider) -> Letter:
    referral = referral_log(
        referral=ReferralFactory.build(
            provider=provider, patient_first_name="Ruth", patient_last_name="Olsen"
        ),
        actor=None,
    )
    _task, letter = loop.loop_message_prepare(referral_id=referral.pk, status=Status.RECEIVED)
    assert letter is not None
    return letter


def test_a_portal_partner_gets_a_direct_message_with_the_letter_as_pdf(relay):
    provider = ProviderFactory(preferred_channel=PORTAL, email="office@example.org")
    _endpoint(provider.npi, "mailto:dr.wiebe@direct.lakeside.example")

    letter = _acknowledgment(provider)
    assert (letter.channel, letter.recipient) == (
        Letter.Channel.DIRECT,
        "dr.wiebe@direct.lakeside.example",
    )
    (_delivered,) = delivery.letters_deliver(letter_ids=[letter.pk])

    letter.refresh_from_db()
    assert letter.status == Letter.Status.SENT
    assert (letter.channel, letter.recipient) == (
        Letter.Channel.DIRECT,
        "dr.wiebe@direct.lakeside.example",
    )
    assert relay.received == {letter.message_id: 1}
    (message,) = relay.messages
    assert message["To"] == "dr.wiebe@direct.lakeside.example"
    assert message["From"] == "referrals@direct.riverside-ortho.example"
    attachments = [part for part in message.walk() if part.get_filename()]
    assert attachments[0].get_content_type() == "application/pdf"
    assert attachments[0].get_payload(decode=True).startswith(b"%PDF")
    assert "Olsen" not in message.as_string()
    assert mail.outbox == []  # not through the ordinary email server


@pytest.mark.parametrize(
    ("email", "fax", "channel"),
    [
        ("office@example.org", "555-010-3000", Letter.Channel.EMAIL),
        ("", "555-010-3000", Letter.Channel.FAX),
        ("", "", Letter.Channel.MAIL),
    ],
)
def test_without_a_direct_address_the_portal_falls_back_to_email_fax_then_mail(
    relay, email, fax, channel
):
    provider = ProviderFactory(preferred_channel=PORTAL, email=email)
    provider.organization.email, provider.organization.fax = "", fax
    provider.organization.save()
    _endpoint(provider.npi, "https://fhir.lakeside.example/r4", kind="FHIR")

    assert letters.letter_route(provider, K.ACKNOWLEDGMENT)[0] == channel


def test_without_a_relay_the_portal_goes_by_email_even_with_a_direct_address(settings):
    settings.DIRECT_EMAIL = None
    provider = ProviderFactory(preferred_channel=PORTAL, email="office@example.org")
    _endpoint(provider.npi, "dr.wiebe@direct.lakeside.example")

    assert letters.letter_route(provider, K.ACKNOWLEDGMENT) == (
        Letter.Channel.EMAIL,
        Letter.Status.PENDING,
        "office@example.org",
    )


def test_a_direct_letter_whose_relay_went_away_is_sent_by_email_and_says_so(relay, settings):
    provider = ProviderFactory(preferred_channel=PORTAL, email="office@example.org")
    _endpoint(provider.npi, "dr.wiebe@direct.lakeside.example")
    letter = _acknowledgment(provider)
    assert letter.channel == Letter.Channel.DIRECT
    settings.DIRECT_EMAIL = None

    delivery.letters_deliver(letter_ids=[letter.pk])

    letter.refresh_from_db()
    assert (letter.status, letter.channel, letter.recipient) == (
        Letter.Status.SENT,
        Letter.Channel.EMAIL,
        "office@example.org",
    )
    assert len(mail.outbox) == 1 and relay.total == 0


def test_direct_addresses_are_read_in_one_query_for_many_partners(django_assert_num_queries):
    npis = [ProviderFactory().npi for _ in range(5)]
    for npi in npis:
        _endpoint(npi, f"dr{npi}@direct.example.org")
    _endpoint(npis[0], "not an address", kind="DIRECT")

    with django_assert_num_queries(1):
        found = direct.direct_addresses(npis)

    assert found == {npi: f"dr{npi}@direct.example.org" for npi in npis}


def test_a_refusing_relay_is_retried_like_any_smtp_failure(relay):
    relay.refuse = True
    provider = ProviderFactory(preferred_channel=PORTAL)
    _endpoint(provider.npi, "dr.wiebe@direct.lakeside.example")
    letter = _acknowledgment(provider)

    with pytest.raises(delivery.TransientDeliveryError):
        delivery.letters_deliver(letter_ids=[letter.pk])

    letter.refresh_from_db()
    assert letter.status == Letter.Status.PENDING
    assert letter.last_error.startswith("SMTPDataError")


def test_a_registry_direct_address_too_long_to_send_to_is_passed_over_for_email(relay):
    # Valid in form, but longer than SMTP carries (and the letter's column holds): taken,
    # it failed the write of every letter it was routed to.
    too_long = "dr." + "w" * 57 + "@" + ".".join(["direct" + "b" * 57] * 3) + ".example"
    provider = ProviderFactory(preferred_channel=PORTAL, email="office@example.org")
    _endpoint(provider.npi, too_long)

    letter = _acknowledgment(provider)

    assert (letter.channel, letter.recipient) == (Letter.Channel.EMAIL, "office@example.org")


def test_a_registry_direct_address_too_long_to_send_to_stops_no_one_s_event_reminder(relay):
    from datetime import timedelta

    from django.utils import timezone

    from outreach import meetings
    from outreach.factories import EventFactory
    from outreach.models import Invitation

    too_long = "dr." + "w" * 57 + "@" + ".".join(["direct" + "b" * 57] * 3) + ".example"
    event = EventFactory(starts_at=timezone.now() + timedelta(days=2), remind_days_before=7)
    long_address = ProviderFactory(preferred_channel=PORTAL, email="office@example.org")
    _endpoint(long_address.npi, too_long)
    colleague = ProviderFactory(email="colleague@example.org")
    for provider in (long_address, colleague):
        Invitation.objects.create(event=event, provider=provider)

    reminders = meetings.event_reminders_prepare()

    assert {(letter.provider, letter.recipient) for letter in reminders} == {
        (long_address, "office@example.org"),
        (colleague, "colleague@example.org"),
    }
