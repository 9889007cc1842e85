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
    """Postgres skips parsing and planning a prepared statement; the rows must not change.
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
