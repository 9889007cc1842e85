import re
from datetime import datetime, time, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from outreach.factories import ActivityFactory, PlannedVisitFactory, TaskFactory
from outreach.models import Activity, ActivityShare, ComplianceLimit, PlannedVisit, Task
from outreach.routing import haversine_miles, nearest_neighbour_route, zip_centroid
from outreach.services.day_plan import planned_visit_add, planned_visits_route
from partners.factories import OrganizationFactory, ProviderFactory, StaffMemberFactory
from referrals.factories import ReferralFactory

pytestmark = pytest.mark.django_db


def plan_url(day=None):
    day = day or timezone.localdate()
    return f"{reverse('outreach:day_plan')}?day={day.isoformat()}"


def test_zip_centroids_come_from_the_offline_zip_list():
    omaha = zip_centroid("68102")
    lincoln = zip_centroid("68508-1234")
    assert omaha is not None and lincoln is not None
    # Omaha to Lincoln is about 50 miles as the crow flies.
    assert 45 < haversine_miles(omaha, lincoln) < 60
    assert zip_centroid("ABCDE") is None
    assert zip_centroid("") is None
    assert zip_centroid("00000") is None


def test_nearest_neighbour_starts_from_the_start_zip_and_puts_unknown_zips_last():
    stops = ["68102", "68801", "68508", "not a zip", "68114"]
    route = nearest_neighbour_route(stops, lambda z: z, start_zip="68510")
    # Lincoln first (next to the start), then the two Omaha ZIPs, then Grand Island.
    assert [stop.item for stop in route] == ["68508", "68114", "68102", "68801", "not a zip"]
    assert route[-1].miles_from_previous is None
    assert all(stop.miles_from_previous is not None for stop in route[:-1])


def test_adding_an_office_twice_keeps_one_visit_at_the_end_of_the_day(liaison):
    first, second = OrganizationFactory(), OrganizationFactory()
    day = timezone.localdate()
    planned_visit_add(liaison=liaison, organization=first, day=day)
    planned_visit_add(liaison=liaison, organization=second, day=day)
    planned_visit_add(liaison=liaison, organization=first, day=day)
    visits = list(PlannedVisit.objects.filter(liaison=liaison).order_by("position"))
    assert [(v.organization, v.position) for v in visits] == [(first, 0), (second, 1)]


def test_a_second_add_that_raced_past_the_check_finds_the_first_visit(liaison):
    """A double tap on "Add to plan": both requests found no visit, then the other one
    committed first. The unique constraint decides, and the loser returns its visit."""
    from unittest import mock

    office = OrganizationFactory()
    day = timezone.localdate()
    first = planned_visit_add(liaison=liaison, organization=office, day=day)
    with mock.patch("outreach.services.day_plan.PlannedVisit.objects.filter") as looked_up:
        looked_up.return_value.first.return_value = None
        looked_up.return_value.aggregate.return_value = {"last": 0}
        second = planned_visit_add(liaison=liaison, organization=office, day=day)
    assert second == first
    assert PlannedVisit.objects.filter(liaison=liaison).count() == 1


def test_ordering_by_route_keeps_visits_already_done_first(liaison):
    day = timezone.localdate()
    grand_island = PlannedVisitFactory(
        liaison=liaison, planned_on=day, organization=OrganizationFactory(zip_code="68801")
    )
    omaha = PlannedVisitFactory(
        liaison=liaison, planned_on=day, organization=OrganizationFactory(zip_code="68102")
    )
    done = PlannedVisitFactory(
        liaison=liaison,
        planned_on=day,
        organization=OrganizationFactory(zip_code="68508"),
        status=PlannedVisit.Status.DONE,
    )
    planned_visits_route(liaison=liaison, day=day, start_zip="68114")
    order = list(
        PlannedVisit.objects.filter(liaison=liaison)
        .order_by("position")
        .values_list("pk", flat=True)
    )
    assert order == [done.pk, omaha.pk, grand_island.pk]


def test_the_route_form_orders_the_plan_and_names_offices_without_a_zip(client_for, liaison):
    day = timezone.localdate()
    far = PlannedVisitFactory(
        liaison=liaison, planned_on=day, organization=OrganizationFactory(zip_code="68801")
    )
    nowhere = PlannedVisitFactory(
        liaison=liaison,
        planned_on=day,
        organization=OrganizationFactory(zip_code="", name="Sandhills Clinic"),
    )
    near = PlannedVisitFactory(
        liaison=liaison, planned_on=day, organization=OrganizationFactory(zip_code="68102")
    )
    client = client_for(liaison)
    response = client.post(
        reverse("outreach:day_plan_route"), {"day": day.isoformat(), "start_zip": "68114"}
    )
    assert response.status_code == 302
    order = list(
        PlannedVisit.objects.filter(liaison=liaison)
        .order_by("position")
        .values_list("pk", flat=True)
    )
    assert order == [near.pk, far.pk, nowhere.pk]
    page = client.get(plan_url(day)).content.decode()
    assert "Without a usable ZIP code, so placed last: Sandhills Clinic." in page
    assert "No usable ZIP code for Sandhills Clinic (none recorded)" in page


def test_a_bad_starting_zip_is_refused_beside_the_field_keeping_what_was_typed(client_for, liaison):
    day = timezone.localdate() + timedelta(days=1)
    visit = PlannedVisitFactory(liaison=liaison, planned_on=day, position=7)
    client = client_for(liaison)
    for typed, error in [
        ("6810", "Enter a 5-digit ZIP code, e.g. 68102."),
        ("00000", "ZIP 00000 is not in the ZIP-code list; try another."),
    ]:
        response = client.post(
            reverse("outreach:day_plan_route"), {"day": day.isoformat(), "start_zip": typed}
        )
        # The plan of the day being routed, again, with the ZIP as typed to correct.
        assert response.status_code == 200
        page = response.content.decode()
        assert f'value="{typed}"' in page
        assert re.search(r'data-testid="route-error">([^<]*)<', page).group(1) == error
        assert 'aria-invalid="true"' in page
        assert f"visit-{visit.pk}" in page
        assert day.strftime("%b") in page
    visit.refresh_from_db()
    assert visit.position == 7
    # Nothing remembered from a refused ZIP: the next visit offers none.
    assert "route_start_zip" not in client.session


def test_the_starting_zip_used_is_offered_next_time(client_for, liaison):
    PlannedVisitFactory(liaison=liaison)
    client = client_for(liaison)
    client.post(
        reverse("outreach:day_plan_route"),
        {"day": timezone.localdate().isoformat(), "start_zip": "68114"},
    )
    page = client.get(plan_url()).content.decode()
    assert re.search(r'id="route-start"[^>]*value="68114"', page)
    assert 'data-testid="route-error"' not in page


def test_a_card_shows_where_we_left_off_tasks_people_tier_and_health(client_for, liaison):
    office = OrganizationFactory(name="Kearney Family Practice")
    doctor = ProviderFactory(organization=office, owner=liaison, tier="A", last_name="Pilcher")
    StaffMemberFactory(organization=office, first_name="Rosa", last_name="Diaz")
    ActivityFactory(
        organization=office,
        occurred_at=timezone.now() - timedelta(days=12),
        notes="They asked for our new-patient wait times.",
        next_step="Bring the wait-time sheet",
    )
    ReferralFactory(provider=doctor, received_at=timezone.now() - timedelta(days=3))
    TaskFactory(assignee=liaison, provider=doctor, title="Send the consult report")
    PlannedVisitFactory(liaison=liaison, organization=office)
    page = client_for(liaison).get(plan_url()).content.decode()
    assert "Kearney Family Practice" in page
    assert "They asked for our new-patient wait times." in page
    assert "Bring the wait-time sheet" in page
    assert "Send the consult report" in page
    assert "Tier A" in page
    assert "Rosa Diaz" in page
    assert "Last referral 3 days ago" in page
    assert "last touch 12 days ago" in page


def test_a_drop_in_logged_with_nothing_noted_does_not_hide_where_we_left_off(client_for, liaison):
    office = OrganizationFactory()
    doctor = ProviderFactory(organization=office, owner=liaison)
    noted = ActivityFactory(
        organization=office,
        occurred_at=timezone.now() - timedelta(days=30),
        notes="Dropped off referral pads.",
        next_step="Ask about the new MRI slots",
    )
    noted.providers.add(doctor)
    quick = ActivityFactory(
        organization=office, occurred_at=timezone.now() - timedelta(days=2), notes="", next_step=""
    )
    quick.providers.add(doctor)
    PlannedVisitFactory(liaison=liaison, organization=office)
    page = client_for(liaison).get(plan_url()).content.decode()
    assert "Dropped off referral pads." in page and "Ask about the new MRI slots" in page
    assert "last touch 2 days ago" in page

    partner = client_for(liaison).get(doctor.get_absolute_url()).content.decode()
    assert "Dropped off referral pads." in partner and "Ask about the new MRI slots" in partner
    assert re.search(
        r'data-testid="latest-touch">Latest: \w[\w ]* on [A-Z][a-z]{2} \d+, \d{4}, nothing noted',
        partner,
    )


def _plan_queries(client, day):
    with CaptureQueriesContext(connection) as queries:
        response = client.get(plan_url(day))
    assert response.status_code == 200
    return len(queries)


def _fill_plan(liaison, day, offices):
    for _ in range(offices):
        office = OrganizationFactory()
        doctor = ProviderFactory(organization=office, owner=liaison, tier="B")
        ProviderFactory(organization=office)
        StaffMemberFactory(organization=office)
        ActivityFactory(organization=office, occurred_at=timezone.now() - timedelta(days=5))
        ReferralFactory(provider=doctor)
        TaskFactory(assignee=liaison, provider=doctor)
        PlannedVisitFactory(liaison=liaison, organization=office, planned_on=day)


def test_the_plan_page_runs_the_same_queries_for_two_offices_or_eight(
    client_for, liaison, django_assert_num_queries
):
    day = timezone.localdate()
    client = client_for(liaison)
    _fill_plan(liaison, day, 2)
    _plan_queries(client, day)  # the first view after signing in also records activity
    small = _plan_queries(client, day)
    _fill_plan(liaison, day, 6)
    assert _plan_queries(client, day) == small
    # Session, user, role and permissions; the cards (visits, providers,
    # staff, last activities, tasks); the suggestions (two) and the office picker.
    with django_assert_num_queries(11):
        client.get(plan_url(day))


def test_suggestions_name_overdue_follow_ups_and_untouched_offices(client_for, liaison):
    overdue_office = OrganizationFactory(name="Overdue Office")
    overdue_doctor = ProviderFactory(organization=overdue_office, owner=liaison)
    TaskFactory(
        assignee=liaison,
        provider=overdue_doctor,
        title="Drop off referral pads",
        due_on=timezone.localdate() - timedelta(days=2),
    )
    quiet_office = OrganizationFactory(name="Quiet Office")
    ProviderFactory(organization=quiet_office, owner=liaison)
    # Noon, 90 days back on the calendar: "now less 90 days" is 89 calendar days late in
    # the evening across the autumn clock change.
    ninety_days_ago = timezone.localdate() - timedelta(days=90)
    ActivityFactory(
        organization=quiet_office,
        occurred_at=timezone.make_aware(datetime.combine(ninety_days_ago, time(12))),
    )
    busy_office = OrganizationFactory(name="Busy Office")
    ProviderFactory(organization=busy_office, owner=liaison)
    ActivityFactory(organization=busy_office, occurred_at=timezone.now() - timedelta(days=2))
    someone_elses = OrganizationFactory(name="Someone Else's Office")
    ProviderFactory(organization=someone_elses, owner=UserFactoryForOther())
    page = client_for(liaison).get(plan_url()).content.decode()
    suggestions = page.split('data-testid="suggestions"')[1]
    assert "Overdue Office" in suggestions
    assert "Drop off referral pads" in suggestions
    assert "Quiet Office" in suggestions
    assert "Not touched for 90 days" in suggestions
    assert "Busy Office" not in suggestions
    assert "Someone Else" not in suggestions


def test_a_suggested_office_says_what_kind_of_task_is_due_there(client_for, liaison):
    office = OrganizationFactory(name="Thankful Office")
    doctor = ProviderFactory(organization=office, owner=liaison)
    TaskFactory(
        assignee=liaison,
        provider=doctor,
        kind=Task.Kind.THANK_YOU,
        title="Thank Dr. Wiebe for the referral",
        due_on=timezone.localdate() - timedelta(days=1),
    )
    page = client_for(liaison).get(plan_url()).content.decode()
    suggestions = " ".join(page.split('data-testid="suggestions"')[1].split())
    assert "Thank-you due" in suggestions and "Follow-up due" not in suggestions


def UserFactoryForOther():
    from core.factories import UserFactory

    return UserFactory()


def test_adding_a_suggested_office_puts_it_on_the_plan(client_for, liaison):
    office = OrganizationFactory()
    ProviderFactory(organization=office, owner=liaison)
    day = timezone.localdate() + timedelta(days=1)
    response = client_for(liaison).post(
        reverse("outreach:day_plan_add"), {"day": day.isoformat(), "organization": office.pk}
    )
    assert response.status_code == 302
    assert PlannedVisit.objects.get().planned_on == day


def test_an_office_skipped_earlier_that_day_goes_back_on_the_plan_when_added_again(
    client_for, liaison
):
    from outreach.services.day_plan import planned_visit_skip

    office = OrganizationFactory(name="Maple Family Practice")
    ProviderFactory(organization=office, owner=liaison)
    day = timezone.localdate()
    visit = planned_visit_add(liaison=liaison, organization=office, day=day)
    planned_visit_skip(visit=visit, actor=liaison, reason="Office closed for lunch")
    client = client_for(liaison)
    add = {"day": day.isoformat(), "organization": office.pk}
    page = client.post(reverse("outreach:day_plan_add"), add, follow=True).content.decode()
    assert "Maple Family Practice is on the plan." in page
    visit.refresh_from_db()
    assert visit.status == PlannedVisit.Status.PLANNED
    # The skip stays in the visit's history, followed by its return.
    assert [(e.from_status, e.to_status) for e in visit.events.order_by("at", "pk")] == [
        ("planned", "skipped"),
        ("skipped", "planned"),
    ]
    # An office already visited that day stays visited, and the page says so.
    PlannedVisit.objects.filter(pk=visit.pk).update(status=PlannedVisit.Status.DONE)
    page = client.post(reverse("outreach:day_plan_add"), add, follow=True).content.decode()
    assert "Maple Family Practice was visited that day already" in page
    assert PlannedVisit.objects.get().status == PlannedVisit.Status.DONE


def test_adding_with_no_office_chosen_returns_to_the_day_being_planned(client_for, liaison):
    day = timezone.localdate() + timedelta(days=4)
    response = client_for(liaison).post(
        reverse("outreach:day_plan_add"), {"day": day.isoformat(), "organization": ""}
    )
    assert response.url == f"{reverse('outreach:day_plan')}?day={day.isoformat()}"
    assert not PlannedVisit.objects.exists()


def test_a_liaison_cannot_plan_an_office_of_another_liaisons_partners(
    client_for, liaison, other_liaison
):
    office = OrganizationFactory()
    ProviderFactory(organization=office, owner=other_liaison)
    response = client_for(liaison).post(
        reverse("outreach:day_plan_add"),
        {"day": timezone.localdate().isoformat(), "organization": office.pk},
        follow=True,
    )
    assert "Choose one of your offices" in response.content.decode()
    assert not PlannedVisit.objects.exists()


def _log_data(provider, staff, **extra):
    data = {
        "kind": "visit",
        "occurred_at": timezone.localtime().strftime("%Y-%m-%dT%H:%M"),
        "providers": [provider.pk],
        "staff": [staff.pk],
        "notes": "Coordinator wants faxed updates.",
        "next_step": "Send the fax cover sheet",
        "next_step_due": (timezone.localdate() + timedelta(days=7)).isoformat(),
    }
    data.update(extra)
    return data


def test_logging_from_the_plan_marks_the_visit_done_and_books_the_follow_up(client_for, liaison):
    office = OrganizationFactory()
    doctor = ProviderFactory(organization=office, owner=liaison)
    staff = StaffMemberFactory(organization=office)
    visit = PlannedVisitFactory(liaison=liaison, organization=office)
    response = client_for(liaison).post(
        reverse("outreach:planned_visit_log", args=[visit.pk]),
        _log_data(doctor, staff),
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 204
    assert response["HX-Redirect"] == plan_url(visit.planned_on)
    visit.refresh_from_db()
    assert visit.status == PlannedVisit.Status.DONE
    activity = visit.activity
    assert (activity.organization, activity.logged_by) == (office, liaison)
    assert list(activity.providers.all()) == [doctor]
    assert Task.objects.get(activity=activity).title == "Send the fax cover sheet"


def test_a_retried_post_after_a_lost_response_logs_the_visit_once(client_for, liaison):
    office = OrganizationFactory()
    doctor = ProviderFactory(organization=office, owner=liaison)
    staff = StaffMemberFactory(organization=office)
    visit = PlannedVisitFactory(liaison=liaison, organization=office)
    client = client_for(liaison)
    url = reverse("outreach:planned_visit_log", args=[visit.pk])
    client.post(url, _log_data(doctor, staff), HTTP_HX_REQUEST="true")
    client.post(url, _log_data(doctor, staff), HTTP_HX_REQUEST="true")
    assert Activity.objects.count() == 1
    assert Task.objects.count() == 1


def test_a_retried_post_of_a_lunch_with_a_cost_answers_as_the_first_and_charges_once(
    client_for, liaison
):
    ComplianceLimit.objects.create(year=timezone.localdate().year, amount=Decimal("500"))
    office = OrganizationFactory()
    doctor = ProviderFactory(organization=office, owner=liaison)
    staff = StaffMemberFactory(organization=office)
    visit = PlannedVisitFactory(liaison=liaison, organization=office)
    client = client_for(liaison)
    url = reverse("outreach:planned_visit_log", args=[visit.pk])
    data = _log_data(doctor, staff, kind="lunch", cost="820.00")
    first = client.post(url, data, HTTP_HX_REQUEST="true")
    again = client.post(url, data, HTTP_HX_REQUEST="true")
    assert (first.status_code, again.status_code) == (204, 204)
    assert again["HX-Redirect"] == plan_url(visit.planned_on)
    assert Activity.objects.count() == 1
    assert [share.amount for share in ActivityShare.objects.all()] == [Decimal("410.00")]


def test_a_bad_log_re_renders_the_form_partial_with_what_was_typed(client_for, liaison):
    office = OrganizationFactory()
    doctor = ProviderFactory(organization=office, owner=liaison)
    staff = StaffMemberFactory(organization=office)
    visit = PlannedVisitFactory(liaison=liaison, organization=office)
    response = client_for(liaison).post(
        reverse("outreach:planned_visit_log", args=[visit.pk]),
        _log_data(doctor, staff, next_step="", occurred_at="not a date"),
        HTTP_HX_REQUEST="true",
    )
    body = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in body
    assert "Coordinator wants faxed updates." in body
    assert "Say what the next step is" in body
    assert "Enter a valid date/time" in body
    visit.refresh_from_db()
    assert visit.status == PlannedVisit.Status.PLANNED
    assert not Activity.objects.exists()


def test_a_visit_is_logged_and_skipped_only_by_its_liaison(
    client_for, liaison, other_liaison, manager, coordinator
):
    visit = PlannedVisitFactory(liaison=liaison)
    log_url = reverse("outreach:planned_visit_log", args=[visit.pk])
    skip_url = reverse("outreach:planned_visit_skip", args=[visit.pk])
    assert client_for(liaison).get(log_url).status_code == 200
    assert client_for(other_liaison).get(log_url).status_code == 404
    assert client_for(manager).get(log_url).status_code == 404
    assert client_for(coordinator).get(log_url).status_code == 404
    assert client_for(other_liaison).post(skip_url).status_code == 404
    assert client_for(coordinator).get(plan_url()).status_code == 403
    client_for(liaison).post(skip_url, {"reason": "Office closed for inventory"})
    visit.refresh_from_db()
    assert visit.status == PlannedVisit.Status.SKIPPED


def test_a_plan_shows_only_the_signed_in_liaisons_visits(client_for, liaison, other_liaison):
    PlannedVisitFactory(liaison=liaison, organization=OrganizationFactory(name="Mine Clinic"))
    PlannedVisitFactory(
        liaison=other_liaison, organization=OrganizationFactory(name="Theirs Clinic")
    )
    page = client_for(liaison).get(plan_url()).content.decode()
    plan = page.split('data-testid="plan"')[1].split("Add an office")[0]
    assert "Mine Clinic" in plan
    assert "Theirs Clinic" not in plan


@pytest.mark.parametrize("field", ["providers", "staff"])
def test_an_attendee_id_too_large_for_the_database_is_a_field_error(client_for, liaison, field):
    from outreach.forms import PlannedVisitLogForm

    visit = PlannedVisitFactory(liaison=liaison)
    huge = "99999999999999999999"
    log_url = reverse("outreach:planned_visit_log", args=[visit.pk])
    ledger_url = reverse("outreach:planned_visit_ledger", args=[visit.pk])
    assert client_for(liaison).post(log_url, {"kind": "visit", field: huge}).status_code == 200
    assert client_for(liaison).get(ledger_url, {"cost": "10", field: huge}).status_code == 200
    assert not Activity.objects.exists()
    form = PlannedVisitLogForm(
        {"kind": "visit", field: [huge]}, organization=visit.organization, provider=None
    )
    assert form.errors[field] == [f"“{huge}” is not a valid value."]


@pytest.mark.parametrize("field", ["providers", "staff"])
@pytest.mark.parametrize("value", ["²", "9" * 5000, "-1"])
def test_a_visit_log_naming_people_by_ids_that_are_no_ids_says_so(
    client_for, liaison, field, value
):
    office = OrganizationFactory()
    doctor = ProviderFactory(organization=office, owner=liaison)
    staff = StaffMemberFactory(organization=office)
    visit = PlannedVisitFactory(liaison=liaison, organization=office)
    response = client_for(liaison).post(
        reverse("outreach:planned_visit_log", args=[visit.pk]),
        {**_log_data(doctor, staff), field: value},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 200
    assert "is not a valid value" in response.content.decode()
    assert not Activity.objects.exists()


def test_a_follow_up_from_a_visit_with_the_staff_only_is_on_the_offices_card_and_suggested(
    client_for, liaison
):
    # The liaison met the office manager, not a doctor: the next step is still that
    # office's, on its card next time and suggested once it is overdue.
    office = OrganizationFactory(name="Kearney Family Practice")
    ProviderFactory(organization=office, owner=liaison)
    rosa = StaffMemberFactory(organization=office, first_name="Rosa", last_name="Diaz")
    today = timezone.localdate()
    visit = PlannedVisitFactory(liaison=liaison, organization=office, planned_on=today)
    client = client_for(liaison)
    client.post(
        reverse("outreach:planned_visit_log", args=[visit.pk]),
        {
            "kind": "drop_in",
            "occurred_at": timezone.localtime().strftime("%Y-%m-%dT%H:%M"),
            "staff": [rosa.pk],
            "notes": "Rosa says the fax line changes next week.",
            "next_step": "Call Rosa for the new fax number",
            "next_step_due": (today + timedelta(days=1)).isoformat(),
        },
    )
    task = Task.objects.get(title="Call Rosa for the new fax number")
    assert task.assignee == liaison

    PlannedVisitFactory(liaison=liaison, organization=office, planned_on=today + timedelta(days=1))
    card = client.get(plan_url(today + timedelta(days=1))).content.decode()
    tasks = card.split("Open tasks")[1].split("</ul>")[0]
    assert "Call Rosa for the new fax number" in tasks

    later = today + timedelta(days=3)
    page = client.get(plan_url(later)).content.decode()
    suggestions = page.split('data-testid="suggestions"')[1]
    assert "Kearney Family Practice" in suggestions
    assert "Call Rosa for the new fax number" in suggestions


def test_an_office_with_many_open_tasks_shows_the_three_due_first_and_folds_the_rest(
    client_for, liaison
):
    # One demo office had twenty open tasks: on a phone its "Log visit" button was three
    # screens down the card. The soonest due stay in sight; the rest are one tap away.
    office = OrganizationFactory()
    provider = ProviderFactory(organization=office, owner=liaison)
    today = timezone.localdate()
    for days in range(6):
        TaskFactory(
            assignee=liaison,
            provider=provider,
            title=f"Task due in {days} days",
            due_on=today + timedelta(days=days - 1),
        )
    PlannedVisitFactory(liaison=liaison, organization=office, planned_on=today)

    card = client_for(liaison).get(plan_url(today)).content.decode().split("Open tasks")[1]
    in_sight, folded = (
        card.split("<details", 1)[0],
        card.split("<details", 1)[1].split("</details>")[0],
    )

    assert [f"Task due in {days} days" in in_sight for days in range(6)] == [True] * 3 + [False] * 3
    assert "<summary>3 more open tasks</summary>" in folded
    assert all(f"Task due in {days} days" in folded for days in range(3, 6))


def test_an_office_with_three_open_tasks_shows_them_all_without_a_fold(client_for, liaison):
    office = OrganizationFactory()
    provider = ProviderFactory(organization=office, owner=liaison)
    for number in range(3):
        TaskFactory(assignee=liaison, provider=provider, title=f"Task {number}")
    PlannedVisitFactory(liaison=liaison, organization=office)

    card = client_for(liaison).get(plan_url()).content.decode().split("Open tasks")[1]

    assert "more open task" not in card
    assert all(f"Task {number}" in card.split("<details", 1)[0] for number in range(3))
