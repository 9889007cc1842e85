"""The database half of the append-only audit trail.

Migration audit 0002 installs triggers that refuse UPDATE and DELETE (and, on Postgres,
TRUNCATE) of the audit table, whoever sends the SQL. One door is left, for the one
legitimate wipe: Django's `flush` (which test runners call between transactional tests),
run through `audit_deletes_allowed()`. It opens that door per connection:

- Postgres: the session setting `referral_crm.audit_flush = on`. Row DELETEs check it, and
  so does TRUNCATE (Django's flush on Postgres), which no row trigger sees.
- SQLite has no session settings, so the DELETE trigger asks the SQL function
  `audit_flush_allowed()` that this app registers on each of its connections. A connection
  without it (the sqlite3 shell, another program) fails the DELETE with "no such
  function", so the door stays shut there too.

Not a defence against someone with the database owner's rights: they can drop the
triggers. It stops the application, a bug or an injected statement from rewriting
history; a separate database role without UPDATE/DELETE on the table is the next step.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Protocol, cast

from django.db import connections

POSTGRES_SETTING = "referral_crm.audit_flush"
SQLITE_FUNCTION = "audit_flush_allowed"


class _FlushFlag(Protocol):
    """A SQLite connection carries this flag of ours, read by its SQLite function."""

    audit_flush_allowed: bool


def register_sqlite_function(sender: Any, connection: Any, **kwargs: Any) -> None:
    """connection_created receiver: give each SQLite connection the flag function."""
    if connection.vendor != "sqlite":
        return
    connection.connection.create_function(
        SQLITE_FUNCTION, 0, lambda: int(getattr(connection, "audit_flush_allowed", False))
    )


@contextmanager
def audit_deletes_allowed(using: str = "default") -> Iterator[None]:
    """Let this connection delete audit rows for the duration (flush only)."""
    connection = connections[using]
    connection.ensure_connection()
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT set_config(%s, 'on', false)", [POSTGRES_SETTING])
        try:
            yield
        finally:
            with connection.cursor() as cursor:
                cursor.execute("SELECT set_config(%s, '', false)", [POSTGRES_SETTING])
    else:
        flagged = cast(_FlushFlag, connection)
        flagged.audit_flush_allowed = True
        try:
            yield
        finally:
            flagged.audit_flush_allowed = False
