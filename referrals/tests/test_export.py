from __future__ import annotations

import csv
import io

import pytest
from django.urls import reverse
from django.utils import timezone

from audit.models import PatientDataAccess
from partners.factories import ProviderFactory
from referrals.factories import ReferralFactory
from referrals.services.workflow import referral_log

pytestmark = pytest.mark.django_db


def _logged(**kwargs):
    return referral_log(referral=ReferralFactory.build(**kwargs), actor=None)


def _rows(response):
    body = b"".join(response.streaming_content).decode("utf-8-sig")
    return list(csv.reader(io.StringIO(body)))


def test_a_manager_exports_the_filtered_queue_and_every_row_is_audited(client_for, manager):
    urgent = [_logged(provider=ProviderFactory(), urgency="urgent") for _ in range(3)]
    _logged(provider=ProviderFactory(), urgency="routine")
    response = client_for(manager).get(reverse("referrals:export"), {"urgency": "urgent"})
    assert response["Content-Disposition"].startswith("attachment;")
    header, *rows = _rows(response)
    assert header[0] == "Referral #" and "Patient last name" in header
    assert sorted(int(row[0]) for row in rows) == sorted(r.pk for r in urgent)
    # Labels and local times a reader understands, not codes and UTC.
    first = dict(zip(header, rows[0], strict=True))
    assert (first["Direction"], first["Status"], first["Urgency"]) == (
        "Inbound (partner → us)",
        "Received",
        "Urgent",
    )
    referral = next(r for r in urgent if r.pk == int(rows[0][0]))
    assert first["Received"] == f"{timezone.localtime(referral.received_at):%Y-%m-%d %H:%M}"
    exported = PatientDataAccess.objects.filter(action="export", user=manager)
    assert sorted(exported.values_list("referral_id", flat=True)) == sorted(r.pk for r in urgent)


def test_cells_that_a_spreadsheet_would_run_as_formulas_are_defused(client_for, manager):
    _logged(provider=ProviderFactory(), patient_last_name='=HYPERLINK("http://x")')
    _, row = _rows(client_for(manager).get(reverse("referrals:export")))
    assert '\'=HYPERLINK("http://x")' in row


@pytest.mark.parametrize("role", ["liaison", "no_role_user"])
def test_roles_without_patient_access_cannot_export(client_for, request, role):
    _logged(provider=ProviderFactory())
    user = request.getfixturevalue(role)
    assert client_for(user).get(reverse("referrals:export")).status_code == 403
    assert not PatientDataAccess.objects.exists()


def test_a_large_export_is_audited_chunk_by_chunk(client_for, coordinator, monkeypatch):
    monkeypatch.setattr("referrals.views.export.EXPORT_CHUNK", 2)
    referrals = [_logged(provider=ProviderFactory()) for _ in range(5)]
    _, *rows = _rows(client_for(coordinator).get(reverse("referrals:export")))
    assert len(rows) == 5
    assert PatientDataAccess.objects.filter(action="export").count() == 5
    assert {int(row[0]) for row in rows} == {r.pk for r in referrals}


def test_the_export_from_a_later_queue_page_has_the_queues_open_referrals_only(
    client_for, coordinator
):
    still_open = _logged(provider=ProviderFactory())
    closed = _logged(provider=ProviderFactory())
    closed.status = "closed"
    closed.save(update_fields=["status"])
    # What the queue's own "Next" and Export links carry: a page, no filter.
    _, *rows = _rows(client_for(coordinator).get(reverse("referrals:export"), {"page": "2"}))
    assert [int(row[0]) for row in rows] == [still_open.pk]
    # The form sent with "Open only" unticked asks for every referral.
    _, *rows = _rows(client_for(coordinator).get(reverse("referrals:export"), {"number": ""}))
    assert sorted(int(row[0]) for row in rows) == sorted([still_open.pk, closed.pk])


@pytest.mark.parametrize(
    "query",
    [
        {"status": "zzz"},
        {"provider": "abc"},
        {"received_after": "2026-11-01", "received_before": "2026-10-01"},
    ],
)
def test_an_export_whose_filters_cannot_be_read_exports_nobody(client_for, coordinator, query):
    _logged(provider=ProviderFactory())
    response = client_for(coordinator).get(reverse("referrals:export"), query, follow=True)
    page = response.content.decode()
    assert response.redirect_chain[0][0].startswith(reverse("referrals:list") + "?")
    assert "Nothing was exported: these filters could not be read." in page
    assert not PatientDataAccess.objects.filter(action="export").exists()


def test_the_export_names_the_referral_a_duplicate_repeats(client_for, manager):
    from referrals.services.duplicates import referral_mark_duplicate

    provider = ProviderFactory()
    original = _logged(provider=provider)
    copy = _logged(
        provider=provider,
        patient_last_name=original.patient_last_name,
        patient_dob=original.patient_dob,
    )
    referral_mark_duplicate(referral=copy, original=original, actor=None)
    # The queue's own filter: open referrals only unless asked for more.
    export = client_for(manager).get(
        reverse("referrals:export"), {"status": ["received", "cancelled"]}
    )
    header, *rows = _rows(export)
    by_number = {row[0]: dict(zip(header, row, strict=True)) for row in rows}
    assert by_number[str(copy.pk)]["Duplicate of"] == str(original.pk)
    assert by_number[str(copy.pk)]["Status"] == "Cancelled"
    assert by_number[str(original.pk)]["Duplicate of"] == ""
