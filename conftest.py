"""Fixtures shared by every test: users for each role and a real Celery worker."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.test import Client

from core.factories import UserFactory
from core.roles import Role

# Each test session publishes to a queue of its own, so a developer's running worker never
# picks up test messages (and the test worker never picks up theirs).
TEST_QUEUE = f"test-{uuid.uuid4().hex[:10]}"


def pytest_configure(config: pytest.Config) -> None:
    from referral_crm.celery import app

    app.conf.task_default_queue = TEST_QUEUE


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """A transactional test that does not roll back serialized ends in a flush that makes
    the roles again (post_migrate); a serialized test after it then fails at set-up on
    those roles. Such a test must roll back serialized too, or run after every serialized
    one (the browser and worker tests in tests/ do)."""

    def marker(item: pytest.Item) -> dict[str, Any]:
        found = item.get_closest_marker("django_db")
        return dict(found.kwargs) if found else {}

    serialized = [i for i, item in enumerate(items) if marker(item).get("serialized_rollback")]
    if not serialized:
        return
    early = [
        item.nodeid
        for item in items[: serialized[-1]]
        if marker(item).get("transaction") and not marker(item).get("serialized_rollback")
    ]
    if early:
        raise pytest.UsageError(
            "These transactional tests run before a serialized one without "
            "serialized_rollback=True (their flush leaves the roles for it to collide "
            "with): " + ", ".join(early)
        )


@pytest.fixture(autouse=True)
def _password_only_sign_in(settings: Any) -> None:
    """Tests sign in with force_login, a password-only session. Two-factor sign-in is
    required of managers and administrators in production (TWO_FACTOR_REQUIRED defaults to
    on); accounts/tests turn it back on and test it."""
    settings.TWO_FACTOR_REQUIRED = False


@pytest.fixture
def manager(db: None) -> Any:
    return UserFactory(username="manager", role=Role.MANAGER)


@pytest.fixture
def liaison(db: None) -> Any:
    return UserFactory(username="liaison", role=Role.LIAISON)


@pytest.fixture
def other_liaison(db: None) -> Any:
    return UserFactory(username="other_liaison", role=Role.LIAISON)


@pytest.fixture
def coordinator(db: None) -> Any:
    return UserFactory(username="coordinator", role=Role.COORDINATOR)


@pytest.fixture
def administrator(db: None) -> Any:
    return UserFactory(username="administrator", role=Role.ADMINISTRATOR)


@pytest.fixture
def no_role_user(db: None) -> Any:
    """Signed in, but in no group: may read nothing."""
    return UserFactory(username="nobody")


@pytest.fixture
def client_for() -> Callable[[Any], Client]:
    def make(user: Any) -> Client:
        client = Client()
        client.force_login(user)
        return client

    return make


def _database_url() -> str:
    from django.db import connection

    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{Path(db['NAME']).resolve()}"
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    return (
        f"postgres://{db['USER']}{password}@{db.get('HOST') or '127.0.0.1'}:"
        f"{db.get('PORT') or 5432}/{db['NAME']}"
    )


class WorkerProcess:
    def __init__(self, log_path: Path) -> None:
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "referral_crm.settings",
            "DATABASE_URL": _database_url(),
            "REFERRAL_CRM_VAR_DIR": str(settings.VAR_DIR),
            "CELERY_QUEUE": TEST_QUEUE,
            "EMAIL_URL": os.environ.get("TEST_WORKER_EMAIL_URL", "consolemail://"),
        }
        self.log_path.write_text("")
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "referral_crm",
                "worker",
                "--queues",
                TEST_QUEUE,
                "--pool",
                "solo",
                "--loglevel",
                "INFO",
                "--without-gossip",
                "--without-mingle",
                "--hostname",
                f"{TEST_QUEUE}@%h",
            ],
            cwd=settings.BASE_DIR,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"The Celery worker exited:\n{self.log_path.read_text()}")
            if " ready." in self.log_path.read_text():
                return
            time.sleep(0.2)
        raise RuntimeError(f"The Celery worker did not start:\n{self.log_path.read_text()}")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    @property
    def log(self) -> str:
        return self.log_path.read_text()


@pytest.fixture(scope="session")
def celery_worker_process(
    django_db_setup: None, django_db_blocker: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WorkerProcess]:
    """A real `celery worker` process on the configured broker (Redis when REDIS_URL is
    set, else the filesystem transport) and the test database."""
    if os.environ.get("REDIS_URL"):
        _require_redis(os.environ["REDIS_URL"])
    worker = WorkerProcess(tmp_path_factory.mktemp("worker") / "worker.log")
    worker.start()
    yield worker
    worker.stop()


@contextlib.contextmanager
def worker_with_env(
    session_worker: WorkerProcess, env: dict[str, str], log_path: Path
) -> Iterator[WorkerProcess]:
    """The session's worker stopped, and another started with `env` added to its
    environment (where its email goes, say) for the block; then the session's again."""
    session_worker.stop()
    worker = WorkerProcess(log_path)
    try:
        with environ(env):
            worker.start()
            yield worker
    finally:
        worker.stop()
        session_worker.start()


@contextlib.contextmanager
def environ(changes: dict[str, str]) -> Iterator[None]:
    """This process's environment with `changes` for the block, then as it was (a name
    that was not set is unset again)."""
    saved = {name: os.environ.get(name) for name in changes}
    os.environ.update(changes)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _require_redis(url: str) -> None:
    """REDIS_URL set but Redis unreachable is a failure, never a skip."""
    import redis

    try:
        redis.Redis.from_url(url, socket_connect_timeout=3).ping()
    except redis.RedisError as error:
        pytest.fail(f"REDIS_URL is set but Redis does not answer at {url}: {error}")


def wait_for(condition: Callable[[], Any], *, timeout: float = 60, what: str = "") -> Any:
    """Poll `condition` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(0.25)
    pytest.fail(f"Timed out after {timeout}s waiting for {what or condition}")
