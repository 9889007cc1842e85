"""Create (or bring up to date) the Postgres role the app runs as. See audit/roles.py.

    manage.py create_app_role referralcrm_app [--password-env APP_DB_PASSWORD]

Run it as the database owner after every `migrate`: it is idempotent, and it re-applies the
audit table's narrower rights in case a migration rebuilt the table. The password, if any,
comes from an environment variable, never the command line (which `ps` shows).
"""

from __future__ import annotations

import os
from typing import Any

from django.core.management import BaseCommand, CommandError
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections, transaction
from psycopg import sql

from audit.models import PatientDataAccess
from audit.roles import REWRITE_RIGHTS, audit_rewrite_rights

APP_TABLE_RIGHTS = sql.SQL("SELECT, INSERT, UPDATE, DELETE")
APP_SEQUENCE_RIGHTS = sql.SQL("USAGE, SELECT, UPDATE")


class Command(BaseCommand):
    help = (
        "Create or update the database role the app should run as: full use of the app's "
        "tables, but only SELECT and INSERT on the patient-data audit trail."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("name", help="the role's name, e.g. referralcrm_app")
        parser.add_argument(
            "--password-env",
            metavar="VARIABLE",
            help="set the role's password from this environment variable",
        )
        parser.add_argument("--database", default=DEFAULT_DB_ALIAS)

    def handle(
        self, *args: Any, name: str, password_env: str | None, database: str, **options: Any
    ) -> None:
        if connections[database].vendor != "postgresql":
            raise CommandError("Database roles exist on Postgres only; SQLite has no roles.")
        password = None
        if password_env:
            password = os.environ.get(password_env)
            if not password:
                raise CommandError(f"The environment variable {password_env} is empty or unset.")
        try:
            with transaction.atomic(using=database):
                created, database_name = self._grant(database, name, password)
                rights = self._rights_as(database, name)
        except DatabaseError as error:
            raise CommandError(f"The database refused: {error}".strip()) from error
        if rights:
            raise CommandError(
                f"The role {name} can still change the audit trail ({', '.join(rights)}): "
                "it is a superuser or owns the table. Choose another role."
            )
        self.stdout.write(
            f"{'Created' if created else 'Updated'} role {name}: it uses every table of "
            f"{database_name}, and only reads and appends to the patient-data audit trail. "
            "Point DATABASE_URL at it; run this again after every migrate."
        )

    def _grant(self, database: str, name: str, password: str | None) -> tuple[bool, str]:
        role = sql.Identifier(name)
        audit_table = sql.Identifier(PatientDataAccess._meta.db_table)
        with connections[database].cursor() as cursor:
            cursor.execute("SELECT current_user = %s, current_database(), current_schema()", [name])
            is_self, database_name, schema_name = cursor.fetchone()
            if is_self:
                raise CommandError("Run this as the database owner, not as the app's own role.")
            schema = sql.Identifier(schema_name)
            cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [name])
            created = cursor.fetchone() is None
            statements = []
            if created:
                statements.append(
                    sql.SQL(
                        "CREATE ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION"
                    ).format(role)
                )
            if password is not None:
                statements.append(
                    sql.SQL("ALTER ROLE {} PASSWORD {}").format(role, sql.Literal(password))
                )
            statements += [
                sql.SQL("GRANT CONNECT, TEMPORARY ON DATABASE {} TO {}").format(
                    sql.Identifier(database_name), role
                ),
                sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(schema, role),
                sql.SQL("GRANT {} ON ALL TABLES IN SCHEMA {} TO {}").format(
                    APP_TABLE_RIGHTS, schema, role
                ),
                sql.SQL("GRANT {} ON ALL SEQUENCES IN SCHEMA {} TO {}").format(
                    APP_SEQUENCE_RIGHTS, schema, role
                ),
                # Tables and sequences that later migrations create (as this owner) too.
                sql.SQL("ALTER DEFAULT PRIVILEGES IN SCHEMA {} GRANT {} ON TABLES TO {}").format(
                    schema, APP_TABLE_RIGHTS, role
                ),
                sql.SQL("ALTER DEFAULT PRIVILEGES IN SCHEMA {} GRANT {} ON SEQUENCES TO {}").format(
                    schema, APP_SEQUENCE_RIGHTS, role
                ),
                sql.SQL("REVOKE {} ON {} FROM {}").format(
                    sql.SQL(", ").join(map(sql.SQL, REWRITE_RIGHTS)), audit_table, role
                ),
                sql.SQL("GRANT SELECT, INSERT ON {} TO {}").format(audit_table, role),
            ]
            raw = connections[database].connection
            for statement in statements:
                cursor.execute(statement.as_string(raw))
        return created, database_name

    def _rights_as(self, database: str, name: str) -> list[str]:
        """What the role can do to the audit trail, asked as the role itself."""
        with connections[database].cursor() as cursor:
            raw = connections[database].connection
            cursor.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(name)).as_string(raw))
            try:
                return audit_rewrite_rights(database)
            finally:
                cursor.execute("RESET ROLE")
