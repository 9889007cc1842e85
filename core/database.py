"""Prepared statements that outlive a schema change (Postgres).

A statement run often on a connection is prepared (settings: DATABASE_PREPARE_THRESHOLD).
A migration that changes the type of a column such a statement returns (a longer
`max_length`, say) makes Postgres refuse it on every connection that prepared it:
"cached plan must not change result type", again and again until the connection closes.
During a deploy, the workers still running when `migrate` finishes would answer those
pages with errors for up to DATABASE_CONN_MAX_AGE.

`replan_after_schema_change` wraps every query on Postgres. On that error outside a
transaction, it drops the connection's prepared statements and runs the query again, so
the user sees nothing. Inside a transaction nothing can run until it rolls back, so the
error stands, and the connection is closed at the end of the request or task instead:
one failed request per connection, not a minute of them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.db import NotSupportedError
from django.db.backends.base.base import BaseDatabaseWrapper

FEATURE_NOT_SUPPORTED = "0A000"
STALE_PLAN = "cached plan must not change result type"


def _stale_plan(error: NotSupportedError) -> bool:
    cause = error.__cause__
    return getattr(cause, "sqlstate", None) == FEATURE_NOT_SUPPORTED and STALE_PLAN in str(cause)


def replan_after_schema_change(
    execute: Callable[..., Any], sql: str, params: Any, many: bool, context: dict[str, Any]
) -> Any:
    try:
        return execute(sql, params, many, context)
    except NotSupportedError as error:
        if not _stale_plan(error):
            raise
        connection: BaseDatabaseWrapper = context["connection"]
        if connection.in_atomic_block or not connection.get_autocommit():
            # Django closes an obsolete connection when the request or task ends.
            connection.close_at = 0
            raise
        # psycopg forgets its own prepared statements when it sees this command succeed.
        with connection.wrap_database_errors:
            connection.connection.execute("DEALLOCATE ALL")
        return execute(sql, params, many, context)


def install_replanning(sender: Any, connection: BaseDatabaseWrapper, **kwargs: Any) -> None:
    """connection_created receiver. First in the list: `connection.execute_wrapper()`
    blocks pop the last wrapper when they end, which must stay theirs."""
    if connection.vendor == "postgresql" and (
        replan_after_schema_change not in connection.execute_wrappers
    ):
        connection.execute_wrappers.insert(0, replan_after_schema_change)
