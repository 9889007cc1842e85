"""Workflows of the registry: turning a public NPPES record into a partner prospect, and
running an uploaded import (an NPPES or a CMS shared patient patterns file)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path

from celery.exceptions import SoftTimeLimitExceeded
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import (
    DatabaseError,
    IntegrityError,
    InterfaceError,
    OperationalError,
    connection,
    transaction,
)
from django.db.models import F, Q
from django.utils import timezone

from core.phones import format_phone
from partners.models import Organization, Provider
from registry.importing.nppes_load import NppesFileError, nppes_import
from registry.importing.shared_patients import SharedPatientFileError, shared_patients_import
from registry.models import ImportJob, RegistryProvider, Taxonomy


def check_add_as_prospect(record: RegistryProvider) -> None:
    # Deactivation first: CMS's row for a deactivated NPI has no entity type at all.
    if record.deactivated:
        raise ValidationError("This NPI is deactivated.")
    if record.entity_type != RegistryProvider.EntityType.INDIVIDUAL:
        raise ValidationError("Only individual providers (type-1 NPIs) can become partners.")
    if Provider.objects.filter(npi=record.npi).exists():
        raise ValidationError("This provider is already in the partner directory.")


def _organization_for(record: RegistryProvider) -> Organization:
    """The office a provider works at: the partner organization with the type-2 NPI that
    shares their practice address, else one at the same address, else a new one."""
    same_address = Q(address_line1=record.address_line1, zip5=record.zip5)
    registry_org = (
        RegistryProvider.objects.active()
        .filter(same_address, entity_type=RegistryProvider.EntityType.ORGANIZATION)
        .order_by("npi")
        .first()
        if record.address_line1 and record.zip5
        else None
    )
    if registry_org is not None:
        by_npi = Organization.objects.filter(npi=registry_org.npi).first()
        if by_npi is not None:
            return by_npi
    # The street and the ZIP code together: "1 Main St" alone is in every town.
    if record.address_line1 and record.zip5:
        by_address = (
            Organization.objects.filter(
                address_line1__iexact=record.address_line1, zip_code__startswith=record.zip5
            )
            .order_by("pk")
            .first()
        )
        if by_address is not None:
            return by_address
    if registry_org is not None:
        name, npi = registry_org.organization_name.title(), registry_org.npi
    else:
        name = f"{record.last_name.title()} practice, {record.city.title()}".strip(", ")
        npi = ""
    organization = Organization(
        name=name[:200],
        npi=npi,
        phone=format_phone(record.phone),
        fax=format_phone(record.fax),
        address_line1=record.address_line1.title(),
        address_line2=record.address_line2.title(),
        city=record.city.title(),
        state=record.state[:2],
        zip_code=record.zip5,
    )
    # The one-office-per-NPI rule is left to the database: a colleague adding another of
    # its doctors may create the office between the look-up above and this save.
    organization.full_clean(validate_constraints=False)
    try:
        with transaction.atomic():
            organization.save()
    except IntegrityError:
        if not npi:
            raise
        return Organization.objects.get(npi=npi)
    return organization


@transaction.atomic
def registry_provider_add_as_prospect(*, record: RegistryProvider, owner: User) -> Provider:
    """Copy a registry provider into the partner directory as a prospect of `owner`."""
    check_add_as_prospect(record)
    taxonomy = Taxonomy.objects.filter(code=record.primary_taxonomy_code).first()
    provider = Provider(
        npi=record.npi,
        first_name=record.first_name.title()[:100],
        last_name=record.last_name.title()[:100],
        credential=record.credential[:50],
        taxonomy_code=record.primary_taxonomy_code,
        specialty=taxonomy.label[:200] if taxonomy else "",
        organization=_organization_for(record),
        phone=format_phone(record.phone),
        owner=owner,
        status=Provider.Status.PROSPECT,
    )
    provider.full_clean()
    try:
        # A colleague may have clicked the same row a moment earlier.
        with transaction.atomic():
            provider.save()
    except IntegrityError:
        raise ValidationError("This provider is already in the partner directory.") from None
    return provider


logger = logging.getLogger(__name__)

# How often a running import's heartbeat is written whatever its progress: well inside
# IMPORT_HEARTBEAT_TIMEOUT, which the sweep reads to tell a running import from a lost one.
HEARTBEAT_SECONDS = 60.0


class _Beat:
    """What the heartbeat thread writes: a percentage handed over by `progress`, which wakes
    the thread to write it at once rather than at the next beat."""

    def __init__(self) -> None:
        self.percent: int | None = None
        self.wake = threading.Event()

    def progress(self, done: int, total: int) -> None:
        percent = min(100, int(done * 100 / total)) if total else 100
        if percent != self.percent:
            self.percent = percent
            self.wake.set()


@contextmanager
def _heartbeat(job_id: int, every: float) -> Iterator[_Beat]:
    """Keep the running job's heartbeat while the block runs, through the long steps that
    report no progress as well (the endpoint and location files, rebuilding the indexes,
    VACUUM), or after fifteen silent minutes the sweep would queue a live import again and
    a second worker run it too. A thread of the worker's own process, with its own
    database connection: when the worker dies, the heartbeat stops with it. Progress given
    to the yielded beat is written by the thread too, outside the import's transaction."""
    stop = threading.Event()
    state = _Beat()

    def beat() -> None:
        try:
            while True:
                state.wake.wait(every)
                state.wake.clear()
                if stop.is_set():
                    break
                fields: dict[str, object] = {"heartbeat_at": timezone.now()}
                if state.percent is not None:
                    fields["progress"] = state.percent
                try:
                    ImportJob.objects.filter(pk=job_id, status=ImportJob.Status.RUNNING).update(
                        **fields
                    )
                except DatabaseError as error:  # a busy database: the next beat tries again
                    logger.warning("import %s heartbeat: %s", job_id, type(error).__name__)
                finally:
                    # Closed between beats: the loader processes the import forks find no
                    # open connection of this thread's to inherit.
                    connection.close()
        finally:
            connection.close()

    thread = threading.Thread(target=beat, name=f"import-{job_id}-heartbeat", daemon=True)
    thread.start()
    try:
        yield state
    finally:
        stop.set()
        state.wake.set()
        thread.join()


def import_job_run(
    *, job_id: int, heartbeat_seconds: float = HEARTBEAT_SECONDS
) -> ImportJob | None:
    """Load the file of a queued ImportJob, writing progress and counts back to its row.
    Claims the job with a conditional update, so a redelivered task does not run it twice.
    Returns None for a job deleted since it was queued (nothing to run)."""
    now = timezone.now()
    claimed = ImportJob.objects.filter(pk=job_id, status=ImportJob.Status.QUEUED).update(
        status=ImportJob.Status.RUNNING,
        started_at=now,
        heartbeat_at=now,
        attempts=F("attempts") + 1,
    )
    job = ImportJob.objects.filter(pk=job_id).first()
    if job is None or not claimed:
        return job

    def progress(done: int, total: int) -> None:
        percent = min(100, int(done * 100 / total)) if total else 100
        if percent != job.progress:
            job.progress = percent
            ImportJob.objects.filter(pk=job.pk).update(
                progress=percent, heartbeat_at=timezone.now()
            )

    try:
        with _heartbeat(job.pk, heartbeat_seconds) as beat:
            if job.kind == ImportJob.Kind.SHARED_PATIENTS:
                # This loader holds one transaction for the whole file: progress written
                # from it would show no one until the end, so the heartbeat's own
                # connection writes it.
                _load_shared_patients(job, progress=beat.progress)
            else:
                _load_nppes(job, progress=progress)
    except (NppesFileError, SharedPatientFileError, UnicodeDecodeError, OSError) as error:
        job.status = ImportJob.Status.FAILED
        job.error = str(error)[:2000]
    except (SoftTimeLimitExceeded, OperationalError, InterfaceError):
        # Lost time or a lost connection: the sweep runs it again (the load is an upsert).
        raise
    except Exception as error:
        # A fault of the app, not of the file: running it again would fail the same way.
        # Said at once, and reported with where it happened (registry data is public).
        logger.exception("registry import %s stopped by an error in the app", job.pk)
        job.status = ImportJob.Status.FAILED
        job.error = (
            f"An error in the app stopped this import ({type(error).__name__}); it was "
            "reported. Ask your administrator before uploading the file again."
        )
    else:
        job.status = ImportJob.Status.DONE
        job.progress = 100
    job.finished_at = timezone.now()
    job.save()
    # The upload has served (a monthly NPPES file is gigabytes): a failed one is uploaded
    # again, not re-run from here. Left behind by a crash here, the sweep removes it.
    import_files_clean()
    return job


def _load_nppes(job: ImportJob, *, progress: Callable[[int, int], None]) -> None:
    result = nppes_import(path=Path(job.file.path), progress=progress)
    job.imported, job.updated = result.imported, result.updated
    job.unchanged, job.deactivated = result.unchanged, result.deactivated
    job.rejected = result.rejected
    job.rejects_path = str(result.rejects_path or "")


def _load_shared_patients(job: ImportJob, *, progress: Callable[[int, int], None]) -> None:
    if job.year is None or job.window_days is None:  # the check constraint forbids it
        raise SharedPatientFileError("The upload has no year and window.")
    result = shared_patients_import(
        path=Path(job.file.path),
        year=job.year,
        window_days=job.window_days,
        file_name=job.original_name,
        progress=progress,
    )
    job.imported, job.repeated = result.imported, result.repeated
    job.rejected, job.rejections = result.rejected, result.rejections


# A running import writes its heartbeat at least every few seconds (every batch); one silent
# this long lost its worker. A queued one this old lost its message.
IMPORT_HEARTBEAT_TIMEOUT = timedelta(minutes=15)
IMPORT_QUEUE_TIMEOUT = timedelta(minutes=5)
IMPORT_MAX_ATTEMPTS = 3


# Where uploads are stored (ImportJob.file), and how long one kept for a form sent back
# (registry.forms.SharedPatientsUploadForm.keep_upload) may wait for its job.
IMPORT_FILES_DIR = "registry/imports"
KEPT_UPLOAD_LIFETIME = timedelta(days=1, hours=1)


def import_files_clean(*, now: datetime | None = None) -> int:
    """Delete the uploads no import needs any more: those of finished jobs (done or
    failed), and files kept for a form that was never sent again (no job took them within
    KEPT_UPLOAD_LIFETIME, past the day their signed reference is good for). Returns how
    many files were deleted."""
    from django.core.files.storage import default_storage

    now = now or timezone.now()
    finished = ImportJob.objects.filter(
        status__in=[ImportJob.Status.DONE, ImportJob.Status.FAILED]
    ).exclude(file="")
    served = list(finished.values_list("pk", "file"))
    for _, name in served:
        default_storage.delete(name)
    ImportJob.objects.filter(pk__in=[pk for pk, _ in served]).update(file="")
    deleted = len(served)
    try:
        _, names = default_storage.listdir(IMPORT_FILES_DIR)
    except FileNotFoundError:
        return deleted
    in_use = set(ImportJob.objects.exclude(file="").values_list("file", flat=True))
    for name in names:
        path = f"{IMPORT_FILES_DIR}/{name}"
        if path in in_use:
            continue
        if default_storage.get_modified_time(path) < now - KEPT_UPLOAD_LIFETIME:
            default_storage.delete(path)
            deleted += 1
    return deleted


def import_jobs_to_redrive(*, now: datetime | None = None) -> list[int]:
    """Jobs to hand to a worker again: queued ones whose message was lost, and running ones
    whose worker died (heartbeat stopped), which go back to the queue. After
    IMPORT_MAX_ATTEMPTS runs a job is marked failed with the reason, shown on its page."""
    now = now or timezone.now()
    lost = ImportJob.objects.filter(
        status=ImportJob.Status.RUNNING, heartbeat_at__lt=now - IMPORT_HEARTBEAT_TIMEOUT
    )
    lost.filter(attempts__gte=IMPORT_MAX_ATTEMPTS).update(
        status=ImportJob.Status.FAILED,
        finished_at=now,
        error=(
            f"The import stopped {IMPORT_MAX_ATTEMPTS} times without finishing (its worker "
            "was lost). Nothing is half-applied that a new upload would not redo: upload the "
            "file again, or ask an administrator to check the worker's memory and logs."
        ),
    )
    lost.update(status=ImportJob.Status.QUEUED, progress=0)
    stuck = ImportJob.objects.filter(
        status=ImportJob.Status.QUEUED, created_at__lt=now - IMPORT_QUEUE_TIMEOUT
    ).filter(Q(heartbeat_at__isnull=True) | Q(heartbeat_at__lt=now - IMPORT_QUEUE_TIMEOUT))
    return list(stuck.values_list("pk", flat=True))
