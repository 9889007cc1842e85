"""Redis stopped for a minute: the web keeps serving and saving, and the work queued in
the database is delivered once Redis is back. Runs its own redis-server on a free port so
other tests (and other engineers) on the shared Redis are never disturbed."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import redis
from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from bench.smtp_sink import SmtpSink, free_port
from conftest import WorkerProcess, environ, wait_for
from core.factories import UserFactory
from core.roles import Role
from outreach.models import Letter, LetterTemplate
from outreach.tasks import sweep_loop_work
from partners.factories import ProviderFactory
from referral_crm.celery import app
from referrals.factories import ReferralFactory
from referrals.models import Status
from referrals.services.workflow import referral_log, referral_transition

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

OUTAGE_SECONDS = float(os.environ.get("REDIS_OUTAGE_SECONDS", "60"))


class RedisServer:
    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        executable = shutil.which("redis-server")
        if executable is None:
            pytest.fail("redis-server is not installed; the outage test needs its own Redis")
        self.process = subprocess.Popen(
            [
                executable,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
            ],
            stdout=subprocess.DEVNULL,
        )
        client = redis.Redis.from_url(self.url, socket_connect_timeout=1)
        wait_for(lambda: _pings(client), timeout=20, what="redis-server to start")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=20)


def _pings(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False


def _use_broker(url: str, options: dict[str, Any]) -> None:
    """Point this process's Celery app (the web side) at another broker."""
    app.conf.broker_url = url
    app.conf.broker_transport_options = options
    # Pools are built lazily from the settings; drop them so the next publish uses the new
    # broker (what Celery itself does after a fork).
    app._pool = None
    app.amqp._producer_pool = None


@pytest.fixture
def own_redis(celery_worker_process: WorkerProcess, tmp_path: Any) -> Iterator[Any]:
    server = RedisServer()
    server.start()
    sink = SmtpSink().start()
    saved_broker = (app.conf.broker_url, dict(app.conf.broker_transport_options or {}))
    worker = WorkerProcess(tmp_path / "worker.log")
    try:
        with environ({"REDIS_URL": server.url, "TEST_WORKER_EMAIL_URL": sink.url}):
            _use_broker(server.url, dict(settings.REDIS_BROKER_TRANSPORT_OPTIONS))
            worker.start()
            yield server, worker, sink
    finally:
        worker.stop()
        _use_broker(*saved_broker)
        server.stop()
        sink.stop()


def test_with_redis_down_the_web_saves_and_the_work_is_delivered_when_it_returns(own_redis):
    server, worker, sink = own_redis
    coordinator = UserFactory(role=Role.COORDINATOR)
    client = _client(coordinator)
    referrals = []
    for number in range(3):
        provider = ProviderFactory(email=f"outage{number}@example.org")
        referral = referral_log(referral=ReferralFactory.build(provider=provider), actor=None)
        referrals.append(referral_transition(referral=referral, to_status="accepted", actor=None))
    wait_for(lambda: sink.total >= 3, what="the acknowledgments sent while Redis is up")

    server.stop()
    outage_started = time.monotonic()
    for referral in referrals:
        started = time.monotonic()
        response = client.post(
            reverse("referrals:transition", args=[referral.pk]),
            {
                "to_status": Status.SCHEDULED,
                "appointment_at": f"{timezone.localdate() + timedelta(days=30)}T09:30",
            },
        )
        assert response.status_code == 302
        assert time.monotonic() - started < 5, "a save must not hang on the broker"
        referral.refresh_from_db()
        assert referral.status == Status.SCHEDULED
        assert client.get(reverse("referrals:list")).status_code == 200
    # Keep using the site for the rest of the outage.
    while time.monotonic() - outage_started < OUTAGE_SECONDS:
        assert client.get(reverse("referrals:detail", args=[referrals[0].pk])).status_code == 200
        time.sleep(2)
    assert not Letter.objects.filter(kind=LetterTemplate.Kind.SCHEDULED).exists()

    server.start()
    # Beat's next sweep finds the scheduled events without their notice.
    wait_for(lambda: _sweep_published(), timeout=60, what="the sweep to be published")

    def delivered() -> bool:
        return (
            Letter.objects.filter(
                kind=LetterTemplate.Kind.SCHEDULED, status=Letter.Status.SENT
            ).count()
            == 3
        )

    wait_for(delivered, timeout=120, what="the scheduled notices after Redis returns")
    scheduled_ids = set(
        Letter.objects.filter(kind=LetterTemplate.Kind.SCHEDULED).values_list(
            "message_id", flat=True
        )
    )
    assert scheduled_ids <= set(sink.received)
    assert sink.total == 6
    assert "could not enqueue" not in worker.log  # only the web lost its enqueues


def _sweep_published() -> bool:
    try:
        sweep_loop_work.apply_async(retry=False)
    except Exception:
        return False
    return True


def _client(user: Any) -> Any:
    from django.test import Client

    client = Client()
    client.force_login(user)
    return client
