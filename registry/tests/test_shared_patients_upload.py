"""Uploading a CMS shared patient patterns file in the browser: the same ImportJob, worker,
progress page and sweep as an NPPES upload."""

from __future__ import annotations

import re
import threading
from datetime import timedelta
from html import unescape

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import IntegrityError, connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from core.factories import UserFactory
from core.roles import Role
from registry import services
from registry.factories import make_npi
from registry.importing import shared_patients
from registry.models import ImportJob, SharedPatientDataset, SharedPatientPair
from registry.services import import_jobs_to_redrive
from registry.tasks import import_nppes_file, sweep_import_jobs
from registry.tests.conftest import SHARED_DATA

pytestmark = pytest.mark.django_db

UPLOAD = reverse("registry:import_shared_patients")
PATTERNS = SHARED_DATA / "shared_patient_patterns"
# Five real rows of the 2014 file, 180-day window, header-less and named as CMS ships them.
HEAD5 = PATTERNS / "physician-shared-patient-patterns-2014-days180_head5.txt"
# A derived, 11-column merge of two years: not a file CMS publishes.
COMBINED = PATTERNS / "gpinho_testing-combine-referral_2014_2015.csv"


def logged_in(role: str | None, username: str = "someone") -> Client:
    client = Client()
    client.force_login(UserFactory.create(username=username, role=role))
    return client


def upload(client: Client, path=HEAD5, name: str | None = None, **fields: str):
    file = SimpleUploadedFile(name or path.name, path.read_bytes())
    return client.post(UPLOAD, {"file": file, **fields})


def text(response) -> str:
    """The page as a reader sees it (quotes unescaped)."""
    return unescape(response.content.decode())


@pytest.fixture
def queued(monkeypatch) -> list[int]:
    """Job ids handed to the broker; the tests run the task themselves."""
    sent: list[int] = []
    monkeypatch.setattr(import_nppes_file, "apply_async", lambda args, **options: sent.extend(args))
    monkeypatch.setattr(import_nppes_file, "delay", sent.append)
    return sent


def test_the_real_file_uploaded_is_loaded_by_the_worker_with_its_progress_and_result(
    queued, django_capture_on_commit_callbacks
) -> None:
    client = logged_in(Role.ADMINISTRATOR)

    with django_capture_on_commit_callbacks(execute=True):
        response = upload(client)

    job = ImportJob.objects.get()
    assert queued == [job.pk]
    assert response["Location"] == reverse("registry:import_detail", args=[job.pk])
    # Year and window read from CMS's file name.
    assert (job.kind, job.year, job.window_days) == (ImportJob.Kind.SHARED_PATIENTS, 2014, 180)
    assert job.status == ImportJob.Status.QUEUED

    polling = text(client.get(response["Location"], headers={"HX-Request": "true"}))
    assert 'hx-trigger="every 1s"' in polling
    assert "Queued" in polling
    ImportJob.objects.filter(pk=job.pk).update(status=ImportJob.Status.RUNNING, progress=40)
    running = text(client.get(response["Location"], headers={"HX-Request": "true"}))
    assert 'value="40"' in running
    assert "40% of the file read" in running
    ImportJob.objects.filter(pk=job.pk).update(status=ImportJob.Status.QUEUED, progress=0)

    import_nppes_file(job.pk)

    job.refresh_from_db()
    assert (job.status, job.progress, job.imported, job.rejected) == (
        ImportJob.Status.DONE,
        100,
        5,
        0,
    )
    dataset = SharedPatientDataset.objects.get()
    assert (dataset.year, dataset.window_days, dataset.pair_count) == (2014, 180, 5)
    assert dataset.file_name == HEAD5.name  # the upload's name, not the stored file's
    assert SharedPatientPair.objects.filter(
        dataset=dataset, npi_from="1063590222", npi_to="1760575641", patients=27
    ).exists()
    finished = text(client.get(response["Location"]))
    assert "every 1s" not in finished
    assert "imported 5 pairs, rejected 0 lines" in finished
    assert "loaded as 2014's 180-day window" in finished


@pytest.mark.django_db(transaction=True)
def test_progress_is_seen_by_others_while_the_file_loads_in_its_transaction(
    queued, monkeypatch, tmp_path
) -> None:
    """The loader holds one transaction for the whole file: the progress written from it
    would show the browser nothing until the end."""
    postgres = connection.vendor == "postgresql"
    lines = [f"{make_npi(n)},{make_npi(n + 1)},20,11,0" for n in range(400)]
    big = tmp_path / "physician-shared-patient-patterns-2015-days30.txt"
    big.write_text("\n".join(lines) + "\n")
    client = logged_in(Role.ADMINISTRATOR)
    upload(client, big)
    job = ImportJob.objects.get()
    monkeypatch.setattr(shared_patients, "PROGRESS_EVERY", 100)
    seen: list[tuple[int, int]] = []
    real_import = services.shared_patients_import

    def watched(**kwargs):
        report = kwargs["progress"]

        def progress(done: int, total: int) -> None:
            report(done, total)
            reported = done * 100 // total
            # Read by another connection, as the job page is, while the loader's transaction
            # is still open: the heartbeat's thread writes it a moment later.
            # (On SQLite it waits for nothing: see the end of the test.)
            deadline = timezone.now() + timedelta(seconds=5 if postgres else 0.5)
            read: list[int] = []
            while timezone.now() < deadline and read[-1:] != [reported]:
                reader = threading.Thread(target=lambda: read.append(_progress_of(job.pk)))
                reader.start()
                reader.join()
            seen.append((reported, read[-1]))

        return real_import(**{**kwargs, "progress": progress})

    monkeypatch.setattr(services, "shared_patients_import", watched)
    import_nppes_file(job.pk)

    # Every 100 of the 400 lines, the last of them inside the transaction; then the end.
    if postgres:
        assert seen == [(25, 25), (50, 50), (75, 75), (100, 100), (100, 100)]
    else:
        # SQLite has one writer: the heartbeat's progress waits for the load's transaction,
        # and the page reads the job as it was until the load ends (docs/registry.md).
        assert seen == [(25, 0), (50, 0), (75, 0), (100, 0), (100, 100)]
    job.refresh_from_db()
    assert (job.status, job.imported) == (ImportJob.Status.DONE, 400)


def _progress_of(pk: int) -> int:
    try:
        return ImportJob.objects.values_list("progress", flat=True).get(pk=pk)
    finally:
        connection.close()


def test_a_file_whose_name_does_not_say_its_year_and_window_is_refused_with_the_form_kept(
    queued,
) -> None:
    client = logged_in(Role.ADMINISTRATOR)

    response = upload(client, name="patterns.txt", year="2014")

    page = text(response)
    assert response.status_code == 200
    assert "The file's name does not say its window: pick it." in page
    assert 'value="2014"' in page  # what was typed stays
    neither = text(upload(client, name="patterns.txt"))
    assert "does not say its year: enter it." in neither
    assert not ImportJob.objects.exists()
    assert queued == []


def test_the_file_refused_for_its_year_and_window_is_kept_for_the_next_post(
    queued, django_capture_on_commit_callbacks
) -> None:
    client = logged_in(Role.ADMINISTRATOR)
    refused = upload(client, name="patterns.txt")
    kept = re.search(r'name="kept" value="([^"]+)"', text(refused))
    assert kept is not None
    assert "“patterns.txt” is kept" in text(refused)

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(UPLOAD, {"kept": kept[1], "year": "2014", "window_days": "180"})

    job = ImportJob.objects.get()
    assert response["Location"] == reverse("registry:import_detail", args=[job.pk])
    assert (job.original_name, job.year, job.window_days) == ("patterns.txt", 2014, 180)
    assert queued == [job.pk]
    import_nppes_file(job.pk)
    job.refresh_from_db()
    assert (job.status, job.imported) == (ImportJob.Status.DONE, 5)
    assert SharedPatientDataset.objects.get().file_name == "patterns.txt"


def test_a_kept_file_with_a_long_name_is_queued_like_any_other(
    queued, django_capture_on_commit_callbacks
) -> None:
    client = logged_in(Role.ADMINISTRATOR)
    # A name as a download folder or a colleague may give it, longer than the stored path.
    name = (
        "Physician Shared Patient Patterns export from the CMS data portal, downloaded for "
        "the Riverside outreach review.txt"
    )
    refused = upload(client, name=name)
    kept = re.search(r'name="kept" value="([^"]+)"', text(refused))
    assert kept is not None

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(UPLOAD, {"kept": kept[1], "year": "2014", "window_days": "180"})

    job = ImportJob.objects.get()
    assert response["Location"] == reverse("registry:import_detail", args=[job.pk])
    assert job.original_name == name
    assert queued == [job.pk]
    import_nppes_file(job.pk)
    job.refresh_from_db()
    assert (job.status, job.imported) == (ImportJob.Status.DONE, 5)


def test_a_kept_file_is_only_its_uploaders_and_a_forged_one_is_refused(queued) -> None:
    refused = upload(logged_in(Role.ADMINISTRATOR), name="patterns.txt")
    kept = re.search(r'name="kept" value="([^"]+)"', text(refused))
    assert kept is not None
    colleague = logged_in(Role.ADMINISTRATOR, "colleague")

    for reference in (kept[1], kept[1][:-2] + "xx"):
        response = colleague.post(UPLOAD, {"kept": reference, "year": "2014", "window_days": "30"})
        assert "The file kept from your last attempt is gone: choose it again." in text(response)
    nothing = colleague.post(UPLOAD, {"year": "2014", "window_days": "30"})
    assert "Choose the file to upload." in text(nothing)
    assert not ImportJob.objects.exists()


def test_a_window_cms_does_not_publish_is_refused_on_the_form(queued) -> None:
    client = logged_in(Role.ADMINISTRATOR)

    typed = upload(client, name="patterns.txt", year="2014", window_days="45")
    named = upload(client, name="physician-shared-patient-patterns-2014-days45.txt")

    assert "Select a valid choice" in text(typed)
    assert (
        "The file's name says a 45-day window, and CMS publishes windows of 30, 60, 90, 180 days"
        in text(named)
    )
    assert not ImportJob.objects.exists()


def test_the_year_and_window_given_on_the_form_win_over_the_file_name(queued) -> None:
    client = logged_in(Role.ADMINISTRATOR)

    upload(client, year="2015", window_days="30")

    job = ImportJob.objects.get()
    assert (job.year, job.window_days) == (2015, 30)


def _zipped(*members: tuple[str, bytes]) -> bytes:
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in members:
            archive.writestr(name, content)
    return buffer.getvalue()


def test_cmss_zip_download_is_loaded_as_it_comes(queued) -> None:
    """CMS ships each file zipped with a header file beside it: a national file is far
    smaller to upload that way."""
    client = logged_in(Role.ADMINISTRATOR)
    zipped = _zipped(
        ("physician-shared-patient-patterns-2014-days180-HEADER.txt", b"Initial NPI,..."),
        ("__MACOSX/._physician-shared-patient-patterns-2014-days180.txt", b"\0\0"),
        ("physician-shared-patient-patterns-2014-days180.txt", HEAD5.read_bytes()),
    )
    name = "physician-shared-patient-patterns-2014-days180.zip"
    response = client.post(UPLOAD, {"file": SimpleUploadedFile(name, zipped)})
    job = ImportJob.objects.get()
    assert response["Location"] == reverse("registry:import_detail", args=[job.pk])
    assert (job.year, job.window_days) == (2014, 180)

    import_nppes_file(job.pk)

    job.refresh_from_db()
    assert (job.status, job.imported, job.rejected) == (ImportJob.Status.DONE, 5, 0)
    assert SharedPatientDataset.objects.get().file_name == name


def test_a_zip_not_holding_one_data_file_fails_with_the_reason(queued) -> None:
    client = logged_in(Role.ADMINISTRATOR)
    name = "physician-shared-patient-patterns-2014-days30.zip"
    two = _zipped(("a-2014-days30.txt", HEAD5.read_bytes()), ("b.csv", HEAD5.read_bytes()))
    client.post(UPLOAD, {"file": SimpleUploadedFile(name, two)})
    import_nppes_file(ImportJob.objects.get().pk)
    failed = ImportJob.objects.get()
    assert failed.status == ImportJob.Status.FAILED
    assert "The zip holds 2 data files (a-2014-days30.txt, b.csv)" in failed.error
    assert not SharedPatientPair.objects.exists()


def test_a_damaged_zip_or_another_kind_of_file_is_refused_on_the_form(queued) -> None:
    client = logged_in(Role.ADMINISTRATOR)

    damaged = upload(client, name="physician-shared-patient-patterns-2014-days180.zip")
    photo = upload(client, name="photo.jpg")

    assert "That .zip is not a zip archive" in text(damaged)
    assert "CMS's .zip, or the .txt or .csv" in text(photo)
    assert not ImportJob.objects.exists()


def test_the_11_column_csv_fails_with_its_reason_and_leaves_what_was_loaded(queued) -> None:
    client = logged_in(Role.ADMINISTRATOR)
    upload(client)
    import_nppes_file(ImportJob.objects.get().pk)

    upload(client, COMBINED, year="2014", window_days="180")
    job = ImportJob.objects.latest("pk")
    import_nppes_file(job.pk)

    job.refresh_from_db()
    assert job.status == ImportJob.Status.FAILED
    reason = "This is not a CMS shared patient patterns file: it has 11 columns where one has 5"
    assert reason in job.error
    page = text(client.get(reverse("registry:import_detail", args=[job.pk])))
    assert reason in page
    assert "Nothing was loaded: the pairs loaded before for 2014's 180-day window" in page
    # The pairs loaded before for that year and window are all still there.
    dataset = SharedPatientDataset.objects.get()
    assert (dataset.file_name, dataset.pair_count) == (HEAD5.name, 5)
    assert SharedPatientPair.objects.count() == 5


def test_rejected_lines_are_listed_by_number_on_the_job_page(queued, monkeypatch, tmp_path) -> None:
    monkeypatch.setattr(shared_patients, "REJECTIONS_SHOWN", 2)
    sheet = tmp_path / "physician-shared-patient-patterns-2015-days30.txt"
    rows = HEAD5.read_text().split()
    sheet.write_text("\n".join([*rows, "1063590223,1760575641,10,11,0", "1,2,3", "x"]) + "\n")
    client = logged_in(Role.ADMINISTRATOR)
    upload(client, sheet)
    job = ImportJob.objects.get()

    import_nppes_file(job.pk)

    job.refresh_from_db()
    assert (job.status, job.imported, job.rejected) == (ImportJob.Status.DONE, 5, 3)
    page = text(client.get(reverse("registry:import_detail", args=[job.pk])))
    assert "imported 5 pairs, rejected 3 lines" in page
    assert "Line 6: Initial Physician NPI “1063590223”: This NPI's check digit is wrong" in page
    assert "Line 7: 3 columns instead of 5." in page
    assert "Line 8" not in page
    assert "… and 1 more (the first 2 are listed)." in page


def test_the_sweep_reruns_a_shared_patients_job_whose_worker_died(queued, monkeypatch) -> None:
    client = logged_in(Role.ADMINISTRATOR)
    upload(client)
    job = ImportJob.objects.get()
    now = timezone.now()
    # A worker claimed it and died half-way: its transaction rolled back, its beat stopped.
    ImportJob.objects.filter(pk=job.pk).update(
        status=ImportJob.Status.RUNNING, progress=40, attempts=1,
        heartbeat_at=now - timedelta(minutes=20),
    )  # fmt: skip
    monkeypatch.setattr("registry.services.timezone.now", lambda: now + timedelta(minutes=6))

    sweep_import_jobs()

    assert queued == [job.pk]
    job.refresh_from_db()
    assert (job.status, job.progress) == (ImportJob.Status.QUEUED, 0)
    assert import_jobs_to_redrive(now=now) == []  # queued just now by the sweep: not stuck yet
    import_nppes_file(job.pk)
    job.refresh_from_db()
    assert (job.status, job.imported, job.attempts) == (ImportJob.Status.DONE, 5, 2)
    assert SharedPatientPair.objects.count() == 5


@pytest.mark.parametrize("role", [Role.MANAGER, Role.LIAISON, Role.COORDINATOR, None])
def test_only_an_administrator_may_upload_shared_patient_patterns(role: str | None, queued) -> None:
    client = logged_in(role)

    page = client.get(UPLOAD)
    posted = upload(client)

    assert page.status_code == 403
    assert posted.status_code == 403
    assert not ImportJob.objects.exists()


def test_a_signed_out_visitor_is_sent_to_sign_in() -> None:
    response = Client().get(UPLOAD)

    assert response.status_code == 302
    assert "login" in response["Location"]


def test_the_upload_is_offered_where_nppes_uploads_are(client_for, administrator) -> None:
    client = client_for(administrator)

    form = text(client.get(UPLOAD))
    # app.js fills in the year and window from the chosen file's name.
    assert 'data-year-window=""' in form
    assert 'name="year"' in form
    assert 'name="window_days"' in form
    for page in (reverse("registry:import"), reverse("registry:finder")):
        assert f'href="{UPLOAD}"' in text(client.get(page))
    finder = logged_in(Role.MANAGER, "m").get(reverse("registry:finder"))
    assert f'href="{UPLOAD}"' not in text(finder)


def test_a_shared_patients_job_cannot_be_saved_without_its_year_and_window() -> None:
    with pytest.raises(IntegrityError):
        ImportJob.objects.create(
            kind=ImportJob.Kind.SHARED_PATIENTS, original_name="x.txt", window_days=30
        )


def test_an_empty_post_is_answered_with_the_form_s_errors() -> None:
    client = logged_in(Role.ADMINISTRATOR)
    response = client.post(reverse("registry:import_shared_patients"))
    assert response.status_code == 200
    assert "Choose the file to upload." in text(response)
    assert not ImportJob.objects.exists()
