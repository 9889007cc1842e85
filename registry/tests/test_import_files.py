"""Uploads are deleted once no import needs them: a monthly NPPES file is gigabytes."""

from __future__ import annotations

import os
from datetime import timedelta

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from core.factories import UserFactory
from core.roles import Role
from registry.models import ImportJob
from registry.services import import_files_clean, import_job_run
from registry.tasks import import_nppes_file, sweep_import_jobs
from registry.tests.conftest import SAMPLE

pytestmark = pytest.mark.django_db


def _uploaded(monkeypatch, content: bytes, name: str = "npidata.csv") -> ImportJob:
    monkeypatch.setattr(import_nppes_file, "delay", lambda pk: None)
    client = Client()
    client.force_login(UserFactory.create(role=Role.ADMINISTRATOR))
    client.post(reverse("registry:import"), {"file": SimpleUploadedFile(name, content)})
    return ImportJob.objects.get()


@pytest.mark.parametrize(
    "content, status",
    [(SAMPLE.read_bytes(), ImportJob.Status.DONE), (b"Name,Phone\nA,1\n", "failed")],
)
def test_a_finished_import_deletes_its_upload(monkeypatch, content, status) -> None:
    job = _uploaded(monkeypatch, content)
    stored = str(job.file.name)
    assert default_storage.exists(stored)

    import_job_run(job_id=job.pk)

    job.refresh_from_db()
    assert job.status == status
    assert not default_storage.exists(stored)
    assert job.file.name == "" and job.original_name == "npidata.csv"
    # Its page still says what it was and how it went.
    client = Client()
    client.force_login(UserFactory.create(role=Role.ADMINISTRATOR, username="other"))
    assert client.get(reverse("registry:import_detail", args=[job.pk])).status_code == 200


def test_the_sweep_deletes_files_kept_for_a_form_never_sent_again_and_nothing_in_use(
    monkeypatch,
) -> None:
    queued = _uploaded(monkeypatch, SAMPLE.read_bytes())
    forgotten = default_storage.save("registry/imports/shared-2014-days30.txt", ContentFile(b"x"))
    recent = default_storage.save("registry/imports/shared-2015-days30.txt", ContentFile(b"x"))
    two_days_ago = (timezone.now() - timedelta(days=2)).timestamp()
    waiting = str(queued.file.name)
    for name in (forgotten, waiting):
        os.utime(default_storage.path(name), (two_days_ago, two_days_ago))

    sweep_import_jobs()

    assert not default_storage.exists(forgotten)
    # Kept less than a day: its form may still come back with its reference.
    assert default_storage.exists(recent)
    # Old, but its job has not run yet (a queue that was down for a while).
    assert default_storage.exists(waiting)
    assert import_files_clean() == 0


def test_an_error_in_the_app_fails_the_import_saying_so_not_left_running(monkeypatch) -> None:
    """A fault of the app (a bug, not the file) left the job "running" until the sweep
    re-ran it twice more and failed it as "worker lost": it fails at once, saying so."""
    from registry import services

    job = _uploaded(monkeypatch, SAMPLE.read_bytes())

    def broken(*args, **kwargs):
        raise KeyError("a bug")

    monkeypatch.setattr(services, "nppes_import", broken)
    import_job_run(job_id=job.pk)

    job.refresh_from_db()
    assert job.status == ImportJob.Status.FAILED
    assert "error in the app" in job.error and "KeyError" in job.error
    assert job.finished_at is not None
