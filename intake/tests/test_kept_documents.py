"""A form with documents that comes back (a typo, a possible duplicate) keeps the documents
that passed their checks: they are listed as kept, and the next post sends only their
signed references."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest
from django.core import signing
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from core.factories import UserFactory
from core.roles import Role
from intake.models import StagedDocument
from intake.services import documents_stage, intake_link_create
from intake.tests.conftest import PDF, PNG, office_form_data, stored_files
from partners.factories import ProviderFactory
from referrals.factories import ReferralFactory, referral_form_data
from referrals.models import Referral
from referrals.services.workflow import referral_log

pytestmark = pytest.mark.django_db

ENTRY = reverse("referrals:create")


@pytest.fixture(autouse=True)
def _commit_callbacks(django_capture_on_commit_callbacks: Any, monkeypatch: Any) -> None:
    """Staged files are deleted once the deleting transaction commits, which a test's own
    transaction never does: each request runs its on-commit callbacks as it ends."""
    post = Client.post

    def post_and_commit(client: Client, *args: Any, **kwargs: Any) -> Any:
        with django_capture_on_commit_callbacks(execute=True):
            return post(client, *args, **kwargs)

    monkeypatch.setattr(Client, "post", post_and_commit)


def _upload(content: bytes = PDF, name: str = "fax 0412.pdf") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, content, content_type="application/pdf")


def _kept(response: Any) -> list[str]:
    return re.findall(r'name="documents-kept" value="([^"]+)"', response.content.decode())


def _staged_path(private_dir: Any) -> Any:
    (stored,) = stored_files(private_dir)
    assert stored.relative_to(private_dir).parts[0] == "staged"
    return stored


def test_a_typo_keeps_the_fax_and_the_corrected_form_saves_it_without_choosing_it_again(
    client_for, coordinator, private_dir
):
    provider = ProviderFactory()
    client = client_for(coordinator)
    first = client.post(
        ENTRY, referral_form_data(provider, patient_dob="2999-01-01", documents=_upload())
    )
    page = first.content.decode()
    assert first.status_code == 200
    assert "The date of birth cannot be in the future." in page
    assert "fax 0412.pdf" in page and "kept" in page
    assert "again" not in page.split('id="div_id_documents"')[1].split("</div>")[0]
    (reference,) = _kept(first)
    _staged_path(private_dir)

    second = client.post(ENTRY, referral_form_data(provider, **{"documents-kept": reference}))
    referral = Referral.objects.get()
    assert second.url == referral.get_absolute_url()
    attachment = referral.attachments.get()
    assert attachment.original_name == "fax 0412.pdf"
    assert attachment.uploaded_by == coordinator
    with attachment.file.open("rb") as stored:
        assert stored.read() == PDF
    assert not StagedDocument.objects.exists()
    (only,) = stored_files(private_dir)
    assert only.relative_to(private_dir).parts[0] == "referrals"


def test_a_possible_duplicate_keeps_the_fax_until_the_coordinator_confirms(
    client_for, coordinator, private_dir
):
    provider = ProviderFactory()
    earlier = referral_log(referral=ReferralFactory.build(provider=provider), actor=None)
    data = referral_form_data(
        provider,
        patient_first_name=earlier.patient_first_name,
        patient_last_name=earlier.patient_last_name,
        patient_dob=earlier.patient_dob.isoformat(),
    )
    client = client_for(coordinator)
    first = client.post(ENTRY, {**data, "documents": _upload()})
    page = first.content.decode()
    assert "save it anyway" in page
    assert "choose" not in page.split('id="div_id_documents"')[1].split("</div>")[0]
    (reference,) = _kept(first)
    assert Referral.objects.count() == 1

    second = client.post(ENTRY, {**data, "confirm_duplicate": "on", "documents-kept": reference})
    assert second.status_code == 302
    new = Referral.objects.exclude(pk=earlier.pk).get()
    assert new.attachments.get().original_name == "fax 0412.pdf"
    assert not StagedDocument.objects.exists()


def test_kept_documents_stay_kept_through_several_returns_and_new_ones_join_them(
    client_for, coordinator, private_dir
):
    provider = ProviderFactory()
    client = client_for(coordinator)
    first = client.post(ENTRY, referral_form_data(provider, patient_dob="", documents=_upload()))
    second = client.post(
        ENTRY,
        referral_form_data(
            provider,
            reason="",
            documents=_upload(PNG, "page 2.png"),
            **{"documents-kept": _kept(first)},
        ),
    )
    assert len(_kept(second)) == 2
    client.post(ENTRY, referral_form_data(provider, **{"documents-kept": _kept(second)}))
    names = set(Referral.objects.get().attachments.values_list("original_name", flat=True))
    assert names == {"fax 0412.pdf", "page 2.png"}
    assert len(stored_files(private_dir)) == 2


def test_a_kept_document_ticked_for_removal_is_not_attached_and_is_deleted(
    client_for, coordinator, private_dir
):
    provider = ProviderFactory()
    client = client_for(coordinator)
    first = client.post(
        ENTRY, referral_form_data(provider, patient_dob="2999-01-01", documents=_upload())
    )
    (reference,) = _kept(first)
    second = client.post(
        ENTRY,
        referral_form_data(
            provider, **{"documents-kept": reference, "documents-remove": reference}
        ),
    )
    assert second.status_code == 302
    assert not Referral.objects.get().attachments.exists()
    assert not StagedDocument.objects.exists()
    assert stored_files(private_dir) == []


def test_a_removal_on_a_form_that_comes_back_again_deletes_it_and_lists_it_no_more(
    client_for, coordinator, private_dir
):
    provider = ProviderFactory()
    client = client_for(coordinator)
    first = client.post(ENTRY, referral_form_data(provider, reason="", documents=_upload()))
    (reference,) = _kept(first)
    second = client.post(
        ENTRY,
        referral_form_data(
            provider, reason="", **{"documents-kept": reference, "documents-remove": reference}
        ),
    )
    assert second.status_code == 200
    assert _kept(second) == []
    assert stored_files(private_dir) == []


def _refused(response: Any, message: str) -> None:
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not Referral.objects.exists()


def test_a_tampered_reference_is_refused_with_a_clear_message(client_for, coordinator, private_dir):
    provider = ProviderFactory()
    client = client_for(coordinator)
    first = client.post(ENTRY, referral_form_data(provider, reason="", documents=_upload()))
    (reference,) = _kept(first)
    key, stamp, signature = reference.split(":")
    forged = f"{'0' * 32}:{stamp}:{signature}"
    response = client.post(ENTRY, referral_form_data(provider, **{"documents-kept": forged}))
    _refused(response, "could not be found (the page may be too old")
    for junk in ["", "nonsense", f"{key}:{stamp}:{'A' * len(signature)}"]:
        response = client.post(ENTRY, referral_form_data(provider, **{"documents-kept": junk}))
        _refused(response, "could not be found")
    assert StagedDocument.objects.count() == 1


def _reference_two_hours_old(owner, monkeypatch):
    """A kept fax of `owner`'s, with a reference signed a second more than 2 hours ago."""
    staged = documents_stage(documents=[(_upload(), "application/pdf")], owner=owner)[0]
    now = time.time()
    with monkeypatch.context() as past:
        past.setattr(signing.time, "time", lambda: now - 2 * 3600 - 1)
        return staged.reference


def test_a_reference_older_than_two_hours_is_refused_by_name(
    client_for, coordinator, private_dir, monkeypatch
):
    old_reference = _reference_two_hours_old(coordinator, monkeypatch)
    response = client_for(coordinator).post(
        ENTRY, referral_form_data(ProviderFactory(), **{"documents-kept": old_reference})
    )
    _refused(response, "“fax 0412.pdf” was kept for you for 2 hours only: choose it again.")
    # It can never be used now: it goes at once rather than waiting for the sweep.
    assert not StagedDocument.objects.exists()
    assert stored_files(private_dir) == []


def test_an_old_reference_ticked_for_removal_is_simply_removed(
    client_for, coordinator, private_dir, monkeypatch
):
    old_reference = _reference_two_hours_old(coordinator, monkeypatch)
    response = client_for(coordinator).post(
        ENTRY,
        referral_form_data(
            ProviderFactory(),
            **{"documents-kept": old_reference, "documents-remove": old_reference},
        ),
    )
    assert response.status_code == 302
    assert not Referral.objects.get().attachments.exists()
    assert stored_files(private_dir) == []


def test_another_coordinators_kept_document_cannot_be_used_or_removed(
    client_for, coordinator, private_dir
):
    colleague = UserFactory(username="colleague", role=Role.COORDINATOR)
    theirs = documents_stage(documents=[(_upload(), "application/pdf")], owner=colleague)[0]
    provider = ProviderFactory()
    client = client_for(coordinator)
    response = client.post(
        ENTRY, referral_form_data(provider, **{"documents-kept": theirs.reference})
    )
    _refused(response, "could not be found")
    assert "fax 0412.pdf" not in response.content.decode()
    client.post(
        ENTRY,
        referral_form_data(
            provider,
            **{"documents-kept": theirs.reference, "documents-remove": theirs.reference},
        ),
    )
    assert StagedDocument.objects.get() == theirs
    assert stored_files(private_dir) != []


def test_kept_and_new_documents_together_stay_within_the_maximum(
    client_for, coordinator, private_dir, settings
):
    settings.ATTACHMENT_MAX_FILES = 2
    provider = ProviderFactory()
    client = client_for(coordinator)
    first = client.post(
        ENTRY, referral_form_data(provider, reason="", documents=[_upload(), _upload(PNG, "p.png")])
    )
    assert len(_kept(first)) == 2
    response = client.post(
        ENTRY,
        referral_form_data(
            provider, documents=_upload(name="more.pdf"), **{"documents-kept": _kept(first)}
        ),
    )
    _refused(response, "Attach at most 2 documents: 2 kept and 1 newly chosen make 3.")
    # The kept ones are still listed; the one over the limit was not kept.
    assert len(_kept(response)) == 2
    assert StagedDocument.objects.count() == 2


def test_a_bad_file_among_good_ones_is_named_and_the_good_ones_are_kept(
    client_for, coordinator, private_dir
):
    provider = ProviderFactory()
    response = client_for(coordinator).post(
        ENTRY,
        referral_form_data(provider, documents=[_upload(), _upload(b"GIF89a", "scan.gif")]),
    )
    page = response.content.decode()
    assert "“scan.gif” is not a PDF, PNG, JPEG or TIFF file" in page
    assert len(_kept(response)) == 1
    assert StagedDocument.objects.get().original_name == "fax 0412.pdf"


def test_a_document_name_is_shown_as_text(client_for, coordinator, private_dir):
    response = client_for(coordinator).post(
        ENTRY,
        referral_form_data(ProviderFactory(), reason="", documents=_upload(name="<img src=x>.pdf")),
    )
    page = response.content.decode()
    assert "&lt;img src=x&gt;.pdf" in page and "<img src=x>" not in page


# Showing a kept document beside the form again.


def _preview_url(response: Any) -> str:
    (url,) = re.findall(r'data-kept-preview="([^"]+)"', response.content.decode())
    return url


def _sent_back_with_a_fax(client: Client, provider: Any) -> tuple[str, str]:
    """Posts the entry form with a typo and a fax: the kept fax's reference and preview."""
    first = client.post(
        ENTRY, referral_form_data(provider, patient_dob="2999-01-01", documents=_upload())
    )
    (reference,) = _kept(first)
    return reference, _preview_url(first)


def test_a_kept_fax_can_be_fetched_again_by_its_coordinator_only(
    client_for, coordinator, private_dir
):
    client = client_for(coordinator)
    reference, url = _sent_back_with_a_fax(client, ProviderFactory())
    assert url == reverse("intake:staged_document", args=[reference])

    fetched = client.get(url)
    other = client_for(UserFactory(username="other-coordinator", role=Role.COORDINATOR)).get(url)
    anonymous = Client().get(url)
    forged = client.get(reverse("intake:staged_document", args=[reference[:-2] + "xx"]))

    assert fetched.status_code == 200
    assert b"".join(fetched.streaming_content) == PDF
    assert fetched["Content-Type"] == "application/pdf"
    # A download, never shown inline from this origin; no patient or file name in it.
    assert fetched["Content-Disposition"] == 'attachment; filename="kept-document.pdf"'
    assert other.status_code == forged.status_code == 404
    assert anonymous.status_code == 302 and "/login" in anonymous.url


def test_a_kept_fax_is_no_longer_served_once_the_referral_is_saved(
    client_for, coordinator, private_dir
):
    provider = ProviderFactory()
    client = client_for(coordinator)
    reference, url = _sent_back_with_a_fax(client, provider)

    client.post(ENTRY, referral_form_data(provider, **{"documents-kept": reference}))

    assert client.get(url).status_code == 404


# The referring office's form, through its link.


def test_an_office_form_sent_back_for_a_typo_keeps_its_documents(link_and_token, private_dir):
    link, token = link_and_token
    url = reverse("intake:public_form", args=[token])
    office = Client()
    first = office.post(
        url,
        office_form_data(
            link.organization, patient_dob="2999-01-01", documents=[_upload(name="MRI knee.pdf")]
        ),
    )
    page = first.content.decode()
    assert "cannot be in the future" in page
    assert "MRI knee.pdf" in page and "choose" not in page
    # The office has the file on its own device: nothing of ours serves it back.
    assert "data-kept-preview" not in page
    (reference,) = _kept(first)
    assert StagedDocument.objects.get().link == link

    second = office.post(url, office_form_data(link.organization, **{"documents-kept": reference}))
    assert second.status_code == 302
    attachment = Referral.objects.get().attachments.get()
    assert attachment.original_name == "MRI knee.pdf" and attachment.uploaded_by is None
    with attachment.file.open("rb") as stored:
        assert stored.read() == PDF
    assert not StagedDocument.objects.exists()
    assert len(stored_files(private_dir)) == 1


def test_a_document_kept_for_another_link_is_refused(link_and_token, coordinator, private_dir):
    link, token = link_and_token
    _other, other_token = intake_link_create(organization=link.organization, actor=coordinator)
    first = Client().post(
        reverse("intake:public_form", args=[other_token]),
        office_form_data(link.organization, reason="", documents=[_upload()]),
    )
    (reference,) = _kept(first)
    response = Client().post(
        reverse("intake:public_form", args=[token]),
        office_form_data(link.organization, **{"documents-kept": reference}),
    )
    _refused(response, "could not be found")
    assert StagedDocument.objects.count() == 1


def test_an_office_over_its_limit_keeps_nothing_more_and_is_asked_to_choose_again(
    link_and_token, private_dir, settings
):
    settings.INTAKE_LINK_SUBMISSIONS_PER_HOUR = 1
    settings.ATTACHMENT_MAX_FILES = 2
    link, token = link_and_token
    url = reverse("intake:public_form", args=[token])
    data = office_form_data(link.organization, reason="")
    Client().post(url, {**data, "documents": [_upload(), _upload(PNG, "p.png")]})
    response = Client().post(url, {**data, "documents": [_upload(name="third.pdf")]})
    page = response.content.decode()
    assert "Too many documents are already waiting to be sent." in page
    assert "choose “third.pdf” again" in page
    assert StagedDocument.objects.count() == 2
    assert len(stored_files(private_dir)) == 2
