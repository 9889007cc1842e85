"""A big partner import is applied by a worker. Its task retried on the builtin
ConnectionError only, which the database never raises (django.db.OperationalError): a
database restart failed the import's task for good, and the import sat "applying" until
the sweep's patience ran out. It now retries on a lost database, having given back its
claim (the write is one transaction, so nothing was half written); a fault in the code is
not retried."""

from __future__ import annotations

import pytest
from django.db import InterfaceError, OperationalError

from partners.factories import make_npi
from partners.models import PartnerImport, Provider
from partners.spreadsheets import planning
from partners.tasks import apply_partner_import

pytestmark = pytest.mark.django_db

NPI = make_npi(7101)


def _queued() -> PartnerImport:
    return PartnerImport.objects.create(
        file_name="partners.csv",
        headers=["NPI", "First name", "Last name"],
        rows=[[NPI, "Ana", "Reyes"]],
        mapping={"0": "npi", "1": "first_name", "2": "last_name"},
        status=PartnerImport.Status.QUEUED,
    )


@pytest.mark.parametrize(
    "error",
    [
        OperationalError("server closed the connection unexpectedly"),
        InterfaceError("connection already closed"),
    ],
)
def test_an_import_retries_when_the_database_drops_and_imports_each_partner_once(
    monkeypatch, error
):
    queued = _queued()
    real_plan = planning.plan_import
    calls = []

    def plan_losing_the_database_once(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise error
        return real_plan(*args, **kwargs)

    monkeypatch.setattr(planning, "plan_import", plan_losing_the_database_once)
    result = apply_partner_import.apply(args=(queued.pk,))

    assert result.successful()
    assert len(calls) == 2
    queued.refresh_from_db()
    assert (queued.status, queued.attempts) == (PartnerImport.Status.APPLIED, 2)
    assert Provider.objects.filter(npi=NPI).count() == 1


def test_an_import_that_fails_in_the_code_is_not_retried(monkeypatch):
    queued = _queued()
    calls = []

    def broken_plan(*args, **kwargs):
        calls.append(1)
        raise TypeError("plan_import() got an unexpected keyword argument 'numbers'")

    monkeypatch.setattr(planning, "plan_import", broken_plan)
    result = apply_partner_import.apply(args=(queued.pk,))

    assert result.failed()
    assert len(calls) == 1
    queued.refresh_from_db()
    assert queued.attempts == 1
    assert not Provider.objects.filter(npi=NPI).exists()
