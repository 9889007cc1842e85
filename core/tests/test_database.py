import pytest
from django.db import connection

from partners.factories import ProviderFactory
from partners.models import Provider

pytestmark = pytest.mark.django_db


def _prepared_statements() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        return [row[0] for row in cursor.fetchall()]


def test_a_statement_run_often_is_prepared_on_postgres_and_gives_the_same_rows():
    """Postgres skips parsing a prepared statement; the rows must not change.
    SQLite prepares every statement itself and takes no such option."""
    provider = ProviderFactory(last_name="Okafor")
    found = [
        list(Provider.objects.filter(last_name="Okafor").values_list("pk", flat=True))
        for _ in range(7)
    ]
    assert found == [[provider.pk]] * 7
    if connection.vendor == "postgresql":
        statements = _prepared_statements()
        assert any('"partners_provider"."last_name" = $1' in sql for sql in statements)
    else:
        assert "server_side_binding" not in connection.settings_dict["OPTIONS"]


def test_a_prepared_statement_is_planned_for_its_values_so_partial_indexes_serve_it():
    """A generic plan (Postgres's choice after five runs) cannot use a partial index: the
    queue's count of open referrals read every referral with one. Plans stay custom."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SHOW plan_cache_mode")
            assert cursor.fetchone()[0] == "force_custom_plan"
    else:
        assert "options" not in connection.settings_dict["OPTIONS"]


TABLE = "core_test_replanning"


@pytest.fixture
def widened_table():
    """A table of its own (the other tests' tables stay as they are), and a way to change
    a column's type from another connection, as `migrate` in a deploy would."""
    import psycopg

    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TABLE core_test_replanning (id integer PRIMARY KEY, name varchar(10))"
        )
        cursor.execute("INSERT INTO core_test_replanning VALUES (1, 'Okafor')")

    def widen(length: int) -> None:
        with psycopg.connect(**connection.get_connection_params(), autocommit=True) as other:
            other.execute(f"ALTER TABLE {TABLE} ALTER COLUMN name TYPE varchar({length})")

    yield widen
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE core_test_replanning")


def _name() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT id, name FROM core_test_replanning WHERE id = %s", [1])
        return cursor.fetchone()[1]


# serialized_rollback, like every transactional test before the browser tests: the flush
# after it must not leave the roles post_migrate creates for a later serialized test to
# collide with.
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_prepared_statement_survives_a_migration_that_changes_its_columns(widened_table):
    from django.db import NotSupportedError, transaction

    from core.database import replan_after_schema_change

    if connection.vendor != "postgresql":
        # Nothing is prepared across queries on SQLite: nothing to replan.
        assert replan_after_schema_change not in connection.execute_wrappers
        return
    assert [_name() for _ in range(7)] == ["Okafor"] * 7
    assert any(TABLE in sql for sql in _prepared_statements())

    widened_table(20)
    # Outside a transaction, the query runs again with a fresh plan: nobody sees an error.
    assert _name() == "Okafor"
    assert not any(TABLE in sql for sql in _prepared_statements())

    assert [_name() for _ in range(7)] == ["Okafor"] * 7
    widened_table(30)
    # Inside one, the error stands (the transaction is lost) and the connection is let go
    # at the end of the request, so the next one starts without the stale statements.
    with pytest.raises(NotSupportedError), transaction.atomic():
        _name()
    connection.close_if_unusable_or_obsolete()
    assert connection.connection is None
    assert _name() == "Okafor"
