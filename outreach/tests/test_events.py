import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from outreach.factories import EventFactory
from outreach.models import Activity, Event, Invitation
from partners.factories import OrganizationFactory, ProviderFactory, StaffMemberFactory
from registry.factories import RegistryProviderFactory

pytestmark = pytest.mark.django_db


def test_a_liaison_creates_an_event_and_bad_input_keeps_what_was_typed(client_for, liaison):
    client = client_for(liaison)
    refused = client.post(
        reverse("outreach:event_create"),
        {"name": "Annual dinner", "kind": "annual_meeting", "starts_at": "someday"},
    )
    assert refused.status_code == 200
    assert 'value="Annual dinner"' in refused.content.decode()
    response = client.post(
        reverse("outreach:event_create"),
        {
            "name": "Annual dinner",
            "kind": "annual_meeting",
            "starts_at": "2026-12-10T18:30",
            "place": "Riverside Country Club",
        },
    )
    event = Event.objects.get()
    assert response.url == event.get_absolute_url()
    assert event.organizer == liaison


def test_inviting_an_office_twice_invites_each_person_once(client_for, liaison):
    office = OrganizationFactory()
    ProviderFactory.create_batch(2, organization=office)
    StaffMemberFactory(organization=office)
    event = EventFactory()
    client = client_for(liaison)
    url = reverse("outreach:event_invite", args=[event.pk])
    client.post(url, {"organization": office.pk})
    client.post(url, {"organization": office.pk})
    assert event.invitations.count() == 3
    assert event.invitations.filter(provider__isnull=False).count() == 2


def test_an_rsvp_changes_with_htmx_and_returns_the_row_and_the_new_tally(client_for, liaison):
    event = EventFactory()
    invitation = Invitation.objects.create(event=event, provider=ProviderFactory())
    Invitation.objects.create(event=event, provider=ProviderFactory())
    response = client_for(liaison).post(
        reverse("outreach:invitation_update", args=[invitation.pk]),
        {"rsvp": "yes", "attended": "on"},
        HTTP_HX_REQUEST="true",
    )
    body = response.content.decode()
    assert "<html" not in body
    assert f'id="invitation-{invitation.pk}"' in body
    # The tally above the list, swapped out of band: this reply counted, the other not yet.
    tally = re.search(r'<p[^>]*id="rsvp-counts"[^>]*>(.*?)</p>', body, re.S)
    assert 'hx-swap-oob="true"' in tally.group(0)
    assert " ".join(tally.group(1).split()) == (
        "No reply yet: 1 · Coming: 1 · Maybe: 0 · Not coming: 0 · Attended: 1"
    )
    invitation.refresh_from_db()
    assert (invitation.rsvp, invitation.attended) == ("yes", True)
    bad = client_for(liaison).post(
        reverse("outreach:invitation_update", args=[invitation.pk]), {"rsvp": "perhaps"}
    )
    assert bad.status_code == 302
    invitation.refresh_from_db()
    assert invitation.rsvp == "yes"


def test_attendance_becomes_one_event_activity_per_office_however_often_it_is_recorded(
    client_for, liaison
):
    event = EventFactory(starts_at=timezone.now() - timedelta(days=1))
    office = OrganizationFactory(name="Dundee Family Practice")
    came = ProviderFactory(organization=office)
    staff = StaffMemberFactory(organization=office)
    elsewhere = StaffMemberFactory()
    absent = ProviderFactory(organization=office)
    Invitation.objects.create(event=event, provider=came, rsvp="yes", attended=True)
    Invitation.objects.create(event=event, staff=staff, rsvp="yes", attended=True)
    Invitation.objects.create(event=event, staff=elsewhere, rsvp="yes", attended=True)
    Invitation.objects.create(event=event, provider=absent, rsvp="yes", attended=False)
    client = client_for(liaison)
    url = reverse("outreach:event_attendance", args=[event.pk])
    client.post(url)
    client.post(url)
    # Each attendee is on an activity of their own office, so each office's timeline
    # and last touch count the event.
    activity = Activity.objects.get(organization=office)
    assert activity.kind == Activity.Kind.EVENT
    assert activity.event == event
    assert list(activity.providers.all()) == [came]
    assert list(activity.staff.all()) == [staff]
    other = Activity.objects.get(organization=elsewhere.organization)
    assert list(other.staff.all()) == [elsewhere]
    assert Activity.objects.count() == 2
    # A late correction updates the same activities; an office nobody came from any
    # more loses its activity.
    Invitation.objects.filter(provider=absent).update(attended=True)
    Invitation.objects.filter(staff=elsewhere).update(attended=False)
    client.post(url)
    assert list(Activity.objects.all()) == [activity]
    assert set(activity.providers.all()) == {came, absent}


def test_recording_attendance_with_nobody_marked_says_so(client_for, liaison):
    event = EventFactory(starts_at=timezone.now() - timedelta(days=1))
    Invitation.objects.create(event=event, provider=ProviderFactory())
    response = client_for(liaison).post(
        reverse("outreach:event_attendance", args=[event.pk]), follow=True
    )
    assert "Nobody is marked as attended yet." in response.content.decode()
    assert not Activity.objects.exists()


def test_events_are_for_managers_and_liaisons(client_for, manager, liaison, coordinator):
    event = EventFactory()
    for user in (manager, liaison):
        assert client_for(user).get(event.get_absolute_url()).status_code == 200
        assert client_for(user).get(reverse("outreach:event_list")).status_code == 200
    assert client_for(coordinator).get(event.get_absolute_url()).status_code == 404
    assert client_for(coordinator).get(reverse("outreach:event_list")).status_code == 403
    assert (
        client_for(coordinator)
        .post(reverse("outreach:event_attendance", args=[event.pk]))
        .status_code
        == 404
    )


def test_an_invitation_is_for_exactly_one_person():
    from django.db import IntegrityError, transaction

    event = EventFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        Invitation.objects.create(event=event)


def test_attendance_cannot_be_recorded_before_the_event(client_for, liaison):
    event = EventFactory(name="Spring dinner")
    invitation = Invitation.objects.create(event=event, provider=ProviderFactory(owner=liaison))
    Invitation.objects.filter(pk=invitation.pk).update(attended=True)
    response = client_for(liaison).post(
        reverse("outreach:event_attendance", args=[event.pk]), follow=True
    )
    assert response.status_code == 200
    assert "Spring dinner has not happened yet" in response.content.decode()
    assert not Activity.objects.exists()


def test_a_big_event_lists_its_invitees_a_page_at_a_time_with_the_tally_of_them_all(
    client_for, liaison
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    event = EventFactory()
    client = client_for(liaison)

    def invite(count, rsvp):
        for provider in ProviderFactory.create_batch(count):
            Invitation.objects.create(event=event, provider=provider, rsvp=rsvp)

    def shown(page=1):
        with CaptureQueriesContext(connection) as captured:
            body = client.get(event.get_absolute_url(), {"page": page}).content.decode()
        rows = re.findall(r'<li class="list-group-item" id="invitation-\d+"', body)
        tally = re.search(r'<p[^>]*id="rsvp-counts"[^>]*>(.*?)</p>', body, re.S).group(1)
        return len(rows), " ".join(tally.split()), len(captured.captured_queries), body

    invite(3, Invitation.Rsvp.YES)
    shown()  # the session's first request also checks the second factor and saves it
    _, _, few_queries, _ = shown()
    # A dinner for the whole network: 120 physicians invited.
    invite(80, Invitation.Rsvp.INVITED)
    invite(37, Invitation.Rsvp.NO)
    rows, tally, queries, body = shown()
    assert rows == 50
    assert tally == "No reply yet: 80 · Coming: 3 · Maybe: 0 · Not coming: 37 · Attended: 0"
    assert "?page=2" in body
    assert queries == few_queries  # the same queries however many are invited
    last_rows, last_tally, _, _ = shown(page=3)
    assert (last_rows, last_tally) == (20, tally)


# serialized_rollback, like every transactional test before the browser tests: the flush
# after it must not leave the roles post_migrate creates for a later serialized test to
# collide with.
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_invite_pressed_twice_at_once_invites_each_person_once():
    """A double tap on Invite: the second press waits for the first and finds everyone
    invited, rather than failing on the one-invitation-per-person constraint."""
    import threading
    import time

    from django.db import connection, transaction

    from outreach.services.events import event_invite

    office = OrganizationFactory()
    providers = ProviderFactory.create_batch(2, organization=office)
    event = EventFactory()
    second: dict[str, object] = {}

    def press_again() -> None:
        try:
            second["added"] = event_invite(
                event=Event.objects.get(pk=event.pk), providers=providers, staff=[]
            )
        except Exception as error:  # the failure is what is asserted on
            second["error"] = error
        finally:
            connection.close()

    with transaction.atomic():
        first = event_invite(event=event, providers=providers, staff=[])
        other = threading.Thread(target=press_again)
        other.start()
        time.sleep(1)  # the second press reads while the first is still being saved
    other.join()

    assert "error" not in second, second.get("error")
    assert (first, second["added"]) == (2, 0)
    assert event.invitations.count() == 2


def test_an_edit_opened_before_a_colleague_moved_the_event_does_not_move_it_back(
    client_for, liaison, manager
):
    """A manager opens the event to enter the catering bill; meanwhile the organizer moves
    the dinner a week later. The manager's save must not put the old date back without a
    word (and remind every invitee of it)."""
    event = EventFactory(name="Spring dinner", starts_at=timezone.now() + timedelta(days=14))
    url = reverse("outreach:event_update", args=[event.pk])
    opened = client_for(manager).get(url).content.decode()
    version = re.search(r'name="version" value="([^"]*)"', opened)
    as_opened = {
        "name": event.name,
        "kind": event.kind,
        "starts_at": f"{timezone.localtime(event.starts_at):%Y-%m-%dT%H:%M}",
        "place": event.place,
        "remind_days_before": "7",
        # The version the form was opened at, sent back with it.
        "version": version.group(1) if version else "",
    }
    moved = timezone.localtime(event.starts_at + timedelta(days=7))
    colleague = client_for(liaison).post(url, {**as_opened, "starts_at": f"{moved:%Y-%m-%dT%H:%M}"})
    assert colleague.status_code == 302

    response = client_for(manager).post(url, {**as_opened, "cost": "850.00"})

    event.refresh_from_db()
    assert (timezone.localtime(event.starts_at).date(), event.cost) == (moved.date(), None)
    assert response.status_code == 200
    page = response.content.decode()
    assert "Someone changed this event after you opened it" in page
    assert 'value="850.00"' in page
    # Sent again, it is measured against the event as it is now, and saved.
    shown = re.search(r'name="version" value="([^"]*)"', page).group(1)
    again = client_for(manager).post(
        url,
        {
            **as_opened,
            "starts_at": f"{moved:%Y-%m-%dT%H:%M}",
            "cost": "850.00",
            "version": shown,
        },
    )
    assert again.status_code == 302
    event.refresh_from_db()
    assert (timezone.localtime(event.starts_at).date(), event.cost) == (
        moved.date(),
        Decimal("850.00"),
    )


def test_create_pressed_twice_makes_one_event(client_for, liaison):
    """A double tap on Create (or the form sent again from the browser's history): the
    second finds the event just made instead of making a twin that splits the invitations."""
    client = client_for(liaison)
    form = {
        "name": "Spring dinner",
        "kind": "dinner",
        "starts_at": "2026-12-10T18:30",
        "place": "Riverside Country Club",
    }
    first = client.post(reverse("outreach:event_create"), form)
    second = client.post(reverse("outreach:event_create"), form, follow=True)
    event = Event.objects.get()
    assert first.url == event.get_absolute_url()
    assert second.redirect_chain[-1][0] == event.get_absolute_url()
    assert "Spring dinner was created a moment ago" in second.content.decode()
    # Another event at another time is another event.
    client.post(reverse("outreach:event_create"), {**form, "starts_at": "2026-12-17T18:30"})
    assert Event.objects.count() == 2


def test_inviting_an_office_whose_people_are_all_invited_says_so(client_for, liaison):
    """ "Invited 0 people" reads as a failure: the second invite of an office says everyone
    there is already invited, and an office with nobody on record says that."""
    office = OrganizationFactory(name="Dundee Family Practice")
    ProviderFactory.create_batch(2, organization=office)
    empty = OrganizationFactory(name="Lakeside Clinic")
    event = EventFactory()
    client = client_for(liaison)
    url = reverse("outreach:event_invite", args=[event.pk])

    def said(office) -> str:
        response = client.post(url, {"organization": office.pk}, follow=True)
        return " ".join(str(m) for m in response.context["messages"])

    assert said(office) == "Invited 2 people from Dundee Family Practice."
    assert said(office) == "Everyone at Dundee Family Practice is already invited."
    assert said(empty) == (
        "Nobody at Lakeside Clinic to invite: add its providers and staff to the office first."
    )
    StaffMemberFactory(organization=empty)
    assert said(empty) == "Invited 1 person from Lakeside Clinic."


def test_the_event_page_asks_for_the_office_by_typeahead_not_a_list_of_every_office(
    client_for, liaison
):
    """A select of every office weighs megabytes on a network of thousands: the invite box
    is a search that asks for matches, and the page names no office it was not asked for."""
    OrganizationFactory(name="Capitol Primary Care")
    event = EventFactory()
    body = client_for(liaison).get(event.get_absolute_url()).content.decode()
    assert "Capitol Primary Care" not in body
    assert f'hx-get="{reverse("outreach:event_office_typeahead")}"' in body
    assert '<label class="form-label small mb-0" for="id_organization_search">' in body


def test_the_invite_typeahead_finds_offices_by_name_city_or_zip(client_for, liaison, coordinator):
    OrganizationFactory(name="Capitol Primary Care", city="Lincoln", zip_code="68510")
    OrganizationFactory(name="Capitol Heights Clinic", city="Omaha", zip_code="68102")
    OrganizationFactory(name="Lakeside Clinic", city="Lincoln", zip_code="68516")
    url = reverse("outreach:event_office_typeahead")
    client = client_for(liaison)

    def found(text: str) -> list[str]:
        body = client.get(url, {"organization_search": text}).content.decode()
        return re.findall(r'data-picker-label="([^"]+)"', body)

    assert found("capitol") == ["Capitol Heights Clinic", "Capitol Primary Care"]
    assert found("lincoln") == ["Capitol Primary Care", "Lakeside Clinic"]
    assert found("68102") == ["Capitol Heights Clinic"]
    assert found("capitol lincoln") == ["Capitol Primary Care"]
    assert found("c") == []  # one letter matches too much to be useful
    assert "No office matches" in client.get(url, {"organization_search": "zz"}).content.decode()
    assert found("cap\x00itol") == ["Capitol Heights Clinic", "Capitol Primary Care"]
    # Only those who may invite ask for offices here.
    assert client_for(coordinator).get(url, {"organization_search": "capitol"}).status_code == 403


def test_the_invite_typeahead_shows_at_most_ten_offices(client_for, liaison):
    for n in range(12):
        OrganizationFactory(name=f"Capitol Clinic {n:02}")
    body = (
        client_for(liaison)
        .get(reverse("outreach:event_office_typeahead"), {"organization_search": "capitol"})
        .content.decode()
    )
    assert body.count("data-picker-choice=") == 10


def test_inviting_an_office_leaves_out_partners_whose_npi_is_deactivated(client_for, liaison):
    """A partner who retired, moved away or died is not invited in their office's name; the
    liaison is told who was left out, and why."""
    office = OrganizationFactory(name="Dundee Family Practice")
    staying = ProviderFactory(organization=office)
    gone = ProviderFactory(organization=office, first_name="Ann", last_name="Wiebe")
    RegistryProviderFactory(npi=gone.npi, deactivated=True)
    event = EventFactory()
    response = client_for(liaison).post(
        reverse("outreach:event_invite", args=[event.pk]), {"organization": office.pk}, follow=True
    )
    said = [str(m) for m in response.context["messages"]]
    assert said[0] == "Invited 1 person from Dundee Family Practice."
    assert said[1].startswith(f"Not invited: {gone.display_name}. The NPPES registry lists the NPI")
    assert list(event.invitations.values_list("provider", flat=True)) == [staying.pk]


def test_an_invite_without_a_known_office_says_what_to_do_and_invites_nobody(client_for, liaison):
    event = EventFactory()
    client = client_for(liaison)
    url = reverse("outreach:event_invite", args=[event.pk])
    for data, message in [
        ({}, "Choose an office to invite."),
        (
            {"organization": "999999", "organization_search": "Nowhere"},
            "Choose an office from the list.",
        ),
        ({"organization": "abc"}, "Choose an office from the list."),
    ]:
        response = client.post(url, data, follow=True)
        assert [str(m) for m in response.context["messages"]] == [message]
    assert not event.invitations.exists()
