from __future__ import annotations

from datetime import date, timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from audit.models import PatientDataAccess
from partners.factories import OrganizationFactory, ProviderFactory
from referrals.factories import ReferralFactory
from referrals.models import Referral
from referrals.selectors import possible_duplicates
from referrals.services.workflow import referral_log

pytestmark = pytest.mark.django_db

DOB = date(1950, 4, 2)


def _logged(**kwargs):
    kwargs.setdefault("patient_last_name", "Olsen")
    kwargs.setdefault("patient_dob", DOB)
    return referral_log(referral=ReferralFactory.build(**kwargs), actor=None)


def test_possible_duplicates_are_the_same_patient_and_partner_within_the_window(settings):
    settings.DUPLICATE_WINDOW_DAYS = 30
    office = OrganizationFactory()
    provider = ProviderFactory(organization=office)
    colleague = ProviderFactory(organization=office)
    same = _logged(provider=provider)
    same_office = _logged(provider=colleague, patient_last_name="  OLSEN ")
    _logged(provider=ProviderFactory())  # another partner
    _logged(provider=provider, patient_dob=date(1950, 4, 3))  # another patient
    _logged(provider=provider, patient_last_name="Olsson")  # another patient
    _logged(provider=provider, received_at=timezone.now() - timedelta(days=31))  # too old
    found = possible_duplicates(provider=provider, patient_last_name="olsen ", patient_dob=DOB)
    assert sorted(r.pk for r in found) == sorted([same.pk, same_office.pk])
    assert [
        r.pk
        for r in possible_duplicates(
            provider=provider, patient_last_name="Olsen", patient_dob=DOB, exclude_pk=same.pk
        )
    ] == [same_office.pk]


def _form_data(provider, **overrides):
    data = {
        "direction": "inbound",
        "provider": provider.pk,
        "channel": "phone",
        "urgency": "routine",
        "received_at": timezone.localtime().strftime("%Y-%m-%dT%H:%M"),
        "patient_first_name": "Ruth",
        "patient_last_name": "Olsen",
        "patient_dob": DOB.isoformat(),
        "reason": "Knee pain again",
    }
    return {**data, **overrides}


def test_a_possible_duplicate_is_shown_before_saving_and_needs_confirmation(
    client_for, coordinator
):
    provider = ProviderFactory()
    earlier = _logged(provider=provider)
    client = client_for(coordinator)
    response = client.post(reverse("referrals:create"), _form_data(provider))
    page = response.content.decode()
    assert response.status_code == 200
    assert "Possible duplicate" in page
    assert f"Referral #{earlier.pk}" in page
    # The date it came in, then its status: "received" is not said twice in a row.
    received = earlier.received_at.astimezone(timezone.get_current_timezone())
    assert f"received {received:%b} {received.day}, {received.year} (status: Received)" in page
    assert 'name="confirm_duplicate"' in page and 'type="checkbox"' in page
    assert Referral.objects.count() == 1
    response = client.post(
        reverse("referrals:create"), _form_data(provider, confirm_duplicate="on")
    )
    assert response.status_code == 302
    assert Referral.objects.count() == 2


def test_a_name_pasted_with_an_invisible_character_is_still_checked_for_a_duplicate(
    client_for, coordinator
):
    # A zero-width space or a direction mark copied along from a PDF or an EHR: taken out
    # before saving, so the check looks for the name as it will be stored.
    provider = ProviderFactory()
    earlier = _logged(provider=provider)
    response = client_for(coordinator).post(
        reverse("referrals:create"), _form_data(provider, patient_last_name="Ol\u200bsen\u200e")
    )
    assert response.status_code == 200
    assert f"Referral #{earlier.pk}" in response.content.decode()
    assert Referral.objects.count() == 1


def test_the_possible_duplicates_shown_are_a_read_of_their_patients_names(client_for, coordinator):
    provider = ProviderFactory()
    earlier = _logged(provider=provider)
    response = client_for(coordinator).post(reverse("referrals:create"), _form_data(provider))
    assert f"{earlier.patient_last_name}, {earlier.patient_first_name}" in response.content.decode()
    entry = PatientDataAccess.objects.get()
    assert (entry.user, entry.referral_id) == (coordinator, earlier.pk)
    assert entry.action == PatientDataAccess.Action.LIST


def test_a_new_patient_is_saved_without_any_question(client_for, coordinator):
    provider = ProviderFactory()
    _logged(provider=provider)
    response = client_for(coordinator).post(
        reverse("referrals:create"), _form_data(provider, patient_last_name="Hansen")
    )
    assert response.status_code == 302


def test_the_detail_page_flags_a_duplicate_that_arrived_by_itself(client_for, coordinator):
    provider = ProviderFactory()
    first = _logged(provider=provider)
    second = _logged(provider=provider)
    page = client_for(coordinator).get(second.get_absolute_url()).content.decode()
    assert "Possible duplicate of" in page
    assert f'href="{first.get_absolute_url()}"' in page


def test_the_phone_entry_form_opens_with_the_phone_channel(client_for, coordinator):
    page = client_for(coordinator).get(reverse("referrals:create"), {"channel": "phone"})
    assert 'value="phone" selected' in page.content.decode()
    queue = client_for(coordinator).get(reverse("referrals:list")).content.decode()
    assert "?channel=phone" in queue


def test_a_phone_or_walk_in_entry_is_the_quick_form_without_documents(client_for, coordinator):
    client = client_for(coordinator)
    for channel in ("phone", "walk_in"):
        page = client.get(reverse("referrals:create"), {"channel": channel}).content.decode()
        assert 'name="documents"' not in page and "document-preview" not in page
    fax = client.get(reverse("referrals:create"), {"channel": "fax"}).content.decode()
    assert 'name="documents"' in fax and 'id="document-preview"' in fax
    # Saved without documents; a file sent along anyway is not attached.
    partner = ProviderFactory()
    response = client.post(
        reverse("referrals:create") + "?channel=phone",
        {
            **_form_data(partner),
            "channel": "phone",
            "documents": SimpleUploadedFile("x.pdf", b"%PDF-1.4"),
        },
    )
    assert response.status_code == 302
    assert not Referral.objects.get().attachments.exists()


def test_a_document_chosen_on_the_full_form_is_kept_when_the_channel_is_phone(
    client_for, coordinator
):
    """The full form offers every channel: a referral phoned in whose notes were faxed
    too keeps the document chosen for it (it was dropped without a word)."""
    pdf = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"
    response = client_for(coordinator).post(
        reverse("referrals:create"),
        {
            **_form_data(ProviderFactory()),
            "channel": "phone",
            "documents": SimpleUploadedFile("notes.pdf", pdf),
        },
    )
    assert response.status_code == 302
    referral = Referral.objects.get()
    assert referral.channel == "phone"
    assert [a.original_name for a in referral.attachments.all()] == ["notes.pdf"]


def test_a_patient_sent_out_to_the_partner_who_referred_them_is_no_duplicate(
    client_for, coordinator
):
    """A referral from a partner and one we send to that partner (or their office's
    cardiologist) for the same patient are two different things, not one sent twice:
    neither the queue, the detail page nor the entry form calls them duplicates. Two the
    same way still are."""
    office = OrganizationFactory()
    referrer = ProviderFactory(organization=office)
    specialist = ProviderFactory(organization=office, in_network=True)
    received = _logged(provider=referrer)
    sent = _logged(provider=specialist, direction="outbound")
    client = client_for(coordinator)
    queue = client.get(reverse("referrals:list")).content.decode()
    assert "data-duplicate" not in queue
    assert "Possible duplicate of" not in client.get(sent.get_absolute_url()).content.decode()
    assert "Possible duplicate of" not in client.get(received.get_absolute_url()).content.decode()
    found = {
        direction: [
            r.pk
            for r in possible_duplicates(
                provider=specialist, patient_last_name="Olsen", patient_dob=DOB, direction=direction
            )
        ]
        for direction in ("inbound", "outbound")
    }
    assert found == {"inbound": [received.pk], "outbound": [sent.pk]}
    # Sending back out a patient another partner referred to us asks nothing.
    other = ProviderFactory(in_network=True)
    _logged(provider=other)
    response = client.post(reverse("referrals:create"), _form_data(other, direction="outbound"))
    assert response.status_code == 302


def test_a_patient_sent_out_twice_to_the_same_specialist_is_asked_about_on_the_refer_out_page(
    client_for, coordinator
):
    """The refer-out page, like the entry form, shows a likely duplicate before saving (a
    patient already sent to this specialist, or their office, within the window): the
    specialist would otherwise get the same patient twice, and the queue only says so
    after. Confirmed, it is saved."""
    specialist = ProviderFactory(in_network=True)
    earlier = _logged(provider=specialist, direction="outbound")
    data = _form_data(specialist)
    del data["direction"]
    client = client_for(coordinator)
    response = client.post(reverse("referrals:refer_out"), data)
    page = response.content.decode()
    assert response.status_code == 200
    assert "Possible duplicate" in page and f"Referral #{earlier.pk}" in page
    assert 'name="confirm_duplicate"' in page and 'type="checkbox"' in page
    assert Referral.objects.count() == 1
    assert PatientDataAccess.objects.filter(
        referral_id=earlier.pk, action=PatientDataAccess.Action.LIST
    ).exists()
    response = client.post(reverse("referrals:refer_out"), {**data, "confirm_duplicate": "on"})
    assert response.status_code == 302
    assert Referral.objects.outbound().count() == 2
