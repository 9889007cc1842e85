"""docker-compose.yml: the production topology the README points to.

No Docker here, so these read the file the way compose would (variables at their defaults)
and check what would go wrong only in production: the app connecting as the audit trail's
owner, replicas racing to migrate, and files written by one container that another cannot
read.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from django.conf import settings

ROOT = Path(__file__).resolve().parent.parent
APP_SERVICES = ("web", "worker", "beat")
VAR_DIR_IN_IMAGE = "/app/var"


def _interpolate(text: str) -> str:
    """Compose's ${NAME:-default} and ${NAME:?message}, as if nothing were set."""
    text = re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", text)
    return re.sub(r"\$\{([A-Z_]+):\?[^}]*\}", r"<\1>", text)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(_interpolate((ROOT / "docker-compose.yml").read_text()))


def _database_user(service: dict[str, Any]) -> str:
    return urlsplit(service["environment"]["DATABASE_URL"]).username


def _command(service: dict[str, Any]) -> str:
    """The command line, or the script of `sh -c "..."`."""
    command = service["command"]
    words = shlex.split(command) if isinstance(command, str) else command
    return words[2] if words[:2] == ["sh", "-c"] else shlex.join(words)


def test_app_connects_as_its_own_role_and_migrate_as_the_owner(compose):
    services = compose["services"]
    owner = services["postgres"]["environment"]["POSTGRES_USER"]
    app_users = {_database_user(services[name]) for name in APP_SERVICES}
    assert len(app_users) == 1
    (app_user,) = app_users
    assert app_user != owner, "web, worker and beat must not own the audit trail's table"

    migrate = services["migrate"]
    assert _database_user(migrate) == owner
    steps = [step.strip() for step in _command(migrate).split("&&")]
    assert steps[0].endswith("manage.py migrate --no-input")
    assert steps[1].split()[-4:-2] == ["create_app_role", app_user], (
        "the role the app connects as is the one migrate creates"
    )
    password_env = steps[1].split()[-1]
    assert migrate["environment"][password_env], "the role gets a password"
    app_password = urlsplit(services["web"]["environment"]["DATABASE_URL"]).password
    assert migrate["environment"][password_env] == app_password


def test_migrations_run_once_before_the_app_starts(compose):
    services = compose["services"]
    for name in APP_SERVICES:
        assert "migrate" not in _command(services[name]), f"{name} would race other replicas"
        assert services[name]["depends_on"]["migrate"] == {
            "condition": "service_completed_successfully"
        }
    assert services["migrate"]["restart"] == "no"


def test_files_one_container_writes_another_reads_are_on_shared_volumes(compose):
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert f"REFERRAL_CRM_VAR_DIR={VAR_DIR_IN_IMAGE}" in dockerfile
    var_dir = Path(settings.VAR_DIR)
    shared = {
        # NPPES files uploaded through the web, imported by a worker.
        Path(settings.MEDIA_ROOT).relative_to(var_dir),
        # Referral documents, uploaded on one web replica, served by any.
        Path(settings.PRIVATE_STORAGE_ROOT).relative_to(var_dir),
        # The registry import's reject lists and deferred index builds.
        Path("registry"),
    }
    services = compose["services"]
    mounts = {
        name: dict(reversed(volume.split(":")[:2]) for volume in services[name].get("volumes", []))
        for name in ("web", "worker")
    }
    for relative in shared:
        target = f"{VAR_DIR_IN_IMAGE}/{relative}"
        assert target in mounts["web"], f"{target} is not on a volume"
        assert mounts["web"][target] == mounts["worker"][target]
        assert mounts["web"][target] in compose["volumes"], "a named volume, kept across rebuilds"
        assert "mkdir -p" in dockerfile and target in dockerfile, (
            f"{target} must exist in the image so a new volume belongs to the app's user"
        )
