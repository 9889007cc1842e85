"""Documents kept on the server for a form that came back: stored privately, bounded per
owner, attached like fresh uploads, and swept away when nobody sends the form."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import DatabaseError, transaction
from django.utils import timezone

from intake import tasks
from intake.models import ReferralAttachment, StagedDocument
from intake.services import attachments_save, documents_stage, staged_documents_delete_stale
from intake.tests.conftest import PDF, PNG, stored_files
from partners.factories import ProviderFactory
from referrals.factories import ReferralFactory
from referrals.services.workflow import referral_log

pytestmark = pytest.mark.django_db


def _stage(owner, content=PDF, name="Olsen Ruth fax.pdf", kind="application/pdf"):
    (staged,) = documents_stage(documents=[(SimpleUploadedFile(name, content), kind)], owner=owner)
    return staged


def test_a_staged_document_is_stored_privately_under_a_random_name(coordinator, private_dir):
    staged = _stage(coordinator)
    (stored,) = stored_files(private_dir)
    assert stored.read_bytes() == PDF
    # Never the patient's name on disk, and nowhere a web server serves files from.
    assert "Olsen" not in str(stored) and stored.suffix == ".pdf"
    assert settings.MEDIA_ROOT not in stored.parents
    assert staged.user == coordinator and staged.link is None
    assert (staged.original_name, staged.size) == ("Olsen Ruth fax.pdf", len(PDF))
    with pytest.raises(ValueError, match="no URL"):
        staged.file.url  # noqa: B018


def test_attaching_a_staged_document_moves_it_to_the_referral(
    coordinator, private_dir, django_capture_on_commit_callbacks
):
    staged = _stage(coordinator)
    referral = referral_log(referral=ReferralFactory.build(provider=ProviderFactory()), actor=None)
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        (attachment,) = attachments_save(
            referral=referral, documents=[], staged=[staged], actor=coordinator
        )
    assert attachment.original_name == "Olsen Ruth fax.pdf"
    assert attachment.content_type == "application/pdf"
    assert attachment.size == len(PDF)
    assert not StagedDocument.objects.exists()
    (stored,) = stored_files(private_dir)
    assert stored.read_bytes() == PDF
    assert stored.relative_to(private_dir).parts[0] == "referrals"


def test_a_failed_save_keeps_the_staged_document_and_leaves_no_copy(
    coordinator, private_dir, django_capture_on_commit_callbacks, monkeypatch
):
    staged = _stage(coordinator)
    referral = referral_log(referral=ReferralFactory.build(provider=ProviderFactory()), actor=None)
    saved = ReferralAttachment.save

    def lose_the_connection_on_the_second_row(attachment, *args, **kwargs):
        if ReferralAttachment.objects.exists():
            raise DatabaseError("connection lost")
        saved(attachment, *args, **kwargs)

    monkeypatch.setattr(ReferralAttachment, "save", lose_the_connection_on_the_second_row)
    fresh = SimpleUploadedFile("p.png", PNG)
    with (
        django_capture_on_commit_callbacks(execute=True),
        pytest.raises(DatabaseError),
        transaction.atomic(),
    ):
        attachments_save(
            referral=referral, documents=[(fresh, "image/png")], staged=[staged], actor=None
        )
    assert StagedDocument.objects.filter(pk=staged.pk).exists()
    (stored,) = stored_files(private_dir)
    assert stored.relative_to(private_dir).parts[0] == "staged"


def test_a_staged_document_goes_with_one_referral_only(coordinator, private_dir):
    staged = _stage(coordinator)
    first = referral_log(referral=ReferralFactory.build(provider=ProviderFactory()), actor=None)
    second = referral_log(referral=ReferralFactory.build(provider=ProviderFactory()), actor=None)
    with transaction.atomic():
        attachments_save(referral=first, documents=[], staged=[staged], actor=None)
    with pytest.raises(ValidationError, match="no longer there"), transaction.atomic():
        attachments_save(referral=second, documents=[], staged=[staged], actor=None)
    assert second.attachments.count() == 0


def test_an_office_link_cannot_keep_more_than_an_hours_worth_of_documents(
    link_and_token, private_dir, settings
):
    settings.INTAKE_LINK_SUBMISSIONS_PER_HOUR = 2
    settings.ATTACHMENT_MAX_FILES = 2
    link, _token = link_and_token
    for _ in range(4):
        _stage(link)
    with pytest.raises(ValidationError, match="Too many documents"):
        _stage(link)
    assert len(stored_files(private_dir)) == 4


def test_a_revoked_link_keeps_nothing(link_and_token, coordinator, private_dir):
    link, _token = link_and_token
    link.revoke(by=coordinator)
    with pytest.raises(ValidationError, match="withdrawn"):
        _stage(link)
    assert stored_files(private_dir) == []


def test_the_sweep_deletes_documents_older_than_a_day_and_keeps_fresh_ones(
    coordinator, link_and_token, private_dir, django_capture_on_commit_callbacks
):
    link, _token = link_and_token
    old_one, old_two, fresh = _stage(coordinator), _stage(link), _stage(coordinator)
    StagedDocument.objects.filter(pk__in=[old_one.pk, old_two.pk]).update(
        created_at=timezone.now() - timedelta(days=1, minutes=1)
    )
    with django_capture_on_commit_callbacks(execute=True):
        tasks.delete_stale_staged_documents()
    assert list(StagedDocument.objects.all()) == [fresh]
    (stored,) = stored_files(private_dir)
    assert stored == private_dir / fresh.file.name


def test_a_document_is_kept_until_it_is_a_day_old(
    coordinator, private_dir, django_capture_on_commit_callbacks
):
    staged = _stage(coordinator)
    assert staged_documents_delete_stale(now=staged.created_at + StagedDocument.LIFETIME) == 0
    later = staged.created_at + StagedDocument.LIFETIME + timedelta(microseconds=1)
    with django_capture_on_commit_callbacks(execute=True):
        assert staged_documents_delete_stale(now=later) == 1
    assert stored_files(private_dir) == []


def test_the_sweep_deletes_a_file_left_without_its_row(
    coordinator, link_and_token, private_dir, django_capture_on_commit_callbacks
):
    link, _token = link_and_token
    gone, kept = _stage(link), _stage(coordinator)
    link.delete()  # its staged rows go with it; their files stay behind
    assert StagedDocument.objects.filter(pk=gone.pk).count() == 0
    assert len(stored_files(private_dir)) == 2

    # Younger than a day: left alone, it may belong to a form being sent right now.
    with django_capture_on_commit_callbacks(execute=True):
        staged_documents_delete_stale()
    assert len(stored_files(private_dir)) == 2

    with django_capture_on_commit_callbacks(execute=True):
        staged_documents_delete_stale(now=timezone.now() + StagedDocument.LIFETIME / 2)
    assert len(stored_files(private_dir)) == 2

    # A day on: the orphan goes; the row's own file goes with its row.
    later = timezone.now() + StagedDocument.LIFETIME + timedelta(minutes=1)
    StagedDocument.objects.filter(pk=kept.pk).update(created_at=timezone.now())
    with django_capture_on_commit_callbacks(execute=True):
        staged_documents_delete_stale(now=later)
    assert stored_files(private_dir) == []


def test_the_sweep_keeps_a_row_s_file_whatever_its_age(
    coordinator, private_dir, django_capture_on_commit_callbacks
):
    staged = _stage(coordinator)
    # A row whose clock says fresh (the file's own time is older, say after a restore).
    StagedDocument.objects.filter(pk=staged.pk).update(
        created_at=timezone.now() + StagedDocument.LIFETIME
    )
    with django_capture_on_commit_callbacks(execute=True):
        staged_documents_delete_stale(now=timezone.now() + StagedDocument.LIFETIME * 1.5)
    assert stored_files(private_dir) == [private_dir / staged.file.name]


def test_beat_runs_the_sweep() -> None:
    names = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert tasks.delete_stale_staged_documents.name in names
