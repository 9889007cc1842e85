from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from audit.models import PatientDataAccess
from intake.models import IntakeLink, IntakeSubmission, hash_token
from intake.services import intake_link_create
from intake.tests.conftest import office_form_data
from partners.factories import OrganizationFactory, ProviderFactory, make_npi
from partners.models import Provider
from referrals.factories import ReferralFactory
from referrals.models import Referral, Status
from registry.factories import RegistryProviderFactory

pytestmark = pytest.mark.django_db


def _url(token):
    return reverse("intake:public_form", args=[token])


def test_a_coordinator_creates_a_link_and_sees_its_address_only_once(
    client_for, coordinator, office
):
    client = client_for(coordinator)
    page_url = reverse("intake:organization_links", args=[office.pk])
    response = client.post(page_url, {"label": "front desk", "valid_for_days": "90"}, follow=True)
    page = response.content.decode()
    match = re.search(r"/intake/([A-Za-z0-9_-]{40,})/", page)
    assert match, "the new link's address is shown"
    token = match.group(1)
    link = IntakeLink.objects.get()
    # Only the hash is kept: the raw token is in no column.
    assert link.token_hash == hash_token(token)
    assert token not in {link.token_hash, link.label}
    assert link.created_by == coordinator
    assert link.expires_at > timezone.now() + timedelta(days=89)
    assert token not in client.get(page_url).content.decode()


def test_a_liaison_may_not_see_or_make_intake_links(client_for, liaison, office):
    client = client_for(liaison)
    page_url = reverse("intake:organization_links", args=[office.pk])
    assert client.get(page_url).status_code == 403
    assert client.post(page_url, {"valid_for_days": "30"}).status_code == 403
    assert not IntakeLink.objects.exists()


def test_revoking_a_link_refuses_the_office_with_a_clear_message(
    client_for, manager, link_and_token
):
    link, token = link_and_token
    page = client_for(manager).get(
        reverse("intake:organization_links", args=[link.organization_id])
    )
    assert "The office can no longer send referrals through this link" in page.content.decode()
    response = client_for(manager).post(reverse("intake:link_revoke", args=[link.pk]))
    assert response.status_code == 302
    link.refresh_from_db()
    assert link.revoked_by == manager
    office = Client()
    refused = office.get(_url(token)).content.decode()
    assert "withdrawn by the practice" in refused
    # Where to send it instead, as the message says.
    assert "referral fax <strong>(555) 010-2001</strong>" in refused
    assert 'href="tel:5550102000"' in refused
    response = office.post(_url(token), office_form_data(link.organization))
    assert response.status_code == 410
    # Revoked again (a page opened before): said so, and who revoked it stays on record.
    again = (
        client_for(manager)
        .post(reverse("intake:link_revoke", args=[link.pk]), follow=True)
        .content.decode()
    )
    assert "was already revoked" in again
    assert not Referral.objects.exists()


def test_an_office_submits_a_referral_and_sees_a_reference_but_no_patient_data(
    link_and_token,
):
    link, token = link_and_token
    office = Client()
    form = office.get(_url(token))
    assert form.status_code == 200
    assert "Grace Hopper" in form.content.decode()
    # One heading for the provider section, not the same words again as the choice's label.
    assert form.content.decode().count("Referring provider") == 1
    assert "Who is referring the patient?" in form.content.decode()
    response = office.post(
        _url(token), office_form_data(link.organization, urgency="urgent"), REMOTE_ADDR="10.9.8.7"
    )
    submission = IntakeSubmission.objects.select_related("referral").get()
    # The audit row says it came through the office's link, and from where.
    created = PatientDataAccess.objects.get(referral_id=submission.referral_id)
    assert (created.action, created.source, created.user) == ("create", "intake_link", None)
    assert created.ip_address == "10.9.8.7"
    referral = submission.referral
    assert response.status_code == 302
    assert response.url == reverse("intake:public_submitted", args=[token, submission.reference])
    assert referral.status == Status.RECEIVED
    assert referral.channel == Referral.Channel.WEB_FORM
    assert referral.direction == Referral.Direction.INBOUND
    assert referral.urgency == Referral.Urgency.URGENT
    assert referral.created_by is None
    assert referral.provider.organization == link.organization
    assert referral.events.get().to_status == Status.RECEIVED
    assert re.fullmatch(r"[A-HJ-NP-Z2-9]{8}", submission.reference)
    confirmation = office.get(response.url).content.decode()
    assert submission.reference in confirmation
    # Who has it and how to reach them, not the staff app's name and sign-in.
    assert "Riverside Orthopedics has your referral" in confirmation
    assert 'href="tel:5550102000"' in confirmation
    assert "Referral CRM</a>" not in confirmation and "p.m.." not in confirmation
    for private in ("Ruth", "Olsen", "knee", "1950"):
        assert private not in confirmation
    assert f"#{referral.pk}" not in confirmation


@pytest.mark.parametrize(
    "token",
    ["not-a-real-token", "x" * 43, "A" * 500, "%00", "0123456789" * 5],
)
def test_an_unknown_or_tampered_token_is_refused_clearly(link_and_token, token):
    _, _real = link_and_token
    response = Client().get(_url(token))
    assert response.status_code == 404
    assert "This referral link is not valid" in response.content.decode()


def test_a_token_with_one_character_changed_is_refused(link_and_token):
    link, token = link_and_token
    tampered = token[:-1] + ("A" if token[-1] != "A" else "B")
    response = Client().post(_url(tampered), office_form_data(link.organization))
    assert response.status_code == 404
    assert not Referral.objects.exists()


def test_an_expired_link_is_refused_and_saves_nothing(office, coordinator):
    _link, token = intake_link_create(
        organization=office, actor=coordinator, expires_at=timezone.now() - timedelta(minutes=1)
    )
    response = Client().post(_url(token), office_form_data(office))
    assert response.status_code == 410
    assert "has expired" in response.content.decode()
    assert not Referral.objects.exists()


def test_the_link_accepts_its_hourly_limit_and_then_refuses(settings, office, coordinator):
    settings.INTAKE_LINK_SUBMISSIONS_PER_HOUR = 3
    link, token = intake_link_create(organization=office, actor=coordinator)
    _other_link, other_token = intake_link_create(organization=office, actor=coordinator)
    office_client = Client()
    for _ in range(3):
        assert office_client.post(_url(token), office_form_data(office)).status_code == 302
    data = office_form_data(office, reason="Knee pain, Quillon follow-up")
    refused = office_client.post(_url(token), data)
    assert refused.status_code == 429
    page = refused.content.decode()
    assert "limit of 3 referrals an hour" in page
    # The form comes back as typed, with when the link takes the next one.
    assert "Knee pain, Quillon follow-up" in page and "it takes the next one from" in page
    assert 3500 <= int(refused["Retry-After"]) <= 3600
    assert Referral.objects.count() == 3
    # Opening the link again says so before anyone types a referral.
    opened = office_client.get(_url(token))
    assert opened.status_code == 200
    assert 'data-testid="throttled"' in opened.content.decode()
    assert 'data-testid="throttled"' not in office_client.get(_url(other_token)).content.decode()
    # The limit is per link: the office's other link still works.
    assert office_client.post(_url(other_token), office_form_data(office)).status_code == 302
    # An hour later the link accepts again.
    IntakeSubmission.objects.filter(link=link).update(
        submitted_at=timezone.now() - timedelta(hours=1, minutes=1)
    )
    assert office_client.post(_url(token), office_form_data(office)).status_code == 302
    assert Referral.objects.count() == 5


def test_an_office_names_a_provider_we_do_not_have_and_it_becomes_a_prospect(link_and_token):
    link, token = link_and_token
    data = office_form_data(
        link.organization,
        provider_choice="other",
        other_first_name="Ada",
        other_last_name="Lovelace",
        other_npi="1679576722",
    )
    assert Client().post(_url(token), data).status_code == 302
    provider = Provider.objects.get(npi="1679576722")
    assert provider.status == Provider.Status.PROSPECT
    assert provider.organization == link.organization
    submission = IntakeSubmission.objects.get()
    assert submission.provider_added
    assert submission.referral.provider == provider


def _naming(link: Any, npi: str, first: str = "Ada", last: str = "Lovelace") -> dict[str, Any]:
    return office_form_data(
        link.organization,
        provider_choice="other",
        other_first_name=first,
        other_last_name=last,
        other_npi=npi,
    )


def test_a_provider_the_registry_knows_takes_its_registered_details(link_and_token):
    link, token = link_and_token
    record = RegistryProviderFactory.create(
        first_name="ADA", last_name="O'BRIEN-LOVELACE", credential="M.D."
    )

    response = Client().post(_url(token), _naming(link, record.npi, last="obrien lovelace"))

    assert response.status_code == 302
    provider = Provider.objects.get(npi=record.npi)
    assert (provider.first_name, provider.last_name, provider.credential) == (
        "Ada",
        "O'Brien-Lovelace",
        "M.D.",
    )
    assert provider.taxonomy_code == "207Q00000X"


@pytest.mark.parametrize(
    ("record", "typed_last", "field", "message"),
    [
        (
            {"last_name": "WIEBE", "first_name": "DAVID"},
            "<script>alert(1)</script>",
            "other_last_name",
            "The national registry lists NPI {npi} as David Wiebe: check the name or the NPI.",
        ),
        (
            {"entity_type": 2, "organization_name": "MAPLE FAMILY PRACTICE LLC", "last_name": ""},
            "Lovelace",
            "other_npi",
            "This NPI is an organization's (Maple Family Practice Llc): give the referring "
            "clinician's own NPI.",
        ),
        (
            {"last_name": "LOVELACE", "deactivated": True},
            "Lovelace",
            "other_npi",
            "The national registry lists this NPI as deactivated.",
        ),
    ],
)
def test_a_provider_the_registry_contradicts_is_refused_with_what_it_says(
    link_and_token, record, typed_last, field, message
):
    link, token = link_and_token
    known = RegistryProviderFactory.create(**record)

    response = Client().post(_url(token), _naming(link, known.npi, last=typed_last))

    assert response.status_code == 200
    assert response.context["form"].errors[field] == [message.format(npi=known.npi)]
    assert not Provider.objects.filter(npi=known.npi).exists()
    assert not Referral.objects.exists()


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"provider_choice": "other", "other_npi": "1679576723"}, "check digit is wrong"),
        ({"provider_choice": "other"}, "Needed when the provider is not listed"),
        ({"provider_choice": "999999"}, "Choose a provider from the list"),
        # Printed under the last radio: "This field is required." read as if "Someone not
        # listed" were the one to fill in.
        ({"provider_choice": ""}, "Choose who is referring the patient, or “Someone not listed”."),
        ({"patient_dob": "2999-01-01"}, "cannot be in the future"),
        ({"patient_dob": "31/31/1950"}, "Enter a valid date"),
        ({"contact_name": ""}, "This field is required"),
        ({"reason": "x" * 5001}, "at most 5000 characters"),
        ({"patient_phone": "abc"}, "Not a US phone number"),
        ({"contact_phone": "555-0199"}, "Not a US phone number"),
    ],
)
def test_bad_office_input_re_renders_with_the_reason_and_keeps_what_was_typed(
    link_and_token, overrides, message
):
    link, token = link_and_token
    response = Client().post(_url(token), office_form_data(link.organization, **overrides))
    page = response.content.decode()
    assert response.status_code == 200
    assert message in page
    assert 'value="Olsen"' in page
    assert not Referral.objects.exists()


def test_phones_an_office_types_any_common_way_are_stored_as_staff_dial_them(link_and_token):
    link, token = link_and_token
    data = office_form_data(
        link.organization, patient_phone="402.555.0101", contact_phone="+1 402 555 0199 ext 4"
    )
    assert Client().post(_url(token), data).status_code == 302
    submission = IntakeSubmission.objects.select_related("referral").get()
    assert submission.referral.patient_phone == "(402) 555-0101"
    assert submission.contact_phone == "(402) 555-0199 x4"


def test_an_office_cannot_credit_a_provider_of_another_office(link_and_token):
    link, token = link_and_token
    stranger = ProviderFactory(organization=OrganizationFactory())
    data = office_form_data(link.organization, provider_choice=str(stranger.pk))
    response = Client().post(_url(token), data)
    assert "Choose a provider from the list" in response.content.decode()
    assert not Referral.objects.exists()


def test_the_confirmation_page_needs_the_matching_link(link_and_token, office, coordinator):
    _link, token = link_and_token
    Client().post(_url(token), office_form_data(office))
    reference = IntakeSubmission.objects.get().reference
    _, other_token = intake_link_create(organization=office, actor=coordinator)
    assert (
        Client().get(reverse("intake:public_submitted", args=[other_token, reference])).status_code
        == 404
    )
    # Only the reference itself: not with anything after it.
    padded = Client().get(reverse("intake:public_submitted", args=[token, reference + "ZZZZ"]))
    assert padded.status_code == 404
    page = padded.content.decode()
    # The office's own page, with who to call, not the staff's.
    assert "Referral not found" in page and "We have no referral with that reference" in page
    assert "dashboard" not in page.lower()
    ok = Client().get(reverse("intake:public_submitted", args=[token, reference]))
    assert ok.status_code == 200


def test_an_office_cannot_credit_another_office_s_provider_by_typing_their_npi(link_and_token):
    link, token = link_and_token
    stranger = ProviderFactory(organization=OrganizationFactory(name="Rival Clinic"))
    data = office_form_data(
        link.organization,
        provider_choice="other",
        other_first_name="Any",
        other_last_name="Name",
        other_npi=stranger.npi,
    )
    response = Client().post(_url(token), data)
    page = response.content.decode()
    assert response.status_code == 200
    assert "Our records list this NPI at another practice" in page
    assert 'value="Ruth"' in page  # what the office typed is still there
    assert not Referral.objects.exists()


def test_an_npi_typed_again_under_another_name_is_refused_not_credited_to_the_first(
    link_and_token,
):
    link, token = link_and_token
    office_client = Client()
    npi = make_npi(7301)
    assert office_client.post(_url(token), _naming(link, npi, "Nell", "Newdoc")).status_code == 302
    again = office_client.post(_url(token), _naming(link, npi, "Otto", "Other"))
    page = again.content.decode()
    assert again.status_code == 200
    assert "This NPI belongs to a provider of another name in our records" in page
    assert Referral.objects.count() == 1
    # The same provider named again, in other case and spacing, is theirs.
    same = office_client.post(_url(token), _naming(link, npi, "Nell", " NEWDOC "))
    assert same.status_code == 302
    assert Referral.objects.filter(provider__npi=npi).count() == 2


def test_a_provider_known_without_an_office_is_credited_through_the_link(link_and_token):
    link, token = link_and_token
    known = ProviderFactory(organization=None, last_name="Quillfeather")
    response = Client().post(_url(token), _naming(link, known.npi, "Ida", "Quillfeather"))
    assert response.status_code == 302
    assert Referral.objects.get().provider == known


def test_a_coordinator_finds_the_referral_by_the_reference_the_office_quotes(
    link_and_token, client_for, coordinator
):
    link, token = link_and_token
    Client().post(_url(token), office_form_data(link.organization))
    submission = IntakeSubmission.objects.select_related("referral").get()
    other = ReferralFactory()
    client = client_for(coordinator)

    def found(text):
        response = client.get(reverse("referrals:list"), {"number": text})
        assert response.status_code == 200
        return [int(pk) for pk in re.findall(r'data-queue-row="(\d+)"', response.content.decode())]

    assert found(f" {submission.reference.lower()} ") == [submission.referral.pk]
    assert found(str(submission.referral.pk)) == [submission.referral.pk]
    assert found(f"#{other.pk}") == [other.pk]
    assert found("NOPE2345") == [] and found("²") == []


def test_every_office_s_links_are_listed_in_one_place_with_their_use(
    client_for, manager, link_and_token, django_assert_num_queries
):
    link, token = link_and_token
    Client().post(reverse("intake:public_form", args=[token]), office_form_data(link.organization))
    other = OrganizationFactory(name="Aardvark Family Practice")
    revoked, _ = intake_link_create(organization=other, actor=manager, label="old fax desk")
    revoked.revoke(by=manager)
    client = client_for(manager)
    client.get(reverse("intake:links"))  # the session and permissions read once
    # Session, user, permissions, count, the page: however many links and referrals.
    with django_assert_num_queries(5):
        page = client.get(reverse("intake:links")).content.decode()
    row = re.search(rf'<tr data-link="{link.pk}">(.*?)</tr>', page, re.S)[1]
    assert link.organization.name in row and "Active" in row
    assert re.search(r'data-label="Referrals sent">1<', row)
    assert f'data-link="{revoked.pk}"' not in page
    page = client.get(reverse("intake:links"), {"show": "all"}).content.decode()
    assert "old fax desk" in page and "Revoked" in page


def test_a_liaison_does_not_see_the_list_of_links(client_for, liaison):
    assert client_for(liaison).get(reverse("intake:links")).status_code == 403


def test_the_same_opened_form_sent_twice_is_one_referral(link_and_token):
    import re

    link, token = link_and_token
    office_client = Client()
    page = office_client.get(_url(token)).content.decode()
    key = re.search(r'name="form_key" value="([0-9a-f]{32})"', page).group(1)
    data = office_form_data(link.organization, form_key=key)
    first = office_client.post(_url(token), data)
    again = office_client.post(_url(token), data)  # a phone's retry on a weak connection
    assert first.status_code == again.status_code == 302
    assert first["Location"] == again["Location"]
    assert Referral.objects.count() == 1
    # Another opening of the form is another referral.
    second_key = re.search(
        r'name="form_key" value="([0-9a-f]{32})"', office_client.get(_url(token)).content.decode()
    ).group(1)
    assert second_key != key
    office_client.post(_url(token), office_form_data(link.organization, form_key=second_key))
    assert Referral.objects.count() == 2
    # A key that is not one the form made is refused by the form, not stored.
    bad = office_client.post(_url(token), office_form_data(link.organization, form_key="x' OR 1"))
    assert bad.status_code == 200
    assert Referral.objects.count() == 2


def test_a_used_form_key_sent_with_another_patient_is_not_dropped(link_and_token):
    link, token = link_and_token
    office_client = Client()
    page = office_client.get(_url(token)).content.decode()
    hidden = re.search(r'<input[^>]*name="form_key"[^>]*>', page).group(0)
    assert 'autocomplete="off"' in hidden
    key = re.search(r'value="([0-9a-f]{32})"', hidden).group(1)
    office_client.post(_url(token), office_form_data(link.organization, form_key=key))
    # The browser put the sent form's key back, and the office typed the next patient.
    second = office_form_data(
        link.organization, form_key=key, patient_first_name="Ada", patient_last_name="Quist"
    )
    response = office_client.post(_url(token), second)
    assert response.status_code == 200
    page = response.content.decode()
    assert "already used to send a referral for another patient" in page
    assert 'value="Quist"' in page  # nothing typed is lost
    fresh = re.search(r'name="form_key" value="([0-9a-f]{32})"', page).group(1)
    assert fresh != key
    assert Referral.objects.count() == 1

    office_client.post(_url(token), {**second, "form_key": fresh})
    assert sorted(Referral.objects.values_list("patient_last_name", flat=True)) == [
        "Olsen",
        "Quist",
    ]


def test_a_damaged_form_key_is_said_plainly_and_the_form_can_be_sent_again(link_and_token):
    link, token = link_and_token
    office_client = Client()
    data = office_form_data(link.organization, form_key="x' OR 1")
    response = office_client.post(_url(token), data)
    assert response.status_code == 200
    page = response.content.decode()
    # Not "correct the fields marked below" with nothing marked: the hidden key is no
    # field the office can see or correct.
    assert "Please correct the fields marked below" not in page
    assert "could not be read whole" in page
    assert f'value="{data["patient_last_name"]}"' in page  # nothing typed is lost
    fresh = re.search(r'name="form_key" value="([0-9a-f]{32})"', page).group(1)
    assert Referral.objects.count() == 0

    assert office_client.post(_url(token), {**data, "form_key": fresh}).status_code == 302
    assert Referral.objects.count() == 1


def test_the_office_form_keeps_patients_out_of_the_browsers_autofill(link_and_token):
    _, token = link_and_token
    page = Client().get(_url(token)).content.decode()
    for name in ("patient_first_name", "patient_last_name", "patient_dob", "patient_phone"):
        field = re.search(rf'<input[^>]*name="{name}"[^>]*>', page)
        assert field is not None and 'autocomplete="off"' in field.group(0), name
