"""Hostile text in every intake form: stored and shown back harmlessly, or refused with a
clear message; never a server error."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from intake.models import IntakeLink, IntakeSubmission
from intake.tests.conftest import PDF, office_form_data
from referrals.models import Referral

pytestmark = pytest.mark.django_db

SCRIPT = "<script>alert(1)</script>"
SQL = "'; DROP TABLE referrals_referral; --"
ODD = "\u202eTnemtaert\u200b Zoë 🩺👩\u200d⚕️"
# What is kept of it: the right-to-left override (which drew "Treatment" backwards and the
# rest of the line with it) and the zero-width space go; the emoji's joiner stays.
ODD_STORED = "Tnemtaert Zoë 🩺👩\u200d⚕️"
HUGE = "x" * 100_000

STORED = [SCRIPT, SQL, ODD]
TEXT_FIELDS = ["patient_first_name", "patient_last_name", "reason", "contact_name"]


@pytest.mark.parametrize("value", STORED)
@pytest.mark.parametrize("field", TEXT_FIELDS)
def test_hostile_text_from_an_office_is_stored_harmlessly_and_shown_escaped(
    client_for, coordinator, link_and_token, field, value
):
    link, token = link_and_token
    response = Client().post(
        reverse("intake:public_form", args=[token]),
        office_form_data(link.organization, **{field: value}),
    )
    assert response.status_code == 302
    submission = IntakeSubmission.objects.select_related("referral").get()
    stored = getattr(submission, field, None) or getattr(submission.referral, field)
    assert stored == (ODD_STORED if value == ODD else value)
    assert Referral.objects.count() == 1  # the SQL fragment dropped nothing
    page = client_for(coordinator).get(submission.referral.get_absolute_url()).content.decode()
    assert SCRIPT not in page
    if value == SCRIPT:
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    if value == ODD:
        assert "🩺" in page and "\u202e" not in page


@pytest.mark.parametrize(
    ("field", "message"),
    [
        ("patient_first_name", "at most 100 characters"),
        ("contact_name", "at most 100 characters"),
        ("reason", "at most 5000 characters"),
        ("patient_phone", "at most 30 characters"),
        ("other_npi", "at most 10 characters"),
    ],
)
def test_a_huge_string_is_refused_with_a_length_message(link_and_token, field, message):
    link, token = link_and_token
    response = Client().post(
        reverse("intake:public_form", args=[token]),
        office_form_data(link.organization, **{field: HUGE}),
    )
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not Referral.objects.exists()


def test_a_null_character_is_refused_not_crashed_on(link_and_token):
    link, token = link_and_token
    response = Client().post(
        reverse("intake:public_form", args=[token]),
        office_form_data(link.organization, patient_last_name="Ol\x00sen"),
    )
    assert response.status_code == 200
    assert "Null characters are not allowed" in response.content.decode()


@pytest.mark.parametrize("value", [SCRIPT, SQL, ODD, HUGE])
def test_hostile_link_labels_are_stored_or_refused_and_shown_escaped(
    client_for, manager, office, value
):
    client = client_for(manager)
    url = reverse("intake:organization_links", args=[office.pk])
    response = client.post(url, {"label": value, "valid_for_days": "30"})
    assert response.status_code in (200, 302)
    if value == HUGE:
        assert "at most 100 characters" in response.content.decode()
        assert not IntakeLink.objects.exists()
        return
    assert IntakeLink.objects.get().label == value
    page = client.get(url).content.decode()
    assert SCRIPT not in page


@pytest.mark.parametrize("name", [f"{SCRIPT}.pdf", f"{SQL}.pdf", f"{ODD}.pdf", "../../etc/passwd"])
def test_hostile_document_names_are_kept_as_text_and_never_used_on_disk(
    client_for, coordinator, link_and_token, private_dir, name
):
    link, token = link_and_token
    data = office_form_data(link.organization, documents=[SimpleUploadedFile(name, PDF)])
    assert Client().post(reverse("intake:public_form", args=[token]), data).status_code == 302
    referral = Referral.objects.get()
    attachment = referral.attachments.get()
    stored = next(p for p in private_dir.rglob("*") if p.is_file())
    assert private_dir in stored.parents
    assert stored.suffix == ".pdf" and "passwd" not in str(stored) and "script" not in str(stored)
    page = client_for(coordinator).get(referral.get_absolute_url()).content.decode()
    assert SCRIPT not in page
    assert attachment.original_name


@pytest.mark.parametrize("value", [SCRIPT, SQL, ODD, HUGE, "\x00"])
def test_hostile_hl7_uploads_are_refused_with_a_reason(client_for, coordinator, value):
    response = client_for(coordinator).post(
        reverse("intake:hl7_upload"),
        {"message": SimpleUploadedFile("order.hl7", value.encode()), "provider": value[:50]},
    )
    assert response.status_code == 200
    assert "not imported" in response.content.decode()
    assert SCRIPT not in response.content.decode()
    assert not Referral.objects.exists()
