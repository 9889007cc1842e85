import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from intake.models import Hl7Import, IntakeLink, IntakeSubmission, ReferralAttachment
from intake.tests.conftest import PDF, office_form_data

pytestmark = pytest.mark.django_db


def test_administrators_can_look_at_intake_records_in_the_admin(
    client_for, administrator, link_and_token
):
    link, token = link_and_token
    data = office_form_data(link.organization, documents=[SimpleUploadedFile("f.pdf", PDF)])
    Client().post(reverse("intake:public_form", args=[token]), data)
    client = client_for(administrator)
    for model, obj in [
        (IntakeLink, link),
        (IntakeSubmission, IntakeSubmission.objects.get()),
        (ReferralAttachment, ReferralAttachment.objects.get()),
        (Hl7Import, None),
    ]:
        opts = model._meta
        changelist = client.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist"))
        assert changelist.status_code == 200
        if obj is not None:
            url = reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk])
            page = client.get(url)
            assert page.status_code == 200
            assert token not in page.content.decode()


def test_a_document_deleted_in_the_admin_goes_from_the_storage_and_into_the_audit_trail(
    client_for, administrator, link_and_token, private_dir, django_capture_on_commit_callbacks
):
    from audit.models import PatientDataAccess
    from intake.tests.conftest import stored_files

    link, token = link_and_token
    for _ in range(2):
        data = office_form_data(link.organization, documents=[SimpleUploadedFile("f.pdf", PDF)])
        Client().post(reverse("intake:public_form", args=[token]), data)
    first, second = ReferralAttachment.objects.order_by("pk")
    client = client_for(administrator)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            reverse("admin:intake_referralattachment_delete", args=[first.pk]), {"post": "yes"}
        )
    assert list(ReferralAttachment.objects.all()) == [second]
    assert len(stored_files(private_dir)) == 1
    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            reverse("admin:intake_referralattachment_changelist"),
            {"action": "delete_selected", "_selected_action": [second.pk], "post": "yes"},
        )
    assert not ReferralAttachment.objects.exists()
    assert stored_files(private_dir) == []
    removed = PatientDataAccess.objects.filter(
        action=PatientDataAccess.Action.CHANGE, user=administrator
    )
    assert sorted(removed.values_list("referral_id", "fields")) == sorted(
        [(first.referral_id, ["attachments"]), (second.referral_id, ["attachments"])]
    )
