import re
from datetime import timedelta

import icalendar
import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.services import user_deactivate
from outreach.factories import EventFactory, PlannedVisitFactory, TaskFactory
from outreach.models import CalendarFeed, Task
from outreach.services.loop import thank_you_prepare
from partners.factories import OrganizationFactory, ProviderFactory
from referrals.factories import ReferralFactory
from referrals.models import Referral, ReferralEvent

pytestmark = pytest.mark.django_db


def make_feed_url(client) -> str:
    page = client.post(reverse("outreach:calendar_settings"), {"action": "regenerate"})
    match = re.search(
        r'value="(http://testserver/outreach/calendar/[^"]+\.ics)"', page.content.decode()
    )
    assert match, "the new URL is shown once"
    return match.group(1).removeprefix("http://testserver")


def test_the_feed_carries_visits_events_and_due_tasks_as_ical(client, client_for, liaison):
    office = OrganizationFactory(name="Kearney Family Practice", city="Kearney", zip_code="68847")
    PlannedVisitFactory(liaison=liaison, organization=office, position=0)
    EventFactory(name="Annual referral-partner dinner")
    TaskFactory(assignee=liaison, title="Send the consult report", due_on=timezone.localdate())
    TaskFactory(title="Someone else's task")
    url = make_feed_url(client_for(liaison))
    response = client.get(url)  # a calendar app: no session
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/calendar")
    calendar = icalendar.Calendar.from_ical(response.content)
    summaries = sorted(str(event["summary"]) for event in calendar.walk("VEVENT"))
    assert summaries == [
        "1. Visit Kearney Family Practice",
        "Annual meeting: Annual referral-partner dinner",
        "Due: Send the consult report",
    ]
    assert CalendarFeed.objects.get(user=liaison).last_read_at is not None


def test_the_feed_holds_nothing_of_the_patient(client, client_for, liaison):
    doctor = ProviderFactory(owner=liaison)
    referral = ReferralFactory(
        provider=doctor,
        patient_first_name="Ruth",
        patient_last_name="Olsen",
        direction=Referral.Direction.INBOUND,
    )
    Referral.objects.filter(pk=referral.pk).update(seen_at=timezone.now())
    ReferralEvent.objects.create(referral=referral, from_status="scheduled", to_status="seen")
    thank_you_prepare(referral_id=referral.pk)
    Task.objects.filter(referral=referral).update(due_on=timezone.localdate())
    body = client.get(make_feed_url(client_for(liaison))).content.decode()
    # The thank-you task is there, by its kind and partner, without even the initials.
    partner = doctor.display_name.replace(",", "\\,")  # iCalendar escapes commas
    assert f"SUMMARY:Due: Thank-you · {partner}" in body.replace("\r\n ", "")
    assert "R.O." not in body
    assert "Ruth" not in body and "Olsen" not in body
    assert referral.reason not in body


def test_a_new_url_replaces_the_old_one_and_turning_it_off_gives_404(client, client_for, liaison):
    owner = client_for(liaison)
    first = make_feed_url(owner)
    second = make_feed_url(owner)
    assert client.get(first).status_code == 404
    assert client.get(second).status_code == 200
    owner.post(reverse("outreach:calendar_settings"), {"action": "revoke"})
    assert client.get(second).status_code == 404
    assert not CalendarFeed.objects.exists()


def test_only_a_hash_of_the_token_is_stored(client_for, liaison):
    url = make_feed_url(client_for(liaison))
    token = url.rsplit("/", 1)[1].removesuffix(".ics")
    stored = CalendarFeed.objects.get(user=liaison).token_hash
    assert token not in stored
    assert stored == CalendarFeed.hash_token(token)
    page = client_for(liaison).get(reverse("outreach:calendar_settings")).content.decode()
    assert token not in page
    assert "cannot be shown again" in page


def test_an_unknown_token_and_a_deactivated_user_get_404(client, client_for, liaison):
    assert client.get(reverse("outreach:calendar_feed", args=["nope"])).status_code == 404
    url = make_feed_url(client_for(liaison))
    liaison.is_active = False
    liaison.save()
    assert client.get(url).status_code == 404


def test_a_deactivated_user_s_calendar_url_stays_dead_when_they_are_reactivated(
    client, client_for, liaison
):
    url = make_feed_url(client_for(liaison))
    user_deactivate(user=liaison)
    # Back one day (a leave, a rehire): the URL on the phone that left must not open again.
    liaison.is_active = True
    liaison.save()
    assert client.get(url).status_code == 404
    assert not CalendarFeed.objects.filter(user=liaison).exists()


def test_old_and_skipped_visits_stay_out_of_the_feed(client, client_for, liaison):
    PlannedVisitFactory(
        liaison=liaison,
        organization=OrganizationFactory(name="Long Ago Clinic"),
        planned_on=timezone.localdate() - timedelta(days=90),
    )
    PlannedVisitFactory(
        liaison=liaison,
        organization=OrganizationFactory(name="Skipped Clinic"),
        status="skipped",
    )
    body = client.get(make_feed_url(client_for(liaison))).content.decode()
    assert "Long Ago Clinic" not in body
    assert "Skipped Clinic" not in body


def test_the_feed_carries_events_only_for_those_who_may_see_them(client, client_for, coordinator):
    """A coordinator has no events page (they are the liaisons' and managers'): their
    feed carries their tasks, not the practice's events either."""
    EventFactory(name="Annual referral-partner dinner")
    TaskFactory(assignee=coordinator, title="Call the office back", due_on=timezone.localdate())
    assert client_for(coordinator).get(reverse("outreach:event_list")).status_code == 403
    calendar = icalendar.Calendar.from_ical(
        client.get(make_feed_url(client_for(coordinator))).content
    )
    summaries = [str(event["summary"]) for event in calendar.walk("VEVENT")]
    assert summaries == ["Due: Call the office back"]


def test_a_cancelled_event_stays_in_the_feed_marked_cancelled_under_the_same_uid(
    client, client_for, liaison
):
    """Calendar apps strike an entry through when it comes back with STATUS:CANCELLED, the
    same UID and a higher SEQUENCE; an entry that simply vanishes stays in some of them."""
    from outreach.services.events import event_cancel

    event = EventFactory(name="Spring dinner")
    url = make_feed_url(client_for(liaison))

    def entry():
        calendar = icalendar.Calendar.from_ical(client.get(url).content)
        (found,) = [e for e in calendar.walk("VEVENT") if str(e["uid"]).startswith("event-")]
        return found

    before = entry()
    assert str(before["status"]) == "CONFIRMED"
    event_cancel(event=event, actor=liaison, reason="The speaker is ill")
    after = entry()
    assert str(after["uid"]) == str(before["uid"]) == f"event-{event.pk}@testserver"
    assert str(after["status"]) == "CANCELLED"
    assert int(after["sequence"]) > int(before["sequence"])
    assert str(after["summary"]) == "Cancelled: Annual meeting: Spring dinner"


def test_an_event_that_moves_comes_back_with_a_higher_sequence(client, client_for, liaison):
    from outreach import meetings

    event = EventFactory(name="Spring dinner")
    url = make_feed_url(client_for(liaison))

    def sequence():
        calendar = icalendar.Calendar.from_ical(client.get(url).content)
        (found,) = [e for e in calendar.walk("VEVENT") if str(e["uid"]).startswith("event-")]
        return int(found["sequence"])

    first = sequence()
    event.starts_at += timedelta(days=1)
    meetings.event_save(event=event, changed=["starts_at"])
    assert sequence() == first + 1


def _event_names(client, url):
    calendar = icalendar.Calendar.from_ical(client.get(url).content)
    return sorted(
        str(entry["summary"]).rsplit(": ", 1)[1]
        for entry in calendar.walk("VEVENT")
        if str(entry["uid"]).startswith("event-")
    )


def test_a_feed_carries_every_event_until_its_owner_chooses_only_theirs(
    client, client_for, liaison, other_liaison
):
    from outreach.models import Invitation
    from outreach.services.events import event_cancel

    soon = timezone.now() + timedelta(days=5)
    EventFactory(name="Organized by me", organizer=liaison, starts_at=soon)
    invited = EventFactory(name="My partner invited", organizer=other_liaison, starts_at=soon)
    Invitation.objects.create(
        event=invited, provider=ProviderFactory(owner=liaison), rsvp=Invitation.Rsvp.NO
    )
    called_off = EventFactory(name="Called off", organizer=liaison, starts_at=soon)
    event_cancel(event=called_off, actor=liaison, reason="Venue closed")
    other = EventFactory(name="Someone else's", organizer=other_liaison, starts_at=soon)
    Invitation.objects.create(event=other, provider=ProviderFactory(owner=other_liaison))
    browser = client_for(liaison)
    url = make_feed_url(browser)

    # Subscribers keep what they had: every event.
    assert CalendarFeed.objects.get(user=liaison).events == CalendarFeed.Events.ALL
    assert _event_names(client, url) == [
        "Called off",
        "My partner invited",
        "Organized by me",
        "Someone else's",
    ]

    page = browser.get(reverse("outreach:calendar_settings")).content.decode()
    assert 'name="events"' in page and "Only mine" in page
    response = browser.post(
        reverse("outreach:calendar_settings"), {"action": "events", "events": "mine"}, follow=True
    )
    assert "your feed now carries only the events you organize" in response.content.decode()
    # The same URL, now only the user's own events (a cancelled one stays, marked).
    assert _event_names(client, url) == ["Called off", "My partner invited", "Organized by me"]
    # A new URL keeps the choice.
    assert _event_names(client, make_feed_url(browser)) == [
        "Called off",
        "My partner invited",
        "Organized by me",
    ]


def test_a_bad_feed_events_choice_is_refused_with_a_message_and_changes_nothing(
    client_for, liaison
):
    browser = client_for(liaison)
    make_feed_url(browser)
    response = browser.post(
        reverse("outreach:calendar_settings"), {"action": "events", "events": "everyone"}
    )
    assert response.status_code == 200
    assert "Select a valid choice" in response.content.decode()
    assert CalendarFeed.objects.get(user=liaison).events == CalendarFeed.Events.ALL


def test_choosing_feed_events_without_a_feed_asks_to_make_one_first(client_for, liaison):
    response = client_for(liaison).post(
        reverse("outreach:calendar_settings"), {"action": "events", "events": "mine"}, follow=True
    )
    assert "Make your calendar URL first" in response.content.decode()
    assert not CalendarFeed.objects.filter(user=liaison).exists()


def test_the_only_mine_feed_reads_in_the_same_queries(
    client, client_for, liaison, django_assert_num_queries
):
    from outreach.models import Invitation

    browser = client_for(liaison)
    url = make_feed_url(browser)
    browser.post(reverse("outreach:calendar_settings"), {"action": "events", "events": "mine"})

    def add_events(count):
        for _ in range(count):
            event = EventFactory(starts_at=timezone.now() + timedelta(days=3))
            Invitation.objects.create(event=event, provider=ProviderFactory(owner=liaison))

    add_events(1)
    client.get(url)
    with django_assert_num_queries(6) as few:
        client.get(url)
    add_events(4)
    with django_assert_num_queries(len(few.captured_queries)):
        assert len(_event_names(client, url)) == 5
