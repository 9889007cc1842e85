"""The letters pipeline benchmark: render, PDF where the channel needs it, and deliver to
an SMTP sink on loopback, through real Celery workers, from a backlog in the database.

    python -m bench letters [--letters 10000] [--concurrency 2] [--fax-share 0.2]

Uses the configured database and broker (set DATABASE_URL and REDIS_URL for the
production pair). It creates its own partner and letters and deletes them afterwards.
"""

from __future__ import annotations

import argparse
import os
import secrets
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import click
from django.conf import settings
from django.db import connection
from django.utils import timezone

from bench.smtp_sink import SmtpSink

TARGET_PER_SECOND = 50
TARGET_DRAIN_SECONDS = 300


def _make_backlog(count: int, fax_share: float) -> list[int]:
    from outreach.models import Letter, LetterTemplate
    from partners.factories import OrganizationFactory, ProviderFactory, make_npi

    office = OrganizationFactory(name="Benchmark Family Medicine", fax="(402) 555-0199")
    provider = ProviderFactory(
        npi=make_npi(90_000_000 + secrets.randbelow(9_000_000)),
        organization=office,
        email="bench@example.org",
        notes="letters benchmark",
    )
    fax_every = round(1 / fax_share) if fax_share else 0
    body = (
        "Dear Dr. Bench,\n\nThank you for referring your patient J.D. to "
        f"{settings.PRACTICE_NAME}. We saw them on March 12 and will send our consult report "
        "shortly.\n\nWe appreciate your trust and are always glad to help your patients.\n\n"
        "With thanks,\nJamie Carter"
    )
    letters = [
        Letter(
            kind=LetterTemplate.Kind.NEWSLETTER,
            provider=provider,
            subject=f"Benchmark letter {number}",
            body=body,
            due_on=timezone.localdate(),
            channel=(
                Letter.Channel.FAX
                if fax_every and number % fax_every == 0
                else Letter.Channel.EMAIL
            ),
            recipient="bench@example.org",
            message_id=f"<{uuid.uuid4().hex}@bench.referral-crm>",
        )
        for number in range(count)
    ]
    created = Letter.objects.bulk_create(letters, batch_size=1000)
    return [letter.pk for letter in created]


def _remove_backlog(ids: list[int]) -> None:
    from outreach.models import Letter
    from partners.models import Organization, Provider

    provider_ids = set(Letter.objects.filter(pk__in=ids).values_list("provider_id", flat=True))
    office_ids = set(
        Provider.objects.filter(pk__in=provider_ids).values_list("organization_id", flat=True)
    )
    Letter.objects.filter(pk__in=ids).delete()
    Provider.objects.filter(pk__in=provider_ids).delete()
    Organization.objects.filter(pk__in=office_ids).delete()


def _start_worker(queue: str, concurrency: int, smtp_url: str, log: Path) -> subprocess.Popen:
    env = {**os.environ, "CELERY_QUEUE": queue, "EMAIL_URL": smtp_url, "LOG_LEVEL": "WARNING"}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "referral_crm",
            "worker",
            "--queues",
            queue,
            "--pool",
            "prefork",
            "--concurrency",
            str(concurrency),
            "--loglevel",
            "WARNING",
            "--without-gossip",
            "--without-mingle",
            "--hostname",
            f"{queue}@%h",
        ],
        cwd=settings.BASE_DIR,
        env=env,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )
    return process


def run(argv: list[str]) -> dict[str, float]:
    from outreach.models import Letter
    from outreach.tasks import DELIVERY_BATCH, deliver_letters
    from referral_crm.celery import app

    parser = argparse.ArgumentParser(prog="python -m bench letters")
    parser.add_argument("--letters", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--fax-share", type=float, default=0.2)
    options = parser.parse_args(argv)

    queue = f"bench-{uuid.uuid4().hex[:8]}"
    app.conf.task_default_queue = queue
    sink = SmtpSink().start()
    log = Path(tempfile.mkstemp(prefix="bench-letters-", suffix=".log")[1])
    engine = connection.vendor
    click.echo(
        f"Letters pipeline: {options.letters} letters ({options.fax_share:.0%} fax as PDF), "
        f"{options.concurrency} worker processes, {engine} database, "
        f"{'redis' if settings.REDIS_URL else 'filesystem'} broker, worker log {log}"
    )
    ids = _make_backlog(options.letters, options.fax_share)
    worker = _start_worker(queue, options.concurrency, sink.url, log)
    done_states = [Letter.Status.SENT, Letter.Status.PRINT_QUEUE]
    try:
        started = time.monotonic()
        # As the beat sweep hands out a backlog: in batches.
        batches = [ids[at : at + DELIVERY_BATCH] for at in range(0, len(ids), DELIVERY_BATCH)]
        with click.progressbar(batches, label="Enqueue", file=sys.stderr) as bar:
            for batch in bar:
                deliver_letters.delay(batch)
        enqueued = time.monotonic() - started
        with click.progressbar(length=len(ids), label="Deliver", file=sys.stderr) as bar:
            done = 0
            deadline = time.monotonic() + 30 * 60
            while done < len(ids) and time.monotonic() < deadline:
                if worker.poll() is not None:
                    raise SystemExit(f"The benchmark worker exited; see {log}")
                time.sleep(0.5)
                now_done = Letter.objects.filter(pk__in=ids, status__in=done_states).count()
                bar.update(now_done - done)
                done = now_done
        drained = time.monotonic() - started
        failed = Letter.objects.filter(pk__in=ids, status=Letter.Status.FAILED).count()
        emails = Letter.objects.filter(pk__in=ids, channel=Letter.Channel.EMAIL).count()
    finally:
        worker.terminate()
        worker.wait(timeout=60)
        sink.stop()
        _remove_backlog(ids)
    rate = done / drained
    results = {
        "letters": float(len(ids)),
        "delivered": float(done),
        "failed": float(failed),
        "emails_received": float(sink.total),
        "emails_expected": float(emails),
        "enqueue_seconds": enqueued,
        "drain_seconds": drained,
        "per_second": rate,
    }
    click.echo(
        f"Delivered {done}/{len(ids)} ({failed} failed); the sink received {sink.total} of "
        f"{emails} emails. Enqueued in {enqueued:.1f} s; drained in {drained:.1f} s: "
        f"{rate:.0f} letters/s (target {TARGET_PER_SECOND}/s; a 10,000 backlog in under "
        f"{TARGET_DRAIN_SECONDS} s)."
    )
    return results


if __name__ == "__main__":
    import os
    import sys

    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "referral_crm.settings")
    django.setup()
    run(sys.argv[1:])
