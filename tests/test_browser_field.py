"""A liaison's day on a phone, in Debian's chromium: plan, route, log a visit through a
dropped connection without losing a word."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from core.factories import DEMO_PASSWORD, UserFactory
from core.roles import Role
from outreach.factories import ActivityFactory
from outreach.models import Activity, ComplianceLimit, PlannedVisit, Task
from partners.factories import OrganizationFactory, ProviderFactory, StaffMemberFactory
from tests.test_browser import browser, page  # noqa: F401 - shared Playwright fixtures

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# What chromium and htmx log while the test has pulled the network: expected, not a bug.
OFFLINE_NOISE = re.compile(
    r"ERR_INTERNET_DISCONNECTED|Failed to load resource|htmx:sendError|htmx:afterRequest"
)


def fits_the_phone(tab: Any) -> bool:
    return tab.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def test_a_liaison_plans_the_day_and_logs_a_visit_through_a_dropped_connection(
    page: Any,  # noqa: F811
) -> None:
    from playwright.sync_api import expect

    jamie = UserFactory.create(username="jamie", first_name="Jamie", role=Role.LIAISON)
    ComplianceLimit.objects.create(year=timezone.localdate().year, amount=100)
    omaha = OrganizationFactory.create(name="Dundee Family Practice", zip_code="68132")
    ProviderFactory.create(organization=omaha, owner=jamie, tier="B")
    lincoln = OrganizationFactory.create(name="Capitol Primary Care", zip_code="68508")
    doctor = ProviderFactory.create(
        organization=lincoln, owner=jamie, tier="A", first_name="Ana", last_name="Reyes"
    )
    StaffMemberFactory.create(organization=lincoln, first_name="Rosa", last_name="Diaz")
    ActivityFactory.create(
        organization=lincoln,
        occurred_at=timezone.now() - timedelta(days=45),
        notes="Coordinator asked for our new-patient wait times.",
        next_step="Bring the wait-time sheet",
    )
    nowhere = OrganizationFactory.create(name="Sandhills Clinic", zip_code="")
    ProviderFactory.create(organization=nowhere, owner=jamie)

    page.goto("/")
    page.get_by_label("Username").fill("jamie")
    page.get_by_label("Password").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.goto("/outreach/day/")

    # Plan the day from the suggestions: offices nobody has touched lately.
    for office in ("Dundee Family Practice", "Capitol Primary Care", "Sandhills Clinic"):
        page.get_by_role("button", name=f"Add {office}").click()
        expect(page.get_by_text(f"{office} is on the plan.")).to_be_visible()

    # Order by route from Lincoln: the Lincoln office first, the one without a ZIP last.
    page.get_by_label("Starting ZIP").fill("68510")
    page.get_by_role("button", name="Order by route").click()
    cards = page.locator("[data-testid=plan] > li")
    expect(cards.nth(0)).to_contain_text("Capitol Primary Care")
    expect(cards.nth(1)).to_contain_text("Dundee Family Practice")
    expect(cards.nth(2)).to_contain_text("Sandhills Clinic")
    expect(page.get_by_test_id("unlocated")).to_contain_text("Sandhills Clinic")
    first = cards.nth(0)
    expect(first).to_contain_text("Coordinator asked for our new-patient wait times.")
    expect(first).to_contain_text("Bring the wait-time sheet")
    expect(first).to_contain_text("Tier A")
    assert fits_the_phone(page)

    # Log the visit: a few taps and a note.
    first.get_by_role("link", name="Log visit").click()
    page.get_by_label("Lunch").check()
    page.get_by_label(re.compile("Ana Reyes")).check()
    page.get_by_label("Rosa Diaz").check()
    # The lunch cost shows where Dr. Reyes would stand against the yearly limit.
    page.get_by_label("Cost ($)").fill("170")
    page.get_by_label("Cost ($)").blur()
    expect(page.get_by_test_id("ledger-preview")).to_contain_text(
        "$0.00 + $85.00 = $85.00 of $100.00 (85%): near the"
    )
    page.get_by_label("Notes").fill("Lunch with the front desk; they want faxed updates.")
    page.get_by_label("Next step", exact=True).fill("Send the fax cover sheet")
    page.get_by_label("Next step due").fill((timezone.localdate() + timedelta(days=7)).isoformat())
    page.get_by_label("Next step due").blur()
    page.wait_for_load_state("networkidle")
    assert fits_the_phone(page)

    # The connection drops as she taps Save: nothing is lost and she is told so.
    page.context.set_offline(True)
    page.get_by_role("button", name="Save visit").click()
    expect(
        page.get_by_text("the connection dropped. Everything you typed is still here")
    ).to_be_visible()
    expect(page.get_by_label("Notes")).to_have_value(
        "Lunch with the front desk; they want faxed updates."
    )
    assert not Activity.objects.filter(kind="lunch").exists()

    # Back online she reloads the page by habit: the draft comes back from the phone.
    page.context.set_offline(False)
    offline_noise = [p for p in page.problems if OFFLINE_NOISE.search(p)]
    page.problems[:] = [p for p in page.problems if not OFFLINE_NOISE.search(p)]
    assert offline_noise, "the dropped request was seen by the browser"
    page.reload()
    expect(page.get_by_text("Restored what you typed earlier")).to_be_visible()
    expect(page.get_by_label("Notes")).to_have_value(
        "Lunch with the front desk; they want faxed updates."
    )
    expect(page.get_by_label("Lunch")).to_be_checked()
    expect(page.get_by_label("Rosa Diaz")).to_be_checked()

    page.get_by_role("button", name="Save visit").click()
    expect(page.get_by_text("Lunch at Capitol Primary Care logged.")).to_be_visible()
    expect(page.get_by_role("alert").filter(has_text="Ana Reyes")).to_contain_text("(85%)")
    expect(page.locator("[data-testid=plan] > li").nth(0)).to_contain_text("Visited")
    assert page.evaluate("window.localStorage.length") == 0

    visit = PlannedVisit.objects.get(organization=lincoln)
    assert visit.status == PlannedVisit.Status.DONE
    assert visit.activity is not None
    assert visit.activity.notes == "Lunch with the front desk; they want faxed updates."
    assert list(visit.activity.providers.all()) == [doctor]
    assert Task.objects.get(activity=visit.activity).title == "Send the fax cover sheet"
    assert page.problems == []


def test_a_manager_runs_an_event_and_reads_the_ledger_at_phone_width(
    page: Any,  # noqa: F811
) -> None:
    from playwright.sync_api import expect

    UserFactory.create(username="maria", first_name="Maria", role=Role.MANAGER)
    office = OrganizationFactory.create(name="Dundee Family Practice")
    ProviderFactory.create(
        organization=office, first_name="Ana", last_name="Reyes", credential="MD"
    )
    StaffMemberFactory.create(organization=office, first_name="Rosa", last_name="Diaz")

    page.goto("/")
    page.get_by_label("Username").fill("maria")
    page.get_by_label("Password").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Sign in").click()

    # Set this year's limit on the report page.
    page.goto("/outreach/compliance/")
    expect(page.get_by_test_id("limit")).to_contain_text("No limit is set")
    page.get_by_label("Limit ($)").fill("519")
    page.get_by_role("button", name="Save limit").click()
    expect(page.get_by_test_id("limit")).to_contain_text("$519.00")
    assert fits_the_phone(page)

    # An annual meeting: invite the office, take RSVPs with htmx, record who came.
    page.goto("/outreach/events/new/")
    page.get_by_label("Name").fill("Annual referral-partner dinner")
    page.get_by_label("Starts").fill(f"{timezone.localdate() - timedelta(days=1)}T18:30")
    page.get_by_role("button", name="Create event").click()
    # The office is found by typing a few letters of its name, then tapping the match.
    page.get_by_label("Invite everyone at an office").fill("dundee")
    page.locator("[data-picker-choice]").filter(has_text=office.name).click()
    page.get_by_role("button", name="Invite").click()
    expect(page.get_by_text("Invited 2 people from Dundee Family Practice.")).to_be_visible()
    rows = page.locator("[id^=invitation-]")
    with page.expect_response(re.compile("/outreach/invitations/")):
        rows.nth(0).get_by_label("RSVP").select_option("yes")
    with page.expect_response(re.compile("/outreach/invitations/")):
        rows.nth(0).get_by_label("Came").check()
    expect(rows.nth(0).get_by_label("Came")).to_be_checked()
    expect(rows.nth(0).get_by_label("RSVP")).to_have_value("yes")
    # The tally above the list follows without a reload.
    expect(page.get_by_test_id("rsvp-counts")).to_have_text(
        "No reply yet: 1 · Coming: 1 · Maybe: 0 · Not coming: 0 · Attended: 1"
    )
    page.get_by_role("button", name="Record attendance as activities").click()
    expect(page.get_by_text("Attendance recorded: 1 person came, from 1 office.")).to_be_visible()
    activity = Activity.objects.get(kind=Activity.Kind.EVENT)
    assert [p.last_name for p in activity.providers.all()] == ["Reyes"]
    assert fits_the_phone(page)

    # The catering bill comes in: its cost goes on the event and, per head, in the ledger.
    page.get_by_role("link", name="Edit").click()
    page.get_by_label("Cost ($)").fill("90")
    assert fits_the_phone(page)
    page.get_by_role("button", name="Save event").click()
    page.get_by_role("button", name="Update the attendance record").click()
    expect(page.get_by_test_id("event-shares")).to_contain_text("Ana Reyes, MD: $90.00")
    assert fits_the_phone(page)

    # Key partners due an annual meeting, from the events page.
    ProviderFactory.create(tier="A", owner=None, first_name="Dana", last_name="Whitfield")
    page.goto("/outreach/events/")
    page.get_by_role("link", name="Annual meetings due").click()
    page.get_by_role("link", name="Everyone's partners").click()
    expect(page.get_by_test_id("annual-meetings-due")).to_contain_text("Dana Whitfield")
    assert fits_the_phone(page)

    # Her calendar URL, shown once.
    page.goto("/outreach/calendar/")
    page.get_by_role("button", name="Make my calendar URL").click()
    expect(page.get_by_label(re.compile("Your private calendar URL"))).to_have_value(
        re.compile(r"/outreach/calendar/.+\.ics$")
    )
    assert fits_the_phone(page)
    assert page.problems == []


# What chromium and htmx log when the test makes the save fail on purpose.
FAILED_SAVE_NOISE = re.compile(
    r"ERR_INTERNET_DISCONNECTED|ERR_FAILED|Failed to load resource|htmx:sendError"
    r"|htmx:responseError|htmx:afterRequest|Response Status Error Code"
)


def test_a_failed_save_keeps_what_was_typed_and_says_why_and_offices_are_found_by_typing(
    page: Any,  # noqa: F811
) -> None:
    from playwright.sync_api import Route, expect

    jamie = UserFactory.create(username="jamie", first_name="Jamie", role=Role.LIAISON)
    capitol = OrganizationFactory.create(
        name="Capitol Primary Care", city="Lincoln", zip_code="68508"
    )
    ProviderFactory.create(organization=capitol, owner=jamie, first_name="Ana", last_name="Reyes")
    heights = OrganizationFactory.create(
        name="Capitol Heights Clinic", city="Lincoln", zip_code="68510"
    )
    ProviderFactory.create(organization=heights, owner=jamie)
    theirs = OrganizationFactory.create(name="Capitol Pediatrics", city="Lincoln")
    ProviderFactory.create(organization=theirs, owner=UserFactory.create(role=Role.LIAISON))

    page.goto("/")
    page.get_by_label("Username").fill("jamie")
    page.get_by_label("Password").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.goto("/outreach/day/")

    # The office picker is a type-ahead: a few letters, a tap on the match.
    search = page.get_by_label("Office", exact=True)
    for office in ("Capitol Primary Care", "Capitol Heights Clinic"):
        search.fill("capitol")
        options = page.locator("[data-picker-choice]")
        expect(options).to_have_count(2)  # not another liaison's Capitol Pediatrics
        assert fits_the_phone(page)
        options.filter(has_text=office).click()
        expect(search).to_have_value(office)
        page.get_by_role("button", name="Add to plan").click()
        expect(page.get_by_text(f"{office} is on the plan.")).to_be_visible()
        search = page.get_by_label("Office", exact=True)
    cards = page.locator("[data-testid=plan] > li")
    expect(cards).to_have_count(2)

    # Heights is closed today: skip it, saying why.
    card = cards.filter(has_text="Capitol Heights Clinic")
    card.get_by_text("Skip this visit").click()
    card.get_by_label("Why skip it?").fill("Closed for inventory")
    card.get_by_role("button", name="Skip", exact=True).click()
    card = page.locator("[data-testid=plan] > li").filter(has_text="Capitol Heights Clinic")
    expect(card.get_by_test_id("visit-history")).to_contain_text(
        "Skipped by Jamie", ignore_case=False
    )
    expect(card.get_by_test_id("visit-history")).to_contain_text("Closed for inventory")
    assert fits_the_phone(page)

    # Log the Capitol visit while the save request fails: first the connection drops,
    # then the server answers 503. Each time the text stays and the page says why.
    page.locator("[data-testid=plan] > li").filter(has_text="Capitol Primary Care").get_by_role(
        "link", name="Log visit"
    ).click()
    notes = page.get_by_label("Notes")
    notes.fill("Met the new office manager; she wants our referral pads.")
    page.get_by_label(re.compile("Ana Reyes")).check()
    page.wait_for_load_state("networkidle")
    failure = {"mode": "drop"}

    def fail_the_save(route: Route) -> None:
        if route.request.method != "POST":
            route.continue_()
        elif failure["mode"] == "drop":
            route.abort("internetdisconnected")
        else:
            route.fulfill(status=503, content_type="text/plain", body="Service Unavailable")

    save_url = re.compile(r"/outreach/day/visits/\d+/log/$")
    page.route(save_url, fail_the_save)
    page.get_by_role("button", name="Save visit").click()
    notice = page.locator("[data-offline-notice]")
    expect(notice).to_be_visible()
    expect(notice).to_contain_text("Not saved: the connection dropped.")
    expect(notes).to_have_value("Met the new office manager; she wants our referral pads.")
    assert not Activity.objects.filter(organization=capitol).exists()

    failure["mode"] = "server error"
    notice.get_by_role("button", name="Retry").click()
    expect(notice).to_contain_text("Not saved: the server could not save it (error 503).")
    expect(notes).to_have_value("Met the new office manager; she wants our referral pads.")
    expect(page.get_by_label(re.compile("Ana Reyes"))).to_be_checked()
    expect(page.get_by_role("button", name="Save visit")).to_be_enabled()
    assert fits_the_phone(page)
    assert not Activity.objects.filter(organization=capitol).exists()

    # The connection comes back: Retry saves it, once, and the draft is dropped.
    page.unroute(save_url)
    noise = [p for p in page.problems if FAILED_SAVE_NOISE.search(p)]
    page.problems[:] = [p for p in page.problems if not FAILED_SAVE_NOISE.search(p)]
    assert noise, "the failed requests were seen by the browser"
    notice.get_by_role("button", name="Retry").click()
    expect(page.get_by_text("Visit at Capitol Primary Care logged.")).to_be_visible()
    activity = Activity.objects.get(organization=capitol)
    assert activity.notes == "Met the new office manager; she wants our referral pads."
    assert page.evaluate("window.localStorage.length") == 0
    assert page.problems == []


def test_a_second_tap_on_save_while_an_activity_is_saving_logs_it_once(
    page: Any,  # noqa: F811
) -> None:
    from playwright.sync_api import Route, expect

    jamie = UserFactory.create(username="jamie", first_name="Jamie", role=Role.LIAISON)
    doctor = ProviderFactory.create(owner=jamie, first_name="Ana", last_name="Reyes")

    page.goto("/")
    page.get_by_label("Username").fill("jamie")
    page.get_by_label("Password").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.goto(f"/outreach/activities/new/?provider={doctor.pk}")
    page.get_by_label("Notes").fill("Dropped off referral pads.")
    page.get_by_label("Next step", exact=True).fill("Bring the wait-time sheet")

    # A slow connection: the save is held in flight while the liaison taps again.
    held: list[Route] = []
    save_url = re.compile(r"/outreach/activities/new/")
    page.route(save_url, lambda route: held.append(route))
    save = page.get_by_role("button", name="Save activity")
    save.click()
    expect(save).to_be_disabled()
    held[0].continue_()
    expect(page.get_by_text("Visit logged.")).to_be_visible()
    assert len(held) == 1
    assert Activity.objects.filter(providers=doctor).count() == 1
    assert Task.objects.filter(activity__providers=doctor).count() == 1


def test_a_draft_comes_back_only_to_the_user_who_typed_it(
    page: Any,  # noqa: F811
) -> None:
    from playwright.sync_api import expect

    jamie = UserFactory.create(username="jamie", role=Role.LIAISON)
    UserFactory.create(username="morgan", role=Role.MANAGER)
    doctor = ProviderFactory.create(owner=jamie)

    def sign_in(username: str) -> None:
        page.context.clear_cookies()
        page.goto("/")
        page.get_by_label("Username").fill(username)
        page.get_by_label("Password").fill(DEMO_PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.goto(f"/outreach/activities/new/?provider={doctor.pk}")

    sign_in("jamie")
    page.get_by_label("Notes").fill("Jamie's words, not yet saved.")

    # A colleague signs in on the same computer: the form starts empty for them.
    sign_in("morgan")
    expect(page.get_by_label("Notes")).to_have_value("")
    expect(page.locator("[data-draft-notice]")).to_be_hidden()

    sign_in("jamie")
    expect(page.get_by_label("Notes")).to_have_value("Jamie's words, not yet saved.")


def test_a_second_tap_on_an_ordinary_form_while_it_is_sending_sends_it_once(
    page: Any,  # noqa: F811
) -> None:
    from playwright.sync_api import Route

    jamie = UserFactory.create(username="jamie", first_name="Jamie", role=Role.LIAISON)
    doctor = ProviderFactory.create(owner=jamie, first_name="Ana", last_name="Reyes")
    page.goto("/")
    page.get_by_label("Username").fill("jamie")
    page.get_by_label("Password").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.goto(f"/outreach/tasks/new/?provider={doctor.pk}")
    page.get_by_label("Title").fill("Send the new referral pads")

    # Each post is counted and answered "no content", which leaves the page as it is: the
    # form stays on screen as it does while a slow answer is on its way.
    posts: list[str] = []

    def answer(route: Route) -> None:
        if route.request.method == "POST":
            posts.append(route.request.url)
            route.fulfill(status=204)
        else:
            route.continue_()

    page.route(re.compile(r"/outreach/tasks/new/"), answer)
    save = page.get_by_role("button", name="Add task")
    save.click()
    save.click()  # a double tap
    page.wait_for_timeout(500)
    assert len(posts) == 1
    # Some seconds later (a download that left the page where it was) it can be sent again.
    page.wait_for_timeout(4000)
    save.click()
    page.wait_for_timeout(500)
    assert len(posts) == 2


def test_a_save_refused_for_a_typo_puts_the_focus_on_the_first_field_to_correct(
    page: Any,  # noqa: F811
) -> None:
    from playwright.sync_api import expect

    jamie = UserFactory.create(username="jamie", first_name="Jamie", role=Role.LIAISON)
    office = OrganizationFactory.create(name="Capitol Primary Care", zip_code="68508")
    doctor = ProviderFactory.create(
        organization=office, owner=jamie, first_name="Ana", last_name="Reyes"
    )
    visit = PlannedVisit.objects.create(
        liaison=jamie, organization=office, planned_on=timezone.localdate()
    )
    page.goto("/")
    page.get_by_label("Username").fill("jamie")
    page.get_by_label("Password").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Sign in").click()

    # A next step due before the visit: the form comes back in place, and the keyboard
    # and screen reader are taken to the date to correct, not left at the top of the page.
    for url, save in (
        (f"/outreach/day/visits/{visit.pk}/log/", "Save visit"),
        (f"/outreach/activities/new/?provider={doctor.pk}", "Save activity"),
    ):
        page.goto(url)
        page.get_by_label("Notes").fill("Dropped off referral pads.")
        page.get_by_label("Next step", exact=True).fill("Bring the wait-time sheet")
        page.get_by_label("Next step due").fill("2001-01-01")
        page.get_by_role("button", name=save).click()
        expect(page.get_by_text("A next step cannot be due before the activity")).to_be_visible()
        expect(page.get_by_label("Next step due")).to_be_focused()
        expect(page.get_by_label("Notes")).to_have_value("Dropped off referral pads.")
    assert not Activity.objects.exists()
    assert page.problems == []
