"""The audit trail is append-only in the database, not only in Django: raw SQL cannot
change or delete its rows, on SQLite (the default for tests) and on Postgres (CI,
production). Only Django's flush gets through, so test databases can still be emptied."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.db import IntegrityError, connection, transaction

from audit.models import PatientDataAccess
from audit.services import audit_record
from audit.triggers import audit_deletes_allowed

TABLE = "audit_patientdataaccess"


def test_the_sql_below_names_the_audit_table():
    assert PatientDataAccess._meta.db_table == TABLE


def _entry() -> PatientDataAccess:
    audit_record(action=PatientDataAccess.Action.VIEW, referral_ids=[4242])
    return PatientDataAccess.objects.get(referral_id=4242)


def _raw(sql: str, params: list | None = None) -> None:
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, params)


@pytest.mark.django_db
def test_a_raw_update_of_an_audit_row_is_refused_by_the_database():
    entry = _entry()
    with pytest.raises(IntegrityError, match="append-only"):
        _raw(
            "UPDATE audit_patientdataaccess SET referral_id = 1, action = 'list' WHERE id = %s",
            [entry.pk],
        )
    fresh = PatientDataAccess.objects.get(pk=entry.pk)
    assert (fresh.referral_id, fresh.action) == (4242, "view")


@pytest.mark.django_db
def test_a_raw_delete_of_audit_rows_is_refused_by_the_database():
    entry = _entry()
    with pytest.raises(IntegrityError, match="append-only"):
        _raw("DELETE FROM audit_patientdataaccess WHERE id = %s", [entry.pk])
    with pytest.raises(IntegrityError, match="append-only"):
        _raw("DELETE FROM audit_patientdataaccess")
    assert PatientDataAccess.objects.filter(pk=entry.pk).exists()


# Transactional: Postgres refuses TRUNCATE in a transaction that still has deferred
# foreign-key checks pending from the insert, which would hide what is tested here.
# serialized_rollback: the flush after this test must not leave post_migrate rows (roles)
# behind for a later serialized test to collide with, and must give back the data
# migrations' rows (taxonomy, letter templates) to the tests after it.
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_emptying_the_table_in_one_statement_is_refused_too():
    """TRUNCATE on Postgres (no row trigger sees it); SQLite has no TRUNCATE, and its
    DELETE without WHERE (its truncate optimisation) still fires the trigger."""
    _entry()
    sql = (
        "TRUNCATE audit_patientdataaccess"
        if connection.vendor == "postgresql"
        else "DELETE FROM audit_patientdataaccess"
    )
    with pytest.raises(IntegrityError, match="append-only"):
        _raw(sql)
    assert PatientDataAccess.objects.count() == 1


@pytest.mark.django_db
def test_the_flush_door_is_per_use_and_closes_behind_it():
    entry = _entry()
    with transaction.atomic():
        with audit_deletes_allowed(), connection.cursor() as cursor:
            cursor.execute("DELETE FROM audit_patientdataaccess WHERE id = %s", [entry.pk])
        assert not PatientDataAccess.objects.filter(pk=entry.pk).exists()
        second = _entry()
        with pytest.raises(IntegrityError, match="append-only"):
            _raw("DELETE FROM audit_patientdataaccess WHERE id = %s", [second.pk])
    # Updates never get through, door or not.
    with audit_deletes_allowed(), pytest.raises(IntegrityError, match="append-only"):
        _raw("UPDATE audit_patientdataaccess SET referral_id = 1 WHERE id = %s", [second.pk])


# serialized_rollback: the flush after this test must not leave post_migrate rows (roles)
# behind for a later serialized test to collide with, and must give back the data
# migrations' rows (taxonomy, letter templates) to the tests after it.
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_django_flush_still_empties_the_database():
    _entry()
    call_command("flush", interactive=False, verbosity=0, inhibit_post_migrate=True)
    assert not PatientDataAccess.objects.exists()


# serialized_rollback: the flush after this test must not leave post_migrate rows (roles)
# behind for a later serialized test to collide with, and must give back the data
# migrations' rows (taxonomy, letter templates) to the tests after it.
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_transactional_test_with_audit_rows_is_torn_down_by_flush():
    # pytest-django empties the database after this test with Django's flush (DELETE on
    # SQLite, TRUNCATE on Postgres); the triggers must let that through or the teardown
    # errors.
    _entry()
    assert PatientDataAccess.objects.count() == 1


@pytest.mark.django_db
def test_the_next_test_starts_from_an_empty_audit_table():
    assert not PatientDataAccess.objects.exists()


@pytest.mark.django_db
def test_the_audit_page_never_counts_the_whole_trail(client_for, manager, monkeypatch):
    from django.test.utils import CaptureQueriesContext
    from django.urls import reverse

    from core import pagination

    audit_record(action=PatientDataAccess.Action.VIEW, referral_ids=range(1, 8), user=manager)
    # A cap of 5 over 7 rows: the page says "over 5" instead of counting them all.
    real = pagination.CappedPaginator.__init__
    monkeypatch.setattr(
        pagination.CappedPaginator,
        "__init__",
        lambda self, object_list, per_page, *, cap: real(self, object_list, per_page, cap=5),
    )
    with CaptureQueriesContext(connection) as queries:
        response = client_for(manager).get(reverse("audit:list"))
    assert response.status_code == 200
    counts = [q["sql"] for q in queries if "COUNT(" in q["sql"].upper() and TABLE in q["sql"]]
    assert counts, "the page counts its rows"
    assert all("LIMIT" in sql.upper() for sql in counts)
    assert response.context["page"].paginator.is_capped
