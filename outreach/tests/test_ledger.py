import csv
import io
import re
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from core.factories import UserFactory
from outreach.factories import PlannedVisitFactory
from outreach.ledger import share_per_head
from outreach.models import Activity, ActivityShare, ComplianceLimit, Task
from outreach.services.activities import activity_log
from outreach.services.compliance import ComplianceLimitExceeded
from partners.factories import OrganizationFactory, ProviderFactory, StaffMemberFactory

pytestmark = pytest.mark.django_db

YEAR = timezone.localdate().year


def lunch(cost, **extra):
    return Activity(
        kind=Activity.Kind.LUNCH, cost=Decimal(cost), occurred_at=timezone.now(), **extra
    )


def test_a_share_is_the_cost_per_head_rounded_up_to_the_cent():
    assert share_per_head(cost=Decimal("120.00"), headcount=6) == Decimal("20.00")
    assert share_per_head(cost=Decimal("100.00"), headcount=3) == Decimal("33.34")
    assert share_per_head(cost=None, headcount=3) == Decimal("0.00")
    assert share_per_head(cost=Decimal("50"), headcount=0) == Decimal("0.00")


def test_staff_count_for_the_headcount_but_only_physicians_accrue(liaison):
    office = OrganizationFactory()
    doctors = ProviderFactory.create_batch(2, organization=office)
    staff = StaffMemberFactory.create_batch(4, organization=office)
    activity = activity_log(
        activity=lunch("120.00", organization=office), providers=doctors, staff=staff, actor=liaison
    )
    shares = ActivityShare.objects.filter(activity=activity)
    assert sorted((s.provider_id, s.year, s.amount) for s in shares) == sorted(
        (d.pk, YEAR, Decimal("20.00")) for d in doctors
    )


def test_a_visit_without_a_cost_writes_no_ledger_rows(liaison):
    doctor = ProviderFactory()
    activity_log(
        activity=Activity(kind=Activity.Kind.VISIT, occurred_at=timezone.now()),
        providers=[doctor],
        staff=[],
        actor=liaison,
    )
    assert not ActivityShare.objects.exists()


def test_a_share_over_the_limit_is_refused_and_nothing_is_saved(liaison):
    ComplianceLimit.objects.create(year=YEAR, amount=Decimal("100.00"))
    doctor = ProviderFactory()
    activity_log(activity=lunch("90.00"), providers=[doctor], staff=[], actor=liaison)
    with pytest.raises(ComplianceLimitExceeded) as refused:
        activity_log(activity=lunch("20.00"), providers=[doctor], staff=[], actor=liaison)
    assert "$90.00 so far + $20.00 = $110.00 of $100.00" in str(refused.value)
    assert Activity.objects.count() == 1
    assert ActivityShare.objects.count() == 1


def test_a_manager_may_go_over_the_limit_with_a_reason(manager, liaison):
    ComplianceLimit.objects.create(year=YEAR, amount=Decimal("100.00"))
    doctor = ProviderFactory()
    activity_log(activity=lunch("90.00"), providers=[doctor], staff=[], actor=liaison)
    activity_log(
        activity=lunch("20.00", limit_override_reason="Retirement dinner, approved by counsel"),
        providers=[doctor],
        staff=[],
        actor=manager,
    )
    assert ActivityShare.objects.filter(provider=doctor).count() == 2


def test_a_liaison_cannot_override_the_limit_even_with_a_reason(liaison):
    ComplianceLimit.objects.create(year=YEAR, amount=Decimal("50.00"))
    doctor = ProviderFactory()
    with pytest.raises(PermissionDenied) as refused:
        activity_log(
            activity=lunch("60.00", limit_override_reason="please"),
            providers=[doctor],
            staff=[],
            actor=liaison,
        )
    assert "Only a manager" in str(refused.value)
    assert not Activity.objects.exists()


def test_last_years_shares_do_not_count_this_year(liaison):
    ComplianceLimit.objects.create(year=YEAR, amount=Decimal("100.00"))
    doctor = ProviderFactory()
    last_year = timezone.now().replace(year=YEAR - 1)
    activity_log(
        activity=Activity(kind=Activity.Kind.GIFT, cost=Decimal("95"), occurred_at=last_year),
        providers=[doctor],
        staff=[],
        actor=liaison,
    )
    activity_log(activity=lunch("95.00"), providers=[doctor], staff=[], actor=liaison)
    assert sorted(ActivityShare.objects.values_list("year", flat=True)) == [YEAR - 1, YEAR]


def _visit_post(doctor, cost, **extra):
    data = {
        "kind": "lunch",
        "occurred_at": timezone.localtime().strftime("%Y-%m-%dT%H:%M"),
        "providers": [doctor.pk],
        "notes": "Lunch with the team",
        "cost": cost,
    }
    data.update(extra)
    return data


def test_the_log_form_shows_each_physicians_total_for_the_year(client_for, liaison):
    ComplianceLimit.objects.create(year=YEAR, amount=Decimal("500.00"))
    office = OrganizationFactory()
    doctor = ProviderFactory(
        organization=office, first_name="Ana", last_name="Reyes", credential="MD"
    )
    activity_log(activity=lunch("125.00"), providers=[doctor], staff=[], actor=liaison)
    visit = PlannedVisitFactory(liaison=liaison, organization=office)
    page = client_for(liaison).get(reverse("outreach:planned_visit_log", args=[visit.pk]))
    assert f"Ana Reyes, MD · $125.00 of $500.00 in {YEAR} (25%)" in page.content.decode()


def test_a_form_sent_back_shows_the_totals_of_the_year_the_activity_was_in(client_for, liaison):
    ComplianceLimit.objects.create(year=YEAR - 1, amount=Decimal("400.00"))
    office = OrganizationFactory()
    doctor = ProviderFactory(
        organization=office, first_name="Ana", last_name="Reyes", credential="MD"
    )
    december = timezone.make_aware(timezone.datetime(YEAR - 1, 12, 15, 12, 0))
    activity_log(
        activity=Activity(kind=Activity.Kind.LUNCH, cost=Decimal("100"), occurred_at=december),
        providers=[doctor],
        staff=[],
        actor=liaison,
    )
    visit = PlannedVisitFactory(liaison=liaison, organization=office)
    # Last December's lunch logged late, sent back for a next step due before it.
    page = client_for(liaison).post(
        reverse("outreach:planned_visit_log", args=[visit.pk]),
        _visit_post(
            doctor,
            "20.00",
            occurred_at=f"{YEAR - 1}-12-20T12:30",
            next_step="Send the menu",
            next_step_due=f"{YEAR - 1}-12-01",
        ),
    )
    body = page.content.decode()
    assert "is-invalid" in body
    assert f"Ana Reyes, MD · $100.00 of $400.00 in {YEAR - 1} (25%)" in body


def test_the_form_warns_once_a_physician_reaches_80_percent(client_for, liaison):
    ComplianceLimit.objects.create(year=YEAR, amount=Decimal("100.00"))
    office = OrganizationFactory()
    doctor = ProviderFactory(organization=office, owner=liaison)
    visit = PlannedVisitFactory(liaison=liaison, organization=office)
    response = client_for(liaison).post(
        reverse("outreach:planned_visit_log", args=[visit.pk]),
        _visit_post(doctor, "85.00"),
        follow=True,
    )
    assert f"{doctor.display_name} is at $85.00 of the $100.00 limit for {YEAR} (85%)" in (
        response.content.decode()
    )


def test_the_form_refuses_a_share_over_the_limit_and_keeps_what_was_typed(client_for, liaison):
    ComplianceLimit.objects.create(year=YEAR, amount=Decimal("100.00"))
    office = OrganizationFactory()
    doctor = ProviderFactory(organization=office, owner=liaison)
    activity_log(activity=lunch("70.00"), providers=[doctor], staff=[], actor=liaison)
    visit = PlannedVisitFactory(liaison=liaison, organization=office)
    response = client_for(liaison).post(
        reverse("outreach:planned_visit_log", args=[visit.pk]),
        _visit_post(doctor, "45.00", notes="Brought sandwiches"),
        HTTP_HX_REQUEST="true",
    )
    body = response.content.decode()
    assert response.status_code == 200
    assert "over the" in body and "gifts and meals limit" in body
    assert "ask a manager to log it with a reason" in body
    assert "Brought sandwiches" in body
    assert Activity.objects.count() == 1
    # A liaison is not offered the override field at all.
    assert "limit_override_reason" not in body


def test_a_lunch_posted_again_after_a_lost_response_is_logged_and_charged_once(client_for, liaison):
    ComplianceLimit.objects.create(year=YEAR, amount=Decimal("500"))
    office = OrganizationFactory()
    doctor = ProviderFactory(organization=office, owner=liaison)
    client = client_for(liaison)
    url = reverse("outreach:activity_create") + f"?provider={doctor.pk}"
    form = client.get(url).content.decode()
    # The form as the phone sends it, the hidden fields it was drawn with included.
    hidden = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', form))
    hidden.pop("csrfmiddlewaretoken", None)
    data = {
        **hidden,
        "kind": "lunch",
        "occurred_at": timezone.localtime().strftime("%Y-%m-%dT%H:%M"),
        "providers": [doctor.pk],
        "cost": "300.00",
        "next_step": "Bring the MRI hours",
    }
    first = client.post(url, data, HTTP_HX_REQUEST="true")
    # The page says "Retrying is safe" when the answer did not come in time.
    again = client.post(url, data, HTTP_HX_REQUEST="true")

    assert (first.status_code, again.status_code) == (204, 204)
    assert again["HX-Redirect"] == doctor.get_absolute_url()
    assert Activity.objects.count() == 1
    assert [share.amount for share in ActivityShare.objects.all()] == [Decimal("300.00")]
    assert Task.objects.count() == 1
    # A new form is a new activity.
    fresh = dict(
        re.findall(
            r'<input type="hidden" name="(\w+)" value="([^"]*)"', client.get(url).content.decode()
        )
    )
    fresh.pop("csrfmiddlewaretoken", None)
    assert client.post(url, {**data, **fresh, "cost": ""}).status_code == 302
    assert Activity.objects.count() == 2


def test_a_cost_with_nobody_attending_is_refused(client_for, liaison):
    office = OrganizationFactory()
    visit = PlannedVisitFactory(liaison=liaison, organization=office)
    response = client_for(liaison).post(
        reverse("outreach:planned_visit_log", args=[visit.pk]),
        {
            "kind": "gift",
            "occurred_at": timezone.localtime().strftime("%Y-%m-%dT%H:%M"),
            "cost": "40",
        },
    )
    assert "Tick who attended" in response.content.decode()
    assert not Activity.objects.exists()


@pytest.mark.parametrize("cost", ["-5", "abc", "1e400", "12345678901"])
def test_a_nonsense_cost_is_a_field_error_not_a_crash(client_for, liaison, cost):
    office = OrganizationFactory()
    doctor = ProviderFactory(organization=office)
    visit = PlannedVisitFactory(liaison=liaison, organization=office)
    response = client_for(liaison).post(
        reverse("outreach:planned_visit_log", args=[visit.pk]), _visit_post(doctor, cost)
    )
    assert response.status_code == 200
    assert "nothing has been saved yet" in response.content.decode()
    assert not Activity.objects.exists()


def test_the_report_lists_every_physicians_total_with_the_share_of_the_limit(
    client_for, manager, liaison
):
    ComplianceLimit.objects.create(year=YEAR, amount=Decimal("200.00"))
    big = ProviderFactory(last_name="Aaronson", first_name="Big")
    small = ProviderFactory(last_name="Zimmer", first_name="Small")
    activity_log(activity=lunch("180.00"), providers=[big], staff=[], actor=liaison)
    activity_log(activity=lunch("20.00"), providers=[small], staff=[], actor=liaison)
    client = client_for(manager)
    page = client.get(reverse("outreach:compliance_report")).content.decode()
    assert page.index("Aaronson") < page.index("Zimmer")
    assert "$180.00" in page and "90%" in page and "10%" in page
    by_name = client.get(reverse("outreach:compliance_report") + "?sort=total").content.decode()
    assert by_name.index("Zimmer") < by_name.index("Aaronson")
    export = client.get(reverse("outreach:compliance_report") + f"?year={YEAR}&export=csv")
    assert export["Content-Type"] == "text/csv; charset=utf-8"
    body = b"".join(export.streaming_content)
    assert body.startswith("\ufeff".encode())  # so Excel reads it as UTF-8
    rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))
    assert rows[0] == [
        "NPI",
        "Provider",
        "Office",
        "Year",
        "Total",
        "Limit",
        "Limit set for",
        "Percent of limit",
    ]
    assert rows[1][1:] == [
        big.display_name,
        big.organization.name,
        str(YEAR),
        "180.00",
        "200.00",
        str(YEAR),
        "90",
    ]
    other_year = client.get(reverse("outreach:compliance_report") + f"?year={YEAR - 1}")
    assert "No meals or gifts logged" in other_year.content.decode()


def test_the_report_is_for_managers_only(client_for, liaison, coordinator, manager):
    url = reverse("outreach:compliance_report")
    assert client_for(liaison).get(url).status_code == 403
    assert client_for(coordinator).get(url).status_code == 403
    assert client_for(manager).get(url).status_code == 200


def test_the_report_runs_the_same_queries_for_two_physicians_or_twenty(
    client_for, manager, liaison, django_assert_num_queries
):
    ComplianceLimit.objects.create(year=YEAR, amount=Decimal("500.00"))
    client = client_for(manager)
    activity_log(
        activity=lunch("100.00"), providers=ProviderFactory.create_batch(2), staff=[], actor=liaison
    )

    def count():
        with CaptureQueriesContext(connection) as queries:
            assert client.get(reverse("outreach:compliance_report")).status_code == 200
        return len(queries)

    count()  # the first page view after signing in also records the session's activity
    small = count()
    activity_log(
        activity=lunch("180.00"),
        providers=ProviderFactory.create_batch(18),
        staff=[],
        actor=liaison,
    )
    assert count() == small
    with django_assert_num_queries(small):
        client.get(reverse("outreach:compliance_report"))


def test_a_manager_sets_the_yearly_limit_and_bad_input_is_refused(client_for, manager, liaison):
    client = client_for(manager)
    url = reverse("outreach:compliance_limit_save")
    client.post(url, {"year": YEAR, "amount": "519.00"})
    client.post(url, {"year": YEAR, "amount": "530.00"})
    assert ComplianceLimit.objects.get(year=YEAR).amount == Decimal("530.00")
    response = client.post(url, {"year": "soon", "amount": "-3"}, follow=True)
    assert response.status_code == 200
    assert ComplianceLimit.objects.count() == 1
    assert client_for(liaison).post(url, {"year": YEAR, "amount": "1"}).status_code == 403


def test_a_limit_refused_comes_back_in_its_form_with_what_was_typed_and_why(client_for, manager):
    response = client_for(manager).post(
        reverse("outreach:compliance_limit_save"), {"year": "2031", "amount": "0.50"}
    )
    assert response.status_code == 200
    page = response.content.decode()
    form = page.split('action="' + reverse("outreach:compliance_limit_save") + '"')[1]
    form = form.split("</form>")[0]
    assert 'value="2031"' in form and 'value="0.50"' in form
    assert 'aria-invalid="true"' in form
    assert "greater than or equal to 1" in form
    assert not ComplianceLimit.objects.exists()


def test_a_manager_logs_over_the_limit_from_the_form_with_a_reason(client_for, manager, liaison):
    ComplianceLimit.objects.create(year=YEAR, amount=Decimal("100.00"))
    office = OrganizationFactory()
    doctor = ProviderFactory(organization=office)
    activity_log(activity=lunch("95.00"), providers=[doctor], staff=[], actor=liaison)
    client = client_for(manager)
    url = reverse("outreach:activity_create")
    refused = client.post(url, {"organization": office.pk, **_visit_post(doctor, "30.00")})
    assert "gifts and meals limit" in refused.content.decode()
    # A manager is told to give the reason, not to ask a manager.
    assert "or give the reason for exceeding the yearly limit." in refused.content.decode()
    assert "ask a manager" not in refused.content.decode()
    response = client.post(
        url,
        {
            "organization": office.pk,
            **_visit_post(doctor, "30.00"),
            "limit_override_reason": "Retirement dinner approved by compliance",
        },
    )
    assert response.status_code == 302
    assert Activity.objects.filter(limit_override_reason__startswith="Retirement").exists()


def test_the_preview_warns_near_the_limit_and_stops_over_it_before_saving(client_for, liaison):
    ComplianceLimit.objects.create(year=YEAR, amount=Decimal("100.00"))
    office = OrganizationFactory()
    near = ProviderFactory(organization=office, last_name="Nearly")
    over = ProviderFactory(organization=office, last_name="Over")
    activity_log(activity=lunch("60.00"), providers=[over], staff=[], actor=liaison)
    visit = PlannedVisitFactory(liaison=liaison, organization=office)
    url = reverse("outreach:planned_visit_ledger", args=[visit.pk])
    client = client_for(liaison)
    body = client.get(
        url, {"cost": "90", "providers": [near.pk, over.pk]}, HTTP_HX_REQUEST="true"
    ).content.decode()
    assert "<html" not in body
    assert "$0.00 + $45.00 = $45.00 of $100.00 (45%)" in body
    assert "$60.00 + $45.00 = $105.00 of $100.00 (105%)" in body
    assert "over the" in body and "cannot be saved without a manager" in body
    warned = client.get(url, {"cost": "80", "providers": [near.pk]}).content.decode()
    assert "(80%)" in warned and "near the" in warned
    assert client.get(url, {"cost": "nonsense", "providers": ["x"]}).status_code == 200
    assert not Activity.objects.filter(cost=Decimal("90")).exists()
    assert client_for(UserFactory()).get(url).status_code == 403


def test_the_preview_asks_with_only_what_it_reads_not_the_notes_or_the_csrf_token(
    client_for, liaison
):
    # It is a GET: whatever it sends is in the address, and so in the server's access log.
    visit = PlannedVisitFactory(liaison=liaison)
    page = (
        client_for(liaison)
        .get(reverse("outreach:planned_visit_log", args=[visit.pk]))
        .content.decode()
    )
    preview = page.split(f'id="ledger-preview-{visit.pk}"')[1].split(">")[0]
    assert 'hx-params="occurred_at,cost,providers,staff"' in preview


@pytest.mark.parametrize("year", ["²", "9" * 5000, "99999"])
def test_a_yearly_limit_for_a_year_that_is_no_year_is_refused(client_for, manager, year):
    response = client_for(manager).post(
        reverse("outreach:compliance_limit_save"), {"year": year, "amount": "5"}, follow=True
    )
    assert response.status_code == 200
    assert not ComplianceLimit.objects.exists()


def test_the_report_csv_keeps_a_name_that_looks_like_a_formula_from_running(
    client_for, manager, liaison
):
    office = OrganizationFactory(name="@SUM(1+1)*cmd|/c calc|!A1")
    doctor = ProviderFactory(organization=office, first_name="=HYPERLINK(1)")
    activity_log(activity=lunch("20.00"), providers=[doctor], staff=[], actor=liaison)
    export = client_for(manager).get(reverse("outreach:compliance_report") + "?export=csv")
    row = list(csv.reader(io.StringIO(b"".join(export.streaming_content).decode("utf-8-sig"))))[1]
    assert row[1] == "'" + doctor.display_name and row[2] == "'" + office.name


def test_the_report_says_which_choice_it_could_not_read_and_keeps_the_other(
    client_for, manager, liaison
):
    activity_log(activity=lunch("20.00"), providers=[ProviderFactory()], staff=[], actor=liaison)
    client = client_for(manager)
    page = client.get(
        reverse("outreach:compliance_report"), {"year": YEAR - 1, "sort": "bogus"}
    ).content.decode()
    assert f"Gifts and meals, {YEAR - 1}" in page
    assert "Shown with the default instead" in page and "Sort: Select a valid choice." in page
    page = client.get(reverse("outreach:compliance_report"), {"year": "1999"}).content.decode()
    assert f"Gifts and meals, {YEAR}" in page
    assert "Year: Ensure this value is greater than or equal to 2000." in page


def test_a_year_without_its_own_limit_is_held_to_the_nearest_one_set(liaison, client_for, manager):
    ComplianceLimit.objects.create(year=YEAR - 1, amount=Decimal("100.00"))
    ComplianceLimit.objects.create(year=YEAR + 2, amount=Decimal("300.00"))
    assert ComplianceLimit.applying_to(YEAR) == (Decimal("100.00"), YEAR - 1)
    assert ComplianceLimit.applying_to(YEAR - 5) == (Decimal("100.00"), YEAR - 1)
    assert ComplianceLimit.applying_to(YEAR + 3) == (Decimal("300.00"), YEAR + 2)
    ComplianceLimit.objects.all().delete()
    assert ComplianceLimit.applying_to(YEAR) == (None, None)
    ComplianceLimit.objects.create(year=YEAR + 1, amount=Decimal("100.00"))
    doctor = ProviderFactory()
    # This year has no limit of its own; next year's holds it rather than none at all.
    with pytest.raises(ComplianceLimitExceeded):
        activity_log(activity=lunch("150.00"), providers=[doctor], staff=[], actor=liaison)
    assert not ActivityShare.objects.exists()
    page = client_for(manager).get(reverse("outreach:compliance_report")).content.decode()
    assert f"No limit is set for {YEAR}:</span> the {YEAR + 1} limit" in page
    activity_log(activity=lunch("50.00"), providers=[doctor], staff=[], actor=liaison)
    export = client_for(manager).get(reverse("outreach:compliance_report"), {"export": "csv"})
    rows = list(csv.reader(io.StringIO(b"".join(export.streaming_content).decode("utf-8-sig"))))
    # The CSV says the limit is another year's, as the page does.
    assert rows[1][4:] == ["50.00", "100.00", str(YEAR + 1), "50"]


def test_the_warning_after_a_lunch_runs_the_same_queries_for_one_physician_or_eight(
    client_for, liaison
):
    ComplianceLimit.objects.create(year=YEAR, amount=Decimal("100.00"))

    def queries(doctors: int) -> int:
        office = OrganizationFactory.create()
        attending = ProviderFactory.create_batch(doctors, organization=office)
        visit = PlannedVisitFactory.create(liaison=liaison, organization=office)
        data = _visit_post(attending[0], str(85 * doctors))
        data["providers"] = [d.pk for d in attending]
        client = client_for(liaison)
        with CaptureQueriesContext(connection) as captured:
            response = client.post(reverse("outreach:planned_visit_log", args=[visit.pk]), data)
        assert response.status_code == 302
        return len(captured.captured_queries)

    assert queries(1) == queries(8)
