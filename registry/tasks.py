from celery import shared_task

from registry.services import import_files_clean, import_job_run, import_jobs_to_redrive


# A monthly file of ~9M rows takes far longer than the default task limit.
@shared_task(acks_late=True, time_limit=6 * 3600, soft_time_limit=6 * 3600 - 60)
def import_nppes_file(job_id: int) -> None:
    """Thin adapter: the ImportJob row holds the file path and receives the progress. Runs
    every kind of upload (shared patient patterns too): the name is the one queued
    messages already carry."""
    import_job_run(job_id=job_id)


@shared_task
def sweep_import_jobs() -> None:
    """Run by beat: re-drive imports whose message or worker was lost, and delete the
    uploads no import needs any more."""
    for job_id in import_jobs_to_redrive():
        import_nppes_file.delay(job_id)
    import_files_clean()
