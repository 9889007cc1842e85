from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from core.factories import UserFactory
from core.roles import Role
from registry.factories import PracticeLocationFactory
from registry.importing.nppes_load import NppesFileError
from registry.models import ImportJob, PracticeLocation, RegistryProvider
from registry.services import import_job_run
from registry.tasks import import_nppes_file
from registry.tests.conftest import SAMPLE, damaged_bundle

pytestmark = pytest.mark.django_db

IMPORT = reverse("registry:import")


def logged_in(role: str | None, username: str = "someone") -> Client:
    client = Client()
    client.force_login(UserFactory.create(username=username, role=role))
    return client


# --- Our locations --------------------------------------------------------------------------


def test_a_manager_adds_a_location_and_its_zip_gives_the_centre() -> None:
    client = logged_in(Role.MANAGER)

    response = client.post(
        reverse("registry:location_create"),
        {"name": "Omaha main clinic", "address_line1": "1 Main St", "zip_code": "68102"},
    )

    assert response.status_code == 302
    location = PracticeLocation.objects.get()
    assert location.latitude == pytest.approx(41.26, abs=0.05)
    assert location.longitude == pytest.approx(-95.94, abs=0.05)


def test_an_unknown_zip_is_refused_with_a_message() -> None:
    client = logged_in(Role.MANAGER)

    response = client.post(
        reverse("registry:location_create"), {"name": "Nowhere", "zip_code": "00000"}
    )

    assert response.status_code == 200
    assert "not a US ZIP code" in response.content.decode()
    assert not PracticeLocation.objects.exists()


def test_a_manager_edits_and_deletes_a_location() -> None:
    location = PracticeLocationFactory.create()
    client = logged_in(Role.MANAGER)

    client.post(
        reverse("registry:location_update", args=[location.pk]),
        {"name": "Renamed", "zip_code": "68102"},
    )
    location.refresh_from_db()
    assert location.name == "Renamed"
    assert location.latitude == pytest.approx(41.26, abs=0.05)

    client.post(reverse("registry:location_delete", args=[location.pk]))
    assert not PracticeLocation.objects.exists()


def test_a_liaison_sees_our_locations_but_cannot_change_them() -> None:
    location = PracticeLocationFactory.create(name="Downtown")
    client = logged_in(Role.LIAISON)

    listing = client.get(reverse("registry:location_list"))
    edit = client.get(reverse("registry:location_update", args=[location.pk]))
    create = client.post(reverse("registry:location_create"), {"name": "X", "zip_code": "68102"})

    assert listing.status_code == 200
    assert b"Downtown" in listing.content
    assert edit.status_code == 403
    assert create.status_code == 403


@pytest.mark.parametrize("name", ["location_list", "location_create"])
def test_a_signed_out_visitor_is_sent_to_sign_in_not_refused(name: str) -> None:
    # Someone signed out for idle time who follows a link here: sign in, then the page.
    response = Client().get(reverse(f"registry:{name}"))

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_a_missing_location_is_a_404() -> None:
    response = logged_in(Role.MANAGER).get(reverse("registry:location_update", args=[999]))

    assert response.status_code == 404


# --- Uploading an NPPES file ----------------------------------------------------------------


@pytest.mark.parametrize("role", [Role.MANAGER, Role.LIAISON, Role.COORDINATOR, None])
def test_only_an_administrator_may_upload(role: str | None) -> None:
    client = logged_in(role)

    page = client.get(IMPORT)
    upload = client.post(IMPORT, {"file": SimpleUploadedFile("x.csv", b"NPI\n")})

    assert page.status_code == 403
    assert upload.status_code == 403
    assert not ImportJob.objects.exists()


def test_an_upload_queues_a_job_after_commit_and_the_worker_loads_it(
    monkeypatch, django_capture_on_commit_callbacks
) -> None:
    queued: list[int] = []
    monkeypatch.setattr(
        import_nppes_file, "apply_async", lambda args, **options: queued.extend(args)
    )
    client = logged_in(Role.ADMINISTRATOR)
    upload = SimpleUploadedFile("npidata_pfile_sample.csv", SAMPLE.read_bytes())

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = client.post(IMPORT, {"file": upload})

    job = ImportJob.objects.get()
    assert len(callbacks) == 1
    assert queued == [job.pk]
    assert response["Location"] == reverse("registry:import_detail", args=[job.pk])
    assert job.status == ImportJob.Status.QUEUED

    polling = client.get(response["Location"], headers={"HX-Request": "true"})
    assert b'hx-trigger="every 1s"' in polling.content
    assert b"X-Progress-Poll" in polling.content  # no activity for idle logoff

    import_nppes_file(job.pk)

    job.refresh_from_db()
    assert job.status == ImportJob.Status.DONE
    assert job.progress == 100
    assert (job.imported, job.deactivated, job.rejected) == (921, 79, 0)
    assert RegistryProvider.objects.count() == 1000
    finished = client.get(response["Location"], headers={"HX-Request": "true"})
    assert b"every 1s" not in finished.content
    assert b"imported 921" in finished.content


def test_an_upload_while_the_broker_is_down_is_saved_for_the_sweep(
    monkeypatch, django_capture_on_commit_callbacks
) -> None:
    from kombu.exceptions import OperationalError

    def broker_down(*args: object, **kwargs: object) -> None:
        raise OperationalError("Error 111 connecting to redis:6379. Connection refused.")

    monkeypatch.setattr(import_nppes_file, "apply_async", broker_down)
    client = logged_in(Role.ADMINISTRATOR)
    upload = SimpleUploadedFile("npidata_pfile_sample.csv", SAMPLE.read_bytes())

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(IMPORT, {"file": upload})

    # The upload is committed: the page answers, and the sweep hands the job to a worker.
    job = ImportJob.objects.get()
    assert response["Location"] == reverse("registry:import_detail", args=[job.pk])
    assert job.status == ImportJob.Status.QUEUED


def test_a_job_runs_once_even_if_its_task_is_delivered_twice(monkeypatch) -> None:
    monkeypatch.setattr(import_nppes_file, "delay", lambda pk: None)
    client = logged_in(Role.ADMINISTRATOR)
    client.post(IMPORT, {"file": SimpleUploadedFile("npidata.csv", SAMPLE.read_bytes())})
    job = ImportJob.objects.get()

    import_job_run(job_id=job.pk)
    again = import_job_run(job_id=job.pk)

    assert again is not None
    assert again.status == ImportJob.Status.DONE
    assert again.imported == 921


@pytest.mark.django_db(transaction=True)
def test_a_running_import_keeps_its_heartbeat_through_steps_that_report_no_progress(
    monkeypatch,
) -> None:
    """The sweep tells a live import from a lost one by its heartbeat: a long step with no
    progress to report (rebuilding indexes, VACUUM) must not look like a dead worker."""
    import time

    from registry import services

    monkeypatch.setattr(import_nppes_file, "delay", lambda pk: None)
    client = logged_in(Role.ADMINISTRATOR)
    client.post(IMPORT, {"file": SimpleUploadedFile("npidata.csv", SAMPLE.read_bytes())})
    job = ImportJob.objects.get()
    beats = []

    def long_silent_step(*, path, progress):
        started = ImportJob.objects.get(pk=job.pk).heartbeat_at
        time.sleep(0.6)  # no progress reported meanwhile
        beats.append((started, ImportJob.objects.get(pk=job.pk).heartbeat_at))
        raise NppesFileError("stop here")

    monkeypatch.setattr(services, "nppes_import", long_silent_step)
    import_job_run(job_id=job.pk, heartbeat_seconds=0.1)

    [(started, later)] = beats
    assert later > started


def test_a_file_that_is_not_nppes_fails_the_job_with_the_reason(monkeypatch) -> None:
    monkeypatch.setattr(import_nppes_file, "delay", lambda pk: None)
    client = logged_in(Role.ADMINISTRATOR)
    client.post(IMPORT, {"file": SimpleUploadedFile("contacts.csv", b"Name,Phone\nA,1\n")})
    job = ImportJob.objects.get()

    import_job_run(job_id=job.pk)

    job.refresh_from_db()
    assert job.status == ImportJob.Status.FAILED
    assert "not an NPPES provider file" in job.error
    page = client.get(reverse("registry:import_detail", args=[job.pk]))
    assert b"not an NPPES provider file" in page.content


def test_a_damaged_zip_fails_the_job_with_the_reason(monkeypatch) -> None:
    monkeypatch.setattr(import_nppes_file, "delay", lambda pk: None)
    client = logged_in(Role.ADMINISTRATOR)
    upload = SimpleUploadedFile("NPPES_Data_Dissemination_February_2025.zip", damaged_bundle())
    client.post(IMPORT, {"file": upload})
    job = ImportJob.objects.get()

    import_job_run(job_id=job.pk)

    # Not left "running" for the sweep to run twice more and blame a lost worker.
    job.refresh_from_db()
    assert job.status == ImportJob.Status.FAILED
    assert "damaged" in job.error
    page = client.get(reverse("registry:import_detail", args=[job.pk]))
    assert b"damaged" in page.content


def test_an_upload_that_is_not_csv_or_zip_is_refused_on_the_form() -> None:
    client = logged_in(Role.ADMINISTRATOR)

    response = client.post(IMPORT, {"file": SimpleUploadedFile("photo.jpg", b"\xff\xd8")})
    empty = client.post(IMPORT, {})

    assert response.status_code == 200
    assert b"NPPES .zip" in response.content
    assert empty.status_code == 200
    assert not ImportJob.objects.exists()


def test_the_back_office_lists_registry_data_for_an_administrator() -> None:
    PracticeLocationFactory.create()
    client = Client()
    client.force_login(UserFactory.create(username="root", is_superuser=True, is_staff=True))

    for name in ("taxonomy", "registryprovider", "practicelocation", "importjob"):
        assert client.get(reverse(f"admin:registry_{name}_changelist")).status_code == 200
    assert client.get(reverse("admin:registry_practicelocation_add")).status_code == 200


def test_the_sweep_reruns_an_import_whose_worker_died_and_gives_up_after_three_tries(
    monkeypatch,
) -> None:
    from datetime import timedelta

    from django.utils import timezone

    from registry.services import IMPORT_MAX_ATTEMPTS, import_jobs_to_redrive
    from registry.tasks import sweep_import_jobs

    monkeypatch.setattr(import_nppes_file, "delay", lambda pk: None)
    client = logged_in(Role.ADMINISTRATOR)
    client.post(IMPORT, {"file": SimpleUploadedFile("npidata.csv", SAMPLE.read_bytes())})
    job = ImportJob.objects.get()
    now = timezone.now()
    # A worker claimed it and died half-way: progress stopped 20 minutes ago.
    ImportJob.objects.filter(pk=job.pk).update(
        status=ImportJob.Status.RUNNING, progress=40, attempts=1,
        heartbeat_at=now - timedelta(minutes=20),
    )  # fmt: skip
    fresh = ImportJob.objects.create(
        original_name="busy.csv", status=ImportJob.Status.RUNNING, heartbeat_at=now, attempts=1
    )

    assert import_jobs_to_redrive(now=now + timedelta(minutes=6)) == [job.pk]
    job.refresh_from_db()
    assert (job.status, job.progress) == (ImportJob.Status.QUEUED, 0)
    fresh.refresh_from_db()
    assert fresh.status == ImportJob.Status.RUNNING  # still beating: left alone

    # Re-run by the worker it is handed to: it completes, once.
    redriven: list[int] = []
    monkeypatch.setattr(import_nppes_file, "delay", redriven.append)
    monkeypatch.setattr("registry.services.timezone.now", lambda: now + timedelta(minutes=6))
    sweep_import_jobs()
    assert redriven == [job.pk]
    import_nppes_file(job.pk)
    job.refresh_from_db()
    assert (job.status, job.imported, job.attempts) == (ImportJob.Status.DONE, 921, 2)

    # A job that keeps killing its worker is failed with the reason, not retried forever.
    ImportJob.objects.filter(pk=fresh.pk).update(
        attempts=IMPORT_MAX_ATTEMPTS, heartbeat_at=now - timedelta(hours=1)
    )
    import_jobs_to_redrive(now=now)
    fresh.refresh_from_db()
    assert fresh.status == ImportJob.Status.FAILED
    assert "upload the file again" in fresh.error
    page = client.get(reverse("registry:import_detail", args=[fresh.pk]))
    assert "upload the file again" in page.content.decode()


def test_the_finder_says_when_the_registry_has_not_been_imported(client_for, manager):
    page = client_for(manager).get(reverse("registry:finder"), {"name": "smith"}).content.decode()
    assert "the NPPES file has not been imported yet" in page
    assert "Try a wider distance" not in page


def test_a_specialty_typed_but_not_picked_is_refused_not_ignored(client_for, manager):
    page = (
        client_for(manager)
        .get(
            reverse("registry:finder"),
            {"specialty_search": "fam", "zip_code": "68847", "miles": 25},
        )
        .content.decode()
    )
    assert "Pick a specialty from the list that opens as you type “fam”." in page
    assert 'value="fam"' in page


def test_a_job_deleted_before_its_task_ran_is_not_an_error_in_the_worker(monkeypatch) -> None:
    monkeypatch.setattr(import_nppes_file, "delay", lambda pk: None)
    client = logged_in(Role.ADMINISTRATOR)
    client.post(IMPORT, {"file": SimpleUploadedFile("npidata.csv", SAMPLE.read_bytes())})
    job = ImportJob.objects.get()
    job_id = job.pk
    job.delete()  # an administrator removed the upload from the admin

    assert import_job_run(job_id=job_id) is None
    import_nppes_file(job_id)

    assert not ImportJob.objects.exists()
    assert not RegistryProvider.objects.exists()
