from __future__ import annotations

import json
from datetime import datetime

import pytest
from django.contrib.admin.sites import site
from django.db import connection
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from audit.models import AppendOnlyError, PatientDataAccess
from audit.services import audit_record
from core.factories import UserFactory
from partners.factories import ProviderFactory
from referrals.factories import ReferralFactory
from referrals.models import Referral
from referrals.services.workflow import referral_log

pytestmark = pytest.mark.django_db

Action = PatientDataAccess.Action


def _logged(**kwargs):
    return referral_log(referral=ReferralFactory.build(**kwargs), actor=None)


def _form_data(referral, **overrides):
    data = {
        "direction": referral.direction,
        "provider": referral.provider_id,
        "channel": referral.channel,
        "urgency": referral.urgency,
        "received_at": timezone.localtime(referral.received_at).strftime("%Y-%m-%dT%H:%M"),
        "patient_first_name": referral.patient_first_name,
        "patient_last_name": referral.patient_last_name,
        "patient_dob": referral.patient_dob.isoformat(),
        "patient_phone": referral.patient_phone,
        "reason": referral.reason,
    }
    return {**data, **overrides}


def test_a_coordinator_reading_a_referral_is_recorded_with_who_what_and_when(
    client_for, coordinator
):
    referral = _logged(provider=ProviderFactory())
    client_for(coordinator).get(referral.get_absolute_url(), REMOTE_ADDR="10.1.2.3")
    entry = PatientDataAccess.objects.get(action=Action.VIEW)
    assert entry.user == coordinator
    assert entry.referral_id == referral.pk
    assert "patient_last_name" in entry.fields
    assert entry.ip_address == "10.1.2.3"
    assert entry.at is not None


def test_a_liaison_who_sees_only_initials_leaves_no_patient_data_read(client_for, liaison):
    # A name no provider or office can share by chance.
    referral = _logged(provider=ProviderFactory(owner=liaison), patient_last_name="Quixotrel")
    response = client_for(liaison).get(referral.get_absolute_url())
    assert response.status_code == 200
    assert referral.patient_last_name not in response.content.decode()
    assert not PatientDataAccess.objects.exists()


def test_the_work_queue_records_the_patients_it_listed(client_for, manager):
    referrals = [_logged(provider=ProviderFactory()) for _ in range(3)]
    client_for(manager).get(reverse("referrals:list"))
    listed = PatientDataAccess.objects.filter(action=Action.LIST, user=manager)
    assert sorted(listed.values_list("referral_id", flat=True)) == sorted(r.pk for r in referrals)


def test_changing_patient_details_records_the_field_names_but_never_the_values(
    client_for, coordinator
):
    referral = _logged(provider=ProviderFactory())
    response = client_for(coordinator).post(
        reverse("referrals:update", args=[referral.pk]),
        _form_data(referral, patient_phone="(402) 555-7777", urgency="urgent"),
    )
    assert response.status_code == 302
    entry = PatientDataAccess.objects.get(action=Action.CHANGE)
    assert entry.fields == ["patient_phone"]
    stored = json.dumps(
        list(PatientDataAccess.objects.values("fields", "request_id", "ip_address"))
    )
    assert "555-7777" not in stored
    assert referral.patient_last_name not in stored


def test_a_change_that_touches_no_patient_field_is_not_a_patient_data_change(
    client_for, coordinator
):
    referral = _logged(provider=ProviderFactory())
    client_for(coordinator).post(
        reverse("referrals:update", args=[referral.pk]), _form_data(referral, urgency="stat")
    )
    assert not PatientDataAccess.objects.filter(action=Action.CHANGE).exists()


def test_logging_a_referral_records_its_creation(client_for, coordinator):
    provider = ProviderFactory()
    data = {
        "direction": "inbound",
        "provider": provider.pk,
        "channel": "phone",
        "urgency": "routine",
        "received_at": "2026-11-20T09:15",
        "patient_first_name": "Ruth",
        "patient_last_name": "Olsen",
        "patient_dob": "1950-04-02",
        "reason": "Knee",
    }
    response = client_for(coordinator).post(reverse("referrals:create"), data)
    assert response.status_code == 302
    assert PatientDataAccess.objects.get(action=Action.CREATE).user == coordinator


def test_audit_rows_cannot_be_changed_or_deleted():
    referral = _logged(provider=ProviderFactory())
    request = RequestFactory().get("/", HTTP_X_REQUEST_ID="abc-123")
    audit_record(action=Action.EXPORT, referral_ids=[referral.pk], request=request)
    entry = PatientDataAccess.objects.get()
    assert entry.request_id == "abc-123"
    entry.action = Action.VIEW
    with pytest.raises(AppendOnlyError):
        entry.save()
    with pytest.raises(AppendOnlyError):
        entry.delete()
    with pytest.raises(AppendOnlyError):
        PatientDataAccess.objects.update(action=Action.VIEW)
    with pytest.raises(AppendOnlyError):
        PatientDataAccess.objects.all().delete()
    assert PatientDataAccess.objects.get().action == Action.EXPORT


def test_the_trail_outlives_a_deleted_referral(client_for, manager):
    referral = _logged(provider=ProviderFactory())
    client = client_for(manager)
    client.get(referral.get_absolute_url())
    client.post(reverse("referrals:delete", args=[referral.pk]))
    trail = PatientDataAccess.objects.filter(referral_id=referral.pk).order_by("at", "pk")
    assert list(trail.values_list("action", flat=True)) == ["view", "delete"]


def test_the_admin_shows_the_trail_read_only(administrator):
    model_admin = site._registry[PatientDataAccess]
    request = RequestFactory().get("/")
    request.user = administrator
    assert not model_admin.has_add_permission(request)
    assert not model_admin.has_change_permission(request)
    assert not model_admin.has_delete_permission(request)


@pytest.mark.parametrize(
    ("role", "status"),
    [
        ("manager", 200),
        ("administrator", 200),
        ("coordinator", 403),
        ("liaison", 403),
        ("no_role_user", 403),
    ],
)
def test_only_managers_and_administrators_read_the_audit_page(client_for, request, role, status):
    user = request.getfixturevalue(role)
    assert client_for(user).get(reverse("audit:list")).status_code == status


def test_the_audit_page_filters_by_person_referral_and_action(client_for, manager):
    first = _logged(provider=ProviderFactory())
    second = _logged(provider=ProviderFactory())
    other = UserFactory(username="someone", first_name="Sam", last_name="Okafor")
    audit_record(action=Action.VIEW, referral_ids=[first.pk], user=other)
    audit_record(
        action=Action.CHANGE, referral_ids=[first.pk], user=other, fields=["patient_last_name"]
    )
    audit_record(action=Action.DOWNLOAD, referral_ids=[second.pk], user=manager)
    client = client_for(manager)
    page = client.get(reverse("audit:list"), {"user": other.pk}).content.decode()
    assert f"#{first.pk}<" in page and f"#{second.pk}<" not in page
    # People by name in the filter as in the rows; fields as the referral page names them.
    assert f'<option value="{other.pk}" selected>Sam Okafor</option>' in page
    assert "patient last name" in page and "patient_last_name" not in page
    page = client.get(reverse("audit:list"), {"action": "download"}).content.decode()
    assert f"#{second.pk}<" in page and f"#{first.pk}<" not in page
    page = client.get(reverse("audit:list"), {"referral": second.pk}).content.decode()
    assert f"#{second.pk}<" in page and f"#{first.pk}<" not in page
    bad = client.get(reverse("audit:list"), {"referral": "abc", "after": "yesterday"})
    assert bad.status_code == 200
    assert "These filters were left out" in bad.content.decode()
    # From after To: said, rather than an empty trail that looks like nobody read anything.
    reversed_dates = client.get(
        reverse("audit:list"), {"after": "2026-11-20", "before": "2026-11-01"}
    ).content.decode()
    assert "To: This date is before “From” (Nov 20, 2026): nothing can match both." in (
        reversed_dates
    )


def test_the_audit_page_dates_are_the_practice_s_days_read_through_the_time_index(
    client_for, manager, monkeypatch
):
    referral = _logged(provider=ProviderFactory())
    # 11:30 pm in New York on Nov 20 is 4:30 am on Nov 21 by the server's UTC clock.
    late = timezone.make_aware(datetime(2026, 11, 20, 23, 30))
    monkeypatch.setattr(timezone, "now", lambda: late)
    audit_record(action=Action.VIEW, referral_ids=[referral.pk], user=manager)
    monkeypatch.undo()
    client = client_for(manager)
    url = reverse("audit:list")
    assert f"#{referral.pk}<" in client.get(url, {"before": "2026-11-20"}).content.decode()
    assert f"#{referral.pk}<" in client.get(url, {"after": "2026-11-20"}).content.decode()
    assert f"#{referral.pk}<" not in client.get(url, {"after": "2026-11-21"}).content.decode()
    assert f"#{referral.pk}<" not in client.get(url, {"before": "2026-11-19"}).content.decode()
    # A date turned into a range of the indexed time, not each row's time into a date:
    # on a trail of millions, "To" an old date read every newer row first (seconds).
    with CaptureQueriesContext(connection) as queries:
        client.get(url, {"after": "2026-11-01", "before": "2026-11-20"})
    trail = [q["sql"] for q in queries if "audit_patientdataaccess" in q["sql"]]
    assert trail and not any("AT TIME ZONE" in sql.upper() for sql in trail)
    # The calendar's ends are no server error.
    for dates in ({"before": "9999-12-31"}, {"after": "0001-01-01"}):
        assert f"#{referral.pk}<" in client.get(url, dates).content.decode()


def test_the_audit_page_says_and_filters_which_reads_came_through_an_api_token(client_for, manager):
    by_page, by_api = (_logged(provider=ProviderFactory()) for _ in range(2))
    reader = UserFactory(username="reader", first_name="Rhea", last_name="Voss")
    audit_record(action=Action.VIEW, referral_ids=[by_page.pk], user=reader)
    audit_record(
        action=Action.VIEW,
        referral_ids=[by_api.pk],
        user=reader,
        source=PatientDataAccess.Source.API,
    )
    client = client_for(manager)
    page = client.get(reverse("audit:list"), {"user": reader.pk}).content.decode()
    rows = {pk: page.split(f"#{pk}<")[0].rsplit("<tr>", 1)[1] for pk in (by_page.pk, by_api.pk)}
    assert "API token (REST or FHIR)" in rows[by_api.pk]
    assert "API token" not in rows[by_page.pk]
    page = client.get(reverse("audit:list"), {"source": "api"}).content.decode()
    assert f"#{by_api.pk}<" in page and f"#{by_page.pk}<" not in page


@pytest.mark.parametrize(
    ("typed", "said"),
    [
        ("99999999999999999999999", "No referral has that number."),
        ("0", "No referral has that number."),
        ("1.5", "A referral number is a whole number."),
    ],
)
def test_a_referral_number_that_cannot_exist_is_refused_in_words(client_for, manager, typed, said):
    page = client_for(manager).get(reverse("audit:list"), {"referral": typed}).content.decode()
    assert said in page
    assert "less than or equal to" not in page and "4611686018427387904" not in page


def test_the_audit_page_runs_the_same_queries_for_3_and_60_entries(
    client_for, manager, django_assert_num_queries
):
    client = client_for(manager)
    url = reverse("audit:list")
    users = [UserFactory() for _ in range(3)]
    referral = _logged(provider=ProviderFactory())
    for user in users:
        audit_record(action=Action.VIEW, referral_ids=[referral.pk], user=user)
    client.get(url)
    with django_assert_num_queries(6) as small:
        client.get(url)
    for user in users:
        audit_record(action=Action.VIEW, referral_ids=[referral.pk] * 19, user=user)
    with django_assert_num_queries(len(small.captured_queries)):
        response = client.get(url)
    assert "Page 1 of 2" in response.content.decode()


def test_the_dashboard_records_the_patients_whose_names_it_shows(client_for, manager):
    shown = [_logged(provider=ProviderFactory()) for _ in range(3)]
    response = client_for(manager).get(reverse("core:dashboard"))
    assert shown[0].patient_last_name in response.content.decode()
    listed = PatientDataAccess.objects.filter(action=Action.LIST, user=manager)
    assert {entry.referral_id for entry in listed} == {referral.pk for referral in shown}
    assert all(entry.fields == ["patient_first_name", "patient_last_name"] for entry in listed)


def test_partner_360_records_the_patients_named_on_its_timeline(client_for, manager, liaison):
    partner = ProviderFactory(owner=liaison)
    named = [_logged(provider=partner, patient_last_name="Quixotrel") for _ in range(2)]
    elsewhere = _logged(provider=ProviderFactory())
    response = client_for(manager).get(partner.get_absolute_url())
    assert "Quixotrel" in response.content.decode()
    listed = PatientDataAccess.objects.filter(action=Action.LIST, user=manager)
    assert {entry.referral_id for entry in listed} == {referral.pk for referral in named}
    assert elsewhere.pk not in {entry.referral_id for entry in listed}

    # A liaison sees initials only there: nothing read, nothing written.
    response = client_for(liaison).get(partner.get_absolute_url())
    assert response.status_code == 200
    assert "Quixotrel" not in response.content.decode()
    assert not PatientDataAccess.objects.filter(user=liaison).exists()


def test_referring_a_patient_out_records_its_creation(client_for, coordinator):
    specialist = ProviderFactory(in_network=True)
    data = {
        "provider": specialist.pk,
        "channel": "fax",
        "urgency": "routine",
        "received_at": "2026-11-20T09:15",
        "patient_first_name": "Ruth",
        "patient_last_name": "Olsen",
        "patient_dob": "1950-04-02",
        "reason": "Cardiology consult",
    }
    response = client_for(coordinator).post(reverse("referrals:refer_out"), data)
    assert response.status_code == 302
    entry = PatientDataAccess.objects.get(action=Action.CREATE)
    assert entry.user == coordinator
    assert entry.referral_id == Referral.objects.get().pk


def test_the_admin_list_of_the_trail_never_counts_or_dates_the_whole_trail(
    client_for, administrator
):
    """On a trail of millions, the admin's exact count and its date hierarchy read every
    row on each visit: it counts at most its cap, and has no date hierarchy."""
    referral = _logged(provider=ProviderFactory())
    audit_record(action=Action.VIEW, referral_ids=[referral.pk], user=administrator)
    client = client_for(administrator)
    url = reverse("admin:audit_patientdataaccess_changelist")
    client.get(url)
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200
    trail = [q["sql"] for q in queries if "audit_patientdataaccess" in q["sql"]]
    counts = [sql for sql in trail if "COUNT(" in sql.upper()]
    assert counts and all("LIMIT" in sql.upper() for sql in counts), counts
    assert not any("DISTINCT" in sql.upper() and "TRUNC" in sql.upper() for sql in trail)


@pytest.mark.parametrize(
    "url",
    [
        lambda referral: referral.get_absolute_url(),
        lambda referral: reverse("referrals:update", args=[referral.pk]),
        lambda referral: reverse("referrals:list"),
        lambda referral: reverse("core:dashboard"),
        lambda referral: referral.provider.get_absolute_url(),
    ],
    ids=["referral page", "edit form", "work queue", "dashboard", "partner 360"],
)
def test_a_head_request_to_a_patient_page_writes_no_row(client_for, manager, url):
    """HEAD runs the view as GET does, but the page, and the patient data in it, goes to
    nobody (the test client, runserver and gunicorn all drop the body): every page alike
    writes no row for it (the referral page wrote one, its edit form did not)."""
    referral = _logged(provider=ProviderFactory())
    client = client_for(manager)
    response = client.head(url(referral))
    assert response.status_code == 200
    assert response.content == b""
    assert not PatientDataAccess.objects.exists()
    client.get(url(referral))
    assert PatientDataAccess.objects.filter(referral_id=referral.pk, user=manager).exists()


def test_a_head_request_skips_only_reads_a_change_is_recorded_whatever_the_method():
    referral = _logged(provider=ProviderFactory())
    head = RequestFactory().head("/")
    for action in (Action.VIEW, Action.LIST, Action.DOWNLOAD, Action.EXPORT):
        assert audit_record(action=action, referral_ids=[referral.pk], request=head) == 0
    assert not PatientDataAccess.objects.exists()
    assert audit_record(action=Action.CHANGE, referral_ids=[referral.pk], request=head) == 1
    assert audit_record(action=Action.VIEW, referral_ids=[referral.pk], request=None) == 1
