"""The app's own database role (`create_app_role`): it works every table, but only reads
and appends to the audit trail, so not even a bug that deletes the triggers' protection,
or an injected statement, can rewrite history. On Postgres only: SQLite has no roles.

Roles belong to the whole Postgres cluster, but CREATE ROLE is transactional: each test
runs in a transaction that is rolled back, so the role never outlives it. Its name is
unique so that two test runs on one server do not wait on each other."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from io import StringIO
from pathlib import Path

import pytest
from django.core import checks
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, transaction

from audit.models import PatientDataAccess
from audit.roles import check_audit_trail_role
from audit.services import audit_record
from referrals.factories import ReferralFactory
from referrals.models import Referral

pytestmark = pytest.mark.django_db
on_postgres = connection.vendor == "postgresql"


@pytest.fixture
def app_role() -> str | None:
    """The role, made as a deployment would; None on SQLite."""
    if not on_postgres:
        return None
    name = f"referralcrm_app_{uuid.uuid4().hex[:10]}"
    out = StringIO()
    call_command("create_app_role", name, stdout=out)
    assert out.getvalue().startswith(f"Created role {name}:")
    return name


@contextmanager
def acting_as(role: str) -> Iterator[None]:
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f'SET LOCAL ROLE "{role}"')
        try:
            yield
        finally:
            cursor.execute("RESET ROLE")


def sqlite_has_no_roles() -> None:
    """What the same call does on SQLite (development, the embedded test run)."""
    with pytest.raises(CommandError, match="Postgres only"):
        call_command("create_app_role", "referralcrm_app")
    assert check_audit_trail_role(databases=["default"]) == []


def _refused(statement: str, params: list | None = None) -> str:
    with pytest.raises(DatabaseError) as refused, transaction.atomic(), connection.cursor() as c:
        c.execute(statement, params)
    return str(refused.value)


def test_the_app_role_works_referrals_and_appends_audit_rows_but_cannot_rewrite_them(app_role):
    if not on_postgres:
        return sqlite_has_no_roles()
    with acting_as(app_role):
        referral = ReferralFactory(patient_last_name="Okonkwo")
        Referral.objects.filter(pk=referral.pk).update(patient_last_name="Okonkwo-Reyes")
        audit_record(action=PatientDataAccess.Action.VIEW, referral_ids=[referral.pk])
        entry = PatientDataAccess.objects.get(referral_id=referral.pk)

        for statement, params in (
            ("UPDATE audit_patientdataaccess SET action = 'list' WHERE id = %s", [entry.pk]),
            ("DELETE FROM audit_patientdataaccess WHERE id = %s", [entry.pk]),
            ("TRUNCATE audit_patientdataaccess", None),
            ("DROP TRIGGER audit_patientdataaccess_append_only ON audit_patientdataaccess", None),
            ("ALTER TABLE audit_patientdataaccess DISABLE TRIGGER ALL", None),
        ):
            message = _refused(statement, params)
            assert "permission denied" in message or "must be owner" in message, statement

        assert PatientDataAccess.objects.get(pk=entry.pk).action == "view"
        assert Referral.objects.get(pk=referral.pk).patient_last_name == "Okonkwo-Reyes"


def test_the_deploy_check_warns_until_the_app_runs_as_its_own_role(app_role):
    if not on_postgres:
        return sqlite_has_no_roles()
    warned = check_audit_trail_role(databases=["default"])
    assert [w.id for w in warned] == ["audit.W001"]
    assert isinstance(warned[0], checks.Warning) and "superuser" in warned[0].msg
    assert "create_app_role" in warned[0].hint

    with acting_as(app_role):
        assert check_audit_trail_role(databases=["default"]) == []

    # Django runs database checks only when asked for a database.
    assert check_audit_trail_role(databases=None) == []


def test_running_it_again_updates_the_role_and_sets_a_password_from_the_environment(
    app_role, monkeypatch
):
    if not on_postgres:
        return sqlite_has_no_roles()
    monkeypatch.setenv("APP_DB_PASSWORD", "s3cret-from-the-env")
    out = StringIO()
    call_command("create_app_role", app_role, "--password-env", "APP_DB_PASSWORD", stdout=out)
    assert out.getvalue().startswith(f"Updated role {app_role}:")
    assert "s3cret" not in out.getvalue()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT rolpassword IS NOT NULL FROM pg_authid WHERE rolname = %s", [app_role]
        )
        assert cursor.fetchone() == (True,)

    monkeypatch.delenv("APP_DB_PASSWORD")
    with pytest.raises(CommandError, match="APP_DB_PASSWORD is empty or unset"):
        call_command("create_app_role", app_role, "--password-env", "APP_DB_PASSWORD")


def test_it_refuses_to_be_run_as_the_app_role_itself(app_role):
    if not on_postgres:
        return sqlite_has_no_roles()
    with acting_as(app_role), pytest.raises(CommandError, match="as the database owner"):
        call_command("create_app_role", app_role)


def test_a_first_registry_import_under_the_app_role_keeps_the_indexes_and_loads(
    app_role, settings, tmp_path
):
    if not on_postgres:
        return sqlite_has_no_roles()
    from registry.models import RegistryProvider
    from registry.tests.conftest import SAMPLE

    settings.VAR_DIR = tmp_path / "var"
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_indexes WHERE tablename = %s",
            [RegistryProvider._meta.db_table],
        )
        indexes = cursor.fetchone()[0]
    out = StringIO()
    with acting_as(app_role):
        call_command("import_nppes", str(SAMPLE), "--no-progress", "--jobs", "1", stdout=out)
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_indexes WHERE tablename = %s",
                [RegistryProvider._meta.db_table],
            )
            assert cursor.fetchone()[0] == indexes
        assert RegistryProvider.objects.count() == 1000
    assert out.getvalue().startswith("imported 921, updated 0")
    assert not Path(settings.VAR_DIR, "registry", "indexes-to-rebuild.sql").exists()
