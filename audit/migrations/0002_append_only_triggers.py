"""The audit trail is append-only in the database itself: triggers refuse UPDATE and
DELETE (and TRUNCATE on Postgres) of audit rows, except a DELETE/TRUNCATE by Django's
flush through audit.triggers.audit_deletes_allowed(). See audit/triggers.py.

On SQLite, Django rebuilds a table to alter it and the rebuilt table has no triggers: a
later migration that alters PatientDataAccess must install them again (the raw-SQL tests
in audit/tests/test_append_only.py fail until it does)."""

from django.db import migrations

TABLE = "audit_patientdataaccess"

POSTGRES_INSTALL = f"""
CREATE OR REPLACE FUNCTION audit_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('DELETE', 'TRUNCATE')
       AND coalesce(current_setting('referral_crm.audit_flush', true), '') = 'on' THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'The patient-data audit trail is append-only: % refused', TG_OP
        USING ERRCODE = 'integrity_constraint_violation';
END;
$$;
CREATE TRIGGER {TABLE}_append_only
    BEFORE UPDATE OR DELETE ON {TABLE}
    FOR EACH ROW EXECUTE FUNCTION audit_refuse_change();
CREATE TRIGGER {TABLE}_no_truncate
    BEFORE TRUNCATE ON {TABLE}
    FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change();
"""

POSTGRES_REMOVE = f"""
DROP TRIGGER IF EXISTS {TABLE}_no_truncate ON {TABLE};
DROP TRIGGER IF EXISTS {TABLE}_append_only ON {TABLE};
DROP FUNCTION IF EXISTS audit_refuse_change();
"""

SQLITE_INSTALL = [
    f"""CREATE TRIGGER {TABLE}_no_update BEFORE UPDATE ON {TABLE}
    BEGIN SELECT RAISE(ABORT, 'The patient-data audit trail is append-only: UPDATE refused'); END""",
    # audit_flush_allowed() is registered on each connection by the audit app.
    f"""CREATE TRIGGER {TABLE}_no_delete BEFORE DELETE ON {TABLE}
    WHEN NOT audit_flush_allowed()
    BEGIN SELECT RAISE(ABORT, 'The patient-data audit trail is append-only: DELETE refused'); END""",
]

SQLITE_REMOVE = [
    f"DROP TRIGGER IF EXISTS {TABLE}_no_update",
    f"DROP TRIGGER IF EXISTS {TABLE}_no_delete",
]


def install(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(POSTGRES_INSTALL, params=None)
    elif vendor == "sqlite":
        for statement in SQLITE_INSTALL:
            schema_editor.execute(statement, params=None)


def remove(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(POSTGRES_REMOVE, params=None)
    elif vendor == "sqlite":
        for statement in SQLITE_REMOVE:
            schema_editor.execute(statement, params=None)


class Migration(migrations.Migration):
    dependencies = [("audit", "0001_intake_patient_data_access")]

    operations = [migrations.RunPython(install, remove)]
