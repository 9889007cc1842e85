"""The database role the app should run as: every right it needs on the app's tables, but
on the patient-data audit trail only SELECT and INSERT.

The append-only triggers (audit/triggers.py) stop the app, a bug or an injected statement
from rewriting the audit trail, but not a role that owns the table: an owner can drop the
triggers. So in production the app connects as a role made by `manage.py create_app_role`
(run by the owner, after every `migrate`), and `manage.py check --deploy --database
default` warns while it does not.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.apps import AppConfig
from django.core import checks
from django.db import connections

from audit.models import PatientDataAccess

# The rights that would let a role change or remove audit rows.
REWRITE_RIGHTS = ("UPDATE", "DELETE", "TRUNCATE")


def audit_rewrite_rights(using: str = "default") -> list[str]:
    """What the connected Postgres role could do to the audit table beyond reading and
    appending: 'superuser', 'owner' and/or the REWRITE_RIGHTS it holds. Empty is safe."""
    table = PatientDataAccess._meta.db_table
    with connections[using].cursor() as cursor:
        cursor.execute(
            """
            SELECT r.rolsuper, pg_has_role(c.relowner, 'USAGE'),
                   has_table_privilege(c.oid, 'UPDATE'),
                   has_table_privilege(c.oid, 'DELETE'),
                   has_table_privilege(c.oid, 'TRUNCATE')
            FROM pg_roles r, pg_class c
            WHERE r.rolname = current_user AND c.oid = %s::regclass
            """,
            [table],
        )
        superuser, owner, *rights = cursor.fetchone()
    found = []
    if superuser:
        found.append("superuser")
    if owner:
        found.append("owner")
    found += [name for name, held in zip(REWRITE_RIGHTS, rights, strict=True) if held]
    return found


@checks.register(checks.Tags.security, deploy=True)
def check_audit_trail_role(
    app_configs: Sequence[AppConfig] | None = None,
    databases: Sequence[str] | None = None,
    **kwargs: Any,
) -> list[Any]:
    """Runs with `check --deploy --database default` (Django runs no database check
    without --database)."""
    problems: list[Any] = []
    for alias in databases or ():
        if connections[alias].vendor != "postgresql":
            continue
        rights = audit_rewrite_rights(alias)
        if rights:
            problems.append(
                checks.Warning(
                    f"The app's database role can change or delete the patient-data audit "
                    f"trail ({', '.join(rights)}).",
                    hint="As the owner, after migrate, run `manage.py create_app_role NAME` "
                    "and point DATABASE_URL at that role.",
                    id="audit.W001",
                )
            )
    return problems
