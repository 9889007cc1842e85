from __future__ import annotations

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from audit.models import PatientDataAccess
from intake.models import ReferralAttachment
from intake.tests.conftest import PDF, PNG, image, office_form_data, stored_files
from partners.factories import ProviderFactory
from referrals.factories import ReferralFactory, referral_form_data
from referrals.models import Referral
from referrals.services.workflow import referral_log

pytestmark = pytest.mark.django_db

JPEG = image("JPEG")
TIFF = image("TIFF")


def _logged(**kwargs):
    return referral_log(referral=ReferralFactory.build(**kwargs), actor=None)


def _upload(content, name="fax.pdf", content_type="application/pdf"):
    return SimpleUploadedFile(name, content, content_type=content_type)


@pytest.mark.parametrize(
    ("content", "kind"),
    [
        (PDF, "application/pdf"),
        (PNG, "image/png"),
        (JPEG, "image/jpeg"),
        (TIFF, "image/tiff"),
    ],
)
def test_a_coordinator_attaches_a_document_recognised_by_its_content(
    client_for, coordinator, private_dir, content, kind
):
    referral = _logged(provider=ProviderFactory())
    response = client_for(coordinator).post(
        reverse("intake:referral_attachment_add", args=[referral.pk]),
        # The name and the browser's type say PDF; the content decides.
        {"documents": _upload(content, name="scan.pdf")},
    )
    assert response.status_code == 302
    attachment = ReferralAttachment.objects.get()
    assert attachment.content_type == kind
    assert attachment.uploaded_by == coordinator
    (stored,) = stored_files(private_dir)
    assert stored.read_bytes() == content
    # Stored under a random name, outside the static and media roots.
    assert "scan" not in stored.name
    assert settings.MEDIA_ROOT not in stored.parents
    assert settings.STATIC_ROOT not in stored.parents


@pytest.mark.parametrize(
    ("content", "name", "message"),
    [
        (b"MZ\x90\x00 this is a program", "fax.pdf", "is not a PDF, PNG, JPEG or TIFF"),
        (b"<html><script>alert(1)</script>", "fax.png", "is not a PDF, PNG, JPEG or TIFF"),
        (b"", "empty.pdf", "is empty"),
    ],
)
def test_a_wrong_type_of_file_is_refused_with_the_reason_and_never_stored(
    client_for, coordinator, private_dir, content, name, message
):
    referral = _logged(provider=ProviderFactory())
    response = client_for(coordinator).post(
        reverse("intake:referral_attachment_add", args=[referral.pk]),
        {"documents": _upload(content, name=name)},
    )
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not ReferralAttachment.objects.exists()
    assert stored_files(private_dir) == []


def test_an_oversized_file_is_refused_with_the_limit_and_never_stored(
    client_for, coordinator, private_dir, settings
):
    settings.ATTACHMENT_MAX_BYTES = 1024
    referral = _logged(provider=ProviderFactory())
    response = client_for(coordinator).post(
        reverse("intake:referral_attachment_add", args=[referral.pk]),
        {"documents": _upload(PDF + b"0" * 2000)},
    )
    assert "documents may be at most 1.0\xa0KB" in response.content.decode()
    assert stored_files(private_dir) == []


def test_one_bad_file_among_good_ones_stores_none_of_them(client_for, coordinator, private_dir):
    referral = _logged(provider=ProviderFactory())
    response = client_for(coordinator).post(
        reverse("intake:referral_attachment_add", args=[referral.pk]),
        {"documents": [_upload(PDF), _upload(b"GIF89a", name="x.gif")]},
    )
    assert response.status_code == 200
    assert stored_files(private_dir) == []


def test_an_office_sends_documents_with_its_referral(link_and_token, private_dir):
    link, token = link_and_token
    data = office_form_data(link.organization, documents=[_upload(PDF), _upload(PNG, "p.png")])
    response = Client().post(reverse("intake:public_form", args=[token]), data)
    assert response.status_code == 302
    referral = Referral.objects.get()
    assert referral.attachments.count() == 2
    assert all(a.uploaded_by is None for a in referral.attachments.all())
    assert len(stored_files(private_dir)) == 2


def test_an_office_upload_of_the_wrong_type_saves_neither_referral_nor_file(
    link_and_token, private_dir
):
    link, token = link_and_token
    data = office_form_data(link.organization, documents=[_upload(b"#!/bin/sh\nrm -rf /")])
    response = Client().post(reverse("intake:public_form", args=[token]), data)
    assert response.status_code == 200
    assert "is not a PDF, PNG, JPEG or TIFF" in response.content.decode()
    assert not Referral.objects.exists()
    assert stored_files(private_dir) == []


def _attachment(coordinator, client_for):
    referral = _logged(provider=ProviderFactory())
    client_for(coordinator).post(
        reverse("intake:referral_attachment_add", args=[referral.pk]),
        {"documents": _upload(PDF, name="Olsen Ruth referral.pdf")},
    )
    return ReferralAttachment.objects.get()


def test_documents_added_to_a_referral_are_audited(client_for, coordinator, manager):
    attachment = _attachment(coordinator, client_for)
    entry = PatientDataAccess.objects.get()
    assert (entry.action, entry.user) == (PatientDataAccess.Action.CHANGE, coordinator)
    assert entry.referral_id == attachment.referral_id
    assert entry.fields == ["attachments"]
    client_for(coordinator).get(attachment.get_download_url())
    page = client_for(manager).get(reverse("audit:list"))
    assert page.content.decode().count("documents</td>") == 2


def test_documents_sent_with_a_new_referral_are_named_on_its_creation_in_the_audit_trail(
    client_for, coordinator, link_and_token
):
    # Logged by a coordinator with the fax, and sent by an office through its link with a
    # scan: the row that records each referral's creation says documents came with it.
    provider = ProviderFactory()
    data = referral_form_data(provider, documents=_upload(PDF))
    client_for(coordinator).post(reverse("referrals:create"), data)
    link, token = link_and_token
    office = office_form_data(link.organization, documents=[_upload(PNG, "scan.png", "image/png")])
    Client().post(reverse("intake:public_form", args=[token]), office)
    created = PatientDataAccess.objects.filter(action=PatientDataAccess.Action.CREATE)
    assert created.count() == 2
    assert all("attachments" in entry.fields for entry in created)
    # A referral that came without any names none.
    client_for(coordinator).post(
        reverse("referrals:create"),
        referral_form_data(provider, patient_last_name="Berg", confirm_duplicate="on"),
    )
    bare = created.order_by("-pk").first()
    assert "attachments" not in bare.fields and "patient_last_name" in bare.fields


def test_a_download_is_an_attachment_with_a_neutral_name_and_is_audited(client_for, coordinator):
    attachment = _attachment(coordinator, client_for)
    response = client_for(coordinator).get(attachment.get_download_url())
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == PDF
    assert response["Content-Type"] == "application/pdf"
    disposition = response["Content-Disposition"]
    assert disposition.startswith("attachment;")
    assert "Olsen" not in disposition
    entry = PatientDataAccess.objects.get(action=PatientDataAccess.Action.DOWNLOAD)
    assert entry.user == coordinator
    assert entry.referral_id == attachment.referral_id


@pytest.mark.parametrize("role", ["liaison", "no_role_user"])
def test_roles_without_patient_access_cannot_download(client_for, coordinator, request, role):
    attachment = _attachment(coordinator, client_for)
    user = request.getfixturevalue(role)
    if role == "liaison":
        # Even the liaison who owns the partner sees initials only, never documents.
        attachment.referral.provider.owner = user
        attachment.referral.provider.save()
    assert client_for(user).get(attachment.get_download_url()).status_code == 404
    assert not PatientDataAccess.objects.filter(action="download").exists()


def test_an_anonymous_visitor_is_sent_to_sign_in(client_for, coordinator):
    attachment = _attachment(coordinator, client_for)
    response = Client().get(attachment.get_download_url())
    assert response.status_code == 302
    assert "/accounts/login/" in response.url


def test_private_documents_have_no_public_url(client_for, coordinator):
    attachment = _attachment(coordinator, client_for)
    with pytest.raises(ValueError, match="no URL"):
        attachment.file.url  # noqa: B018


def test_a_coordinator_logs_a_faxed_referral_with_its_document(
    client_for, coordinator, private_dir
):
    provider = ProviderFactory()
    data = referral_form_data(provider, documents=_upload(TIFF, "fax.tif", "image/tiff"))
    response = client_for(coordinator).post(reverse("referrals:create"), data)
    referral = Referral.objects.get()
    assert response.url == referral.get_absolute_url()
    assert referral.attachments.get().content_type == "image/tiff"
    page = client_for(coordinator).get(referral.get_absolute_url()).content.decode()
    assert "fax.tif" in page


def test_a_big_upload_is_refused_by_its_true_size_without_touching_the_disk(
    client_for, coordinator, private_dir, settings, tmp_path
):
    # Django would spool an upload this big to a temporary file; ours never does.
    settings.FILE_UPLOAD_TEMP_DIR = str(tmp_path / "spool")
    (tmp_path / "spool").mkdir()
    settings.ATTACHMENT_MAX_BYTES = 1024 * 1024
    referral = _logged(provider=ProviderFactory())
    big = PDF + b"0" * (5 * 1024 * 1024)
    response = client_for(coordinator).post(
        reverse("intake:referral_attachment_add", args=[referral.pk]),
        {"documents": _upload(big)},
    )
    page = response.content.decode()
    assert "is 5.0\xa0MB; documents may be at most 1.0\xa0MB" in page
    assert list((tmp_path / "spool").iterdir()) == []
    assert stored_files(private_dir) == []


def test_the_intake_form_still_requires_its_csrf_token(link_and_token):
    link, token = link_and_token
    office = Client(enforce_csrf_checks=True)
    response = office.post(
        reverse("intake:public_form", args=[token]), office_form_data(link.organization)
    )
    assert response.status_code == 403
    assert not Referral.objects.exists()
    form = office.get(reverse("intake:public_form", args=[token]))
    data = office_form_data(link.organization, csrfmiddlewaretoken=form.context["csrf_token"])
    assert office.post(reverse("intake:public_form", args=[token]), data).status_code == 302


def test_a_very_long_file_name_keeps_its_extension():
    from intake.services import shown_name

    long_name = "scan-" + "x" * 400 + ".pdf"
    kept = shown_name(long_name)
    assert len(kept) == 200 and kept.endswith("….pdf") and kept.startswith("scan-xxx")
    assert shown_name("referral.pdf") == "referral.pdf"
    assert shown_name("y" * 300) == "y" * 199 + "…"
    assert shown_name(None) == ""


@pytest.mark.parametrize(
    ("content", "name"),
    [
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, "scan.png"),  # the signature and nothing else
        (PNG[: len(PNG) // 2], "cut.png"),
        (b"\xff\xd8\xff\xe0" + b"\x00" * 32, "photo.jpg"),
        (b"%PDF-1.4\n1 0 obj <<>> endobj\n", "cut.pdf"),  # no end-of-file mark
    ],
)
def test_a_document_that_only_starts_right_is_refused_as_damaged(content, name):
    from django.core.exceptions import ValidationError
    from django.core.files.uploadedfile import SimpleUploadedFile

    from intake.uploads import check_upload

    with pytest.raises(ValidationError, match="cannot be read as one"):
        check_upload(SimpleUploadedFile(name, content))


def test_deleting_a_referral_deletes_its_documents_files_too(
    client_for, coordinator, manager, administrator, private_dir, django_capture_on_commit_callbacks
):
    # The patient details go with a deleted referral: its faxed documents are patient
    # details too, and must not stay on the server with nothing left that names them.
    first, second = (_logged(provider=ProviderFactory()) for _ in range(2))
    for referral in (first, second):
        client_for(coordinator).post(
            reverse("intake:referral_attachment_add", args=[referral.pk]),
            {"documents": [_upload(PDF), _upload(PNG, name="scan.png", content_type="image/png")]},
        )
    assert len(stored_files(private_dir)) == 4
    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(manager).post(reverse("referrals:delete", args=[first.pk]))
    assert response.status_code == 302
    assert len(stored_files(private_dir)) == 2
    assert ReferralAttachment.objects.filter(referral=second).count() == 2
    # The same from the admin.
    with django_capture_on_commit_callbacks(execute=True):
        client_for(administrator).post(
            reverse("admin:referrals_referral_delete", args=[second.pk]), {"post": "yes"}
        )
    assert not Referral.objects.exists()
    assert stored_files(private_dir) == []
