"""Cancelling an event: who may, when, what it records and what it stops."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape

from core.factories import UserFactory
from core.templatetags.people import person
from outreach.factories import EventFactory
from outreach.models import Activity, Event, Invitation, Letter, LetterTemplate
from outreach.services import letters as letter_services
from partners.factories import OrganizationFactory, ProviderFactory
from tests.concurrency import in_a_thread

pytestmark = pytest.mark.django_db

REMINDER = LetterTemplate.Kind.EVENT_REMINDER


def cancel_url(event):
    return reverse("outreach:event_cancel", args=[event.pk])


def reminder(invitation, status):
    return Letter.objects.create(
        kind=REMINDER,
        provider=invitation.provider,
        invitation=invitation,
        subject="Reminder",
        body="See you there",
        due_on=timezone.localdate(),
        status=status,
    )


def test_a_liaison_cancels_an_upcoming_event_with_a_reason_and_the_page_says_so(
    client_for, liaison
):
    event = EventFactory(name="Spring lunch-and-learn")
    client = client_for(liaison)
    page = client.get(event.get_absolute_url()).content.decode()
    assert cancel_url(event) in page
    confirm = client.get(cancel_url(event))
    assert confirm.status_code == 200
    assert "cannot be undone" in confirm.content.decode()

    response = client.post(cancel_url(event), {"cancel_reason": "  The speaker is ill  "})
    assert response.url == event.get_absolute_url()
    event.refresh_from_db()
    assert event.cancelled_by == liaison
    assert event.cancel_reason == "The speaker is ill"
    assert timezone.now() - event.cancelled_at < timedelta(minutes=1)
    page = client.get(event.get_absolute_url()).content.decode()
    assert "is cancelled: its invitees get no more reminders" in page
    assert f"by {liaison.get_full_name()}: The speaker is ill" in page
    assert cancel_url(event) not in page


def test_a_cancel_without_a_reason_asks_for_one_and_changes_nothing(client_for, liaison):
    event = EventFactory()
    response = client_for(liaison).post(cancel_url(event), {"cancel_reason": "   "})
    assert response.status_code == 200
    assert "This field is required." in response.content.decode()
    event.refresh_from_db()
    assert event.cancelled_at is None


def test_only_those_who_may_edit_the_event_may_cancel_it(client_for, manager, coordinator):
    event = EventFactory()
    reader = UserFactory(username="reader")
    reader.user_permissions.add(Permission.objects.get(codename="view_event"))
    assert client_for(reader).get(event.get_absolute_url()).status_code == 200
    assert (
        cancel_url(event) not in client_for(reader).get(event.get_absolute_url()).content.decode()
    )
    for user in (reader, coordinator):
        assert client_for(user).get(cancel_url(event)).status_code == 404
        assert client_for(user).post(cancel_url(event), {"cancel_reason": "x"}).status_code == 404
    event.refresh_from_db()
    assert event.cancelled_at is None
    # A manager may, as they may edit it.
    client_for(manager).post(cancel_url(event), {"cancel_reason": "Venue flooded"})
    event.refresh_from_db()
    assert event.cancelled_by == manager


def test_a_second_cancel_is_refused_with_a_message_and_keeps_the_first(
    client_for, liaison, manager
):
    event = EventFactory(name="Spring dinner")
    client_for(liaison).post(cancel_url(event), {"cancel_reason": "The speaker is ill"})
    again = client_for(manager).post(cancel_url(event), {"cancel_reason": "Other"}, follow=True)
    assert again.status_code == 200
    assert "Spring dinner was cancelled: you cannot cancel it again." in again.content.decode()
    confirm = client_for(manager).get(cancel_url(event))
    assert "you cannot cancel it again" in confirm.content.decode()
    event.refresh_from_db()
    assert (event.cancelled_by, event.cancel_reason) == (liaison, "The speaker is ill")


def test_an_event_that_has_taken_place_cannot_be_cancelled(client_for, liaison):
    event = EventFactory(name="Winter dinner", starts_at=timezone.now() - timedelta(hours=1))
    page = client_for(liaison).get(event.get_absolute_url()).content.decode()
    assert cancel_url(event) not in page
    response = client_for(liaison).post(cancel_url(event), {"cancel_reason": "Oops"}, follow=True)
    assert response.status_code == 200
    assert "Winter dinner has already started or taken place" in response.content.decode()
    event.refresh_from_db()
    assert event.cancelled_at is None


def test_the_database_refuses_a_cancellation_without_a_reason():
    from django.db import IntegrityError, transaction

    event = EventFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        Event.objects.filter(pk=event.pk).update(cancelled_at=timezone.now())


def test_reminders_waiting_or_in_the_print_queue_are_withdrawn_and_sent_ones_stay(
    client_for, liaison
):
    event = EventFactory()
    invitations = [
        Invitation.objects.create(event=event, provider=ProviderFactory()) for _ in range(4)
    ]
    waiting = reminder(invitations[0], Letter.Status.PENDING)
    queued = reminder(invitations[1], Letter.Status.PRINT_QUEUE)
    sent = reminder(invitations[2], Letter.Status.SENT)
    skipped = reminder(invitations[3], Letter.Status.SKIPPED)
    client_for(liaison).post(cancel_url(event), {"cancel_reason": "The speaker is ill"})
    statuses = {
        letter.pk: (letter.status, letter.last_error)
        for letter in Letter.objects.filter(kind=REMINDER)
    }
    withdrawn = (Letter.Status.CANCELLED, "Withdrawn: the event was cancelled")
    assert statuses[waiting.pk] == withdrawn
    assert statuses[queued.pk] == withdrawn
    assert statuses[sent.pk] == (Letter.Status.SENT, "")
    assert statuses[skipped.pk] == (Letter.Status.SKIPPED, "")


def cancelled_event(**kwargs):
    event = EventFactory(**kwargs)
    Event.objects.filter(pk=event.pk).update(
        cancelled_at=timezone.now(), cancel_reason="The speaker is ill"
    )
    event.refresh_from_db()
    return event


def test_attendance_is_refused_for_a_cancelled_event(client_for, liaison):
    event = cancelled_event(name="Spring dinner", starts_at=timezone.now() - timedelta(days=1))
    invitation = Invitation.objects.create(event=event, provider=ProviderFactory())
    Invitation.objects.filter(pk=invitation.pk).update(attended=True)
    page = client_for(liaison).get(event.get_absolute_url()).content.decode()
    assert reverse("outreach:event_attendance", args=[event.pk]) not in page
    response = client_for(liaison).post(reverse("outreach:event_attendance", args=[event.pk]))
    assert response.status_code == 200
    assert "Spring dinner was cancelled: you cannot record who came." in response.content.decode()
    assert not Activity.objects.exists()


def test_nobody_can_be_invited_to_a_cancelled_event(client_for, liaison):
    event = cancelled_event(name="Spring dinner")
    office = OrganizationFactory()
    ProviderFactory(organization=office)
    page = client_for(liaison).get(event.get_absolute_url()).content.decode()
    assert reverse("outreach:event_invite", args=[event.pk]) not in page
    response = client_for(liaison).post(
        reverse("outreach:event_invite", args=[event.pk]), {"organization": office.pk}, follow=True
    )
    assert response.status_code == 200
    assert "Spring dinner was cancelled: you cannot invite anyone to it." in (
        response.content.decode()
    )
    assert not event.invitations.exists()


def test_rsvps_and_who_came_are_not_changed_on_a_cancelled_event(client_for, liaison):
    event = cancelled_event(name="Spring dinner")
    invitation = Invitation.objects.create(event=event, provider=ProviderFactory())
    url = reverse("outreach:invitation_update", args=[invitation.pk])
    client = client_for(liaison)
    assert url not in client.get(event.get_absolute_url()).content.decode()
    response = client.post(url, {"rsvp": "yes", "attended": "on"}, HTTP_HX_REQUEST="true")
    assert response.status_code == 302
    followed = client.get(response.url).content.decode()
    assert "you cannot change who is coming or who came" in followed
    invitation.refresh_from_db()
    assert (invitation.rsvp, invitation.attended) == (Invitation.Rsvp.INVITED, False)


def test_the_events_list_marks_cancelled_events_in_the_same_queries(
    client_for, liaison, django_assert_num_queries
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client = client_for(liaison)
    EventFactory(name="Summer dinner")
    cancelled_event(name="Spring dinner")
    client.get(reverse("outreach:event_list"))  # the session's first request
    with CaptureQueriesContext(connection) as few:
        body = client.get(reverse("outreach:event_list")).content.decode()
    assert "<del>Spring dinner</del>" in body
    assert "Cancelled: The speaker is ill" in body
    assert "<del>Summer dinner</del>" not in body
    for _ in range(10):
        cancelled_event(name="Another cancelled dinner")
        EventFactory(name="Another dinner")
    with django_assert_num_queries(len(few.captured_queries)):
        client.get(reverse("outreach:event_list"))


# --- Reminders stop ------------------------------------------------------------------------


def in_days(days, hour=18):
    moment = timezone.localtime() + timedelta(days=days)
    return moment.replace(hour=hour, minute=30, second=0, microsecond=0)


def test_the_reminder_run_writes_nothing_for_a_cancelled_event(liaison):
    from outreach import meetings
    from outreach.services.events import event_cancel

    event = EventFactory(starts_at=in_days(3), remind_days_before=7)
    live = EventFactory(starts_at=in_days(3), remind_days_before=7)
    Invitation.objects.create(event=event, provider=ProviderFactory())
    kept = Invitation.objects.create(event=live, provider=ProviderFactory())
    event_cancel(event=event, actor=liaison, reason="The speaker is ill")

    assert [letter.invitation_id for letter in meetings.event_reminders_prepare()] == [kept.pk]
    assert not Letter.objects.filter(invitation__event=event, kind=REMINDER).exists()


def test_a_cancel_that_comes_while_the_reminders_are_written_is_heeded(monkeypatch, liaison):
    from outreach import meetings
    from outreach.services.events import event_cancel

    event = EventFactory(starts_at=in_days(3), remind_days_before=7)
    for _ in range(2):
        Invitation.objects.create(event=event, provider=ProviderFactory())
    # The moment each letter is routed, as it is written (letter_to).
    real_route = letter_services.letter_route
    cancelled = []

    def route(provider, kind, **kwargs):
        # The run has read the invitations and their event; the cancel is saved now.
        if not cancelled:
            cancelled.append(event)
            event_cancel(event=event, actor=liaison, reason="Speaker ill")
        return real_route(provider, kind, **kwargs)

    monkeypatch.setattr(letter_services, "letter_route", route)
    assert meetings.event_reminders_prepare() == []
    assert not Letter.objects.filter(kind=REMINDER).exists()


def test_a_reminder_of_a_cancelled_event_handed_to_delivery_is_not_sent(mailoutbox):
    from outreach.services import delivery

    event = cancelled_event(starts_at=in_days(3))
    invitation = Invitation.objects.create(
        event=event, provider=ProviderFactory(email="p@example.org", preferred_channel="email")
    )
    # Waiting again after the cancel withdrew the others (a decline undone at that moment).
    letter = reminder(invitation, Letter.Status.PENDING)
    Letter.objects.filter(pk=letter.pk).update(channel="email", recipient="p@example.org")

    delivery.letters_deliver(letter_ids=[letter.pk])

    letter.refresh_from_db()
    assert (letter.status, letter.last_error) == (
        Letter.Status.CANCELLED,
        "Withdrawn: the event was cancelled",
    )
    assert mailoutbox == []


def test_reminders_switched_back_on_for_a_cancelled_event_stay_withdrawn(liaison):
    from outreach import meetings

    event = EventFactory(starts_at=in_days(3), remind_days_before=0)
    invitation = Invitation.objects.create(event=event, provider=ProviderFactory())
    letter = reminder(invitation, Letter.Status.CANCELLED)
    Letter.objects.filter(pk=letter.pk).update(last_error=meetings.NO_REMINDERS)
    Event.objects.filter(pk=event.pk).update(
        cancelled_at=timezone.now(), cancel_reason="The speaker is ill"
    )
    event.refresh_from_db()
    event.remind_days_before = 7
    meetings.event_save(event=event, changed=["remind_days_before"])

    letter.refresh_from_db()
    assert letter.status == Letter.Status.CANCELLED
    assert meetings.event_reminders_prepare() == []


def test_an_invitation_to_a_cancelled_annual_meeting_does_not_hold_back_the_reminder_task(
    liaison,
):
    from outreach import meetings
    from outreach.models import Task

    provider = ProviderFactory(tier="A", owner=liaison)
    Invitation.objects.create(
        event=cancelled_event(kind=Event.Kind.ANNUAL_MEETING, starts_at=in_days(30)),
        provider=provider,
    )
    assert meetings.annual_meeting_status(provider).next_at is None
    [task] = meetings.annual_meeting_reminders_create()
    assert (task.provider, task.kind) == (provider, Task.Kind.ANNUAL_MEETING)


def test_the_daily_digest_leaves_out_cancelled_events(liaison):
    from outreach import meetings

    provider = ProviderFactory(owner=liaison)
    live = EventFactory(name="Summer dinner", starts_at=in_days(2), organizer=liaison)
    called_off = cancelled_event(name="Spring dinner", starts_at=in_days(2), organizer=liaison)
    Invitation.objects.create(event=called_off, provider=provider)
    agenda = meetings.digest_agenda([liaison], today=timezone.localdate())
    assert agenda[liaison.pk]["events"] == [live]


# serialized_rollback, like every transactional test before the browser tests.
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_reminder_run_that_meets_a_cancel_being_saved_waits_for_it_and_writes_nothing(
    monkeypatch,
):
    import time

    from django.db import transaction

    from outreach import meetings, tasks
    from outreach.services.events import event_cancel

    event = EventFactory(starts_at=in_days(3), remind_days_before=7)
    for _ in range(2):
        Invitation.objects.create(event=event, provider=ProviderFactory())
    # The cancellation notices are not handed to a real broker.
    monkeypatch.setattr(tasks.deliver_letters, "apply_async", lambda *args, **kwargs: None)
    run: dict[str, object] = {}
    with transaction.atomic():
        event_cancel(event=event, actor=UserFactory(), reason="The speaker is ill")
        other = in_a_thread(meetings.event_reminders_prepare, run)
        time.sleep(1)  # the run reads the event while the cancel is still being saved
    other.join()

    assert "error" not in run, run.get("error")
    assert run["result"] == []
    assert not Letter.objects.filter(kind=REMINDER).exists()


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_cancel_that_meets_a_reminder_run_being_saved_withdraws_what_it_wrote(monkeypatch):
    import time

    from django.db import transaction

    from outreach import meetings, tasks
    from outreach.services.events import event_cancel

    event = EventFactory(starts_at=in_days(3), remind_days_before=7)
    for _ in range(2):
        Invitation.objects.create(event=event, provider=ProviderFactory())
    # The cancellation notices are not handed to a real broker.
    monkeypatch.setattr(tasks.deliver_letters, "apply_async", lambda *args, **kwargs: None)
    cancel: dict[str, object] = {}
    with transaction.atomic():
        written = meetings.event_reminders_prepare()
        other = in_a_thread(
            lambda: event_cancel(
                event=Event.objects.get(pk=event.pk), actor=UserFactory(), reason="Speaker ill"
            ),
            cancel,
        )
        time.sleep(1)  # the cancel comes while the run's letters are still being saved
    other.join()

    assert "error" not in cancel, cancel.get("error")
    assert len(written) == 2
    assert set(Letter.objects.filter(kind=REMINDER).values_list("status", flat=True)) == {
        Letter.Status.CANCELLED
    }


# --- The cancellation notice ---------------------------------------------------------------

NOTICE = LetterTemplate.Kind.EVENT_CANCELLED


def test_invitees_get_a_cancellation_notice_by_their_channel_and_opt_outs_are_kept(
    client_for, liaison, django_capture_on_commit_callbacks, monkeypatch, mailoutbox
):
    from outreach import tasks
    from partners.factories import StaffMemberFactory

    event = EventFactory(name="Spring dinner", place="Riverside Country Club")

    def invite(rsvp=Invitation.Rsvp.INVITED, **provider):
        return Invitation.objects.create(
            event=event, provider=ProviderFactory(**provider), rsvp=rsvp
        )

    coming = invite(
        Invitation.Rsvp.YES,
        first_name="Ana",
        last_name="Reyes",
        credential="MD",
        email="reyes@example.org",
        preferred_channel="email",
        owner=liaison,
    )
    by_fax = invite(email="", organization__fax="4025550100", preferred_channel="fax")
    opted_out = invite(letters_opt_out=True)
    no_marketing = invite(marketing_opt_out=True)
    invite(Invitation.Rsvp.NO)
    Invitation.objects.create(event=event, staff=StaffMemberFactory())
    queued = []
    monkeypatch.setattr(
        tasks.deliver_letters, "apply_async", lambda args, **kw: queued.append(args)
    )

    with django_capture_on_commit_callbacks(execute=True):
        client_for(liaison).post(cancel_url(event), {"cancel_reason": "The speaker is ill"})
        # A second press writes no second notice.
        client_for(liaison).post(cancel_url(event), {"cancel_reason": "The speaker is ill"})

    notices = {letter.invitation_id: letter for letter in Letter.objects.filter(kind=NOTICE)}
    assert set(notices) == {coming.pk, by_fax.pk, opted_out.pk, no_marketing.pk}
    email = notices[coming.pk]
    assert (email.channel, email.status, email.recipient) == (
        "email",
        Letter.Status.PENDING,
        "reyes@example.org",
    )
    assert email.subject.startswith("Cancelled: Spring dinner on ")
    assert "Dear Ana Reyes, MD" in email.body
    assert "Riverside Country Club" in email.body
    assert "{{" not in email.body + email.subject
    # The reason is the practice's own note: it is not written to partners.
    assert "speaker" not in email.body
    assert (notices[by_fax.pk].channel, notices[by_fax.pk].status) == ("fax", "pending")
    assert notices[opted_out.pk].status == Letter.Status.SKIPPED
    assert notices[no_marketing.pk].status == Letter.Status.SKIPPED
    # Handed to delivery once the cancel is saved, and sent.
    assert [sorted(args[0]) for args in queued] == [sorted([email.pk, notices[by_fax.pk].pk])]
    from outreach.services import delivery

    delivery.letters_deliver(letter_ids=[email.pk])
    [sent] = mailoutbox
    assert sent.to == ["reyes@example.org"]
    assert Letter.objects.get(pk=email.pk).status == Letter.Status.SENT


def test_the_cancellation_notice_template_is_edited_like_the_others(client_for, manager):
    from outreach.models.merge_fields import merge_fields_for

    page = client_for(manager).get(reverse("outreach:template_list")).content.decode()
    assert "Event cancelled" in page
    template = LetterTemplate.objects.get(kind=NOTICE)
    assert "{{ event_name }}" in template.subject
    assert {"event_name", "event_date", "event_place"} <= set(merge_fields_for(NOTICE))
    assert "patient_initials" not in merge_fields_for(NOTICE)


def test_only_the_organizer_or_a_manager_changes_or_cancels_an_event(
    client_for, liaison, other_liaison, manager
):
    """Any colleague may help run an event (invite, RSVPs, who came), but its date, place,
    cost and its cancelling are its organizer's or a manager's: another liaison is refused,
    told whose it is, and is not offered the buttons."""
    event = EventFactory(organizer=liaison, name="Spring lunch-and-learn")
    other = client_for(other_liaison)
    page = other.get(event.get_absolute_url()).content.decode()
    assert f"organized by {escape(person(liaison))}" in page
    assert reverse("outreach:event_update", args=[event.pk]) not in page
    assert reverse("outreach:event_cancel", args=[event.pk]) not in page
    for name in ("outreach:event_update", "outreach:event_cancel"):
        response = other.get(reverse(name, args=[event.pk]))
        assert response.status_code == 403
        assert f"Spring lunch-and-learn is {escape(person(liaison))}" in response.content.decode()
    refused = other.post(
        reverse("outreach:event_cancel", args=[event.pk]), {"cancel_reason": "Speaker ill"}
    )
    assert refused.status_code == 403
    event.refresh_from_db()
    assert event.cancelled_at is None
    # The organizer and a manager are offered both and may use them.
    for user in (liaison, manager):
        page = client_for(user).get(event.get_absolute_url()).content.decode()
        assert reverse("outreach:event_update", args=[event.pk]) in page
        assert reverse("outreach:event_cancel", args=[event.pk]) in page
    assert (
        client_for(manager).get(reverse("outreach:event_update", args=[event.pk])).status_code
        == 200
    )
    # Running it stays open to the colleague: an office invited, by typing.
    office = OrganizationFactory()
    ProviderFactory(organization=office)
    other.post(reverse("outreach:event_invite", args=[event.pk]), {"organization": office.pk})
    assert event.invitations.count() == 1


def test_invited_office_staff_are_told_by_the_organizer_by_their_channel_and_opt_outs_kept(
    liaison, manager, monkeypatch
):
    """Staff get no letters (a letter is addressed to a partner): the organizer, who invited
    them, gets a task naming each staff member not declined and how to reach them; an
    office opted out of letters or invitations is named as not to be contacted."""
    from outreach import tasks
    from outreach.models import Task
    from outreach.services.events import event_cancel
    from partners.factories import StaffMemberFactory

    monkeypatch.setattr(tasks.deliver_letters, "apply_async", lambda *args, **kwargs: None)
    event = EventFactory(name="Spring dinner", organizer=liaison, starts_at=in_days(5))
    office = OrganizationFactory(name="Lakeside Family Medicine", phone="4025550199")

    def invite(rsvp=Invitation.Rsvp.INVITED, **staff):
        staff.setdefault("organization", office)
        return Invitation.objects.create(event=event, staff=StaffMemberFactory(**staff), rsvp=rsvp)

    invite(first_name="Eve", last_name="Mail", email="eve@lakeside.example", role="front_desk")
    invite(first_name="Phil", last_name="Phone", email="", phone="4025550123")
    invite(first_name="Nora", last_name="Nothing", email="", phone="")
    invite(Invitation.Rsvp.NO, first_name="Dee", last_name="Clined", email="dee@x.example")
    invite(
        first_name="Opal",
        last_name="Out",
        email="opal@x.example",
        organization=OrganizationFactory(name="Quiet Clinic", marketing_opt_out=True),
    )
    event_cancel(event=event, actor=manager, reason="The speaker is ill")

    [task] = Task.objects.all()
    assert task.assignee == liaison
    assert task.status == Task.Status.OPEN
    assert task.due_on == timezone.localdate()
    assert "Spring dinner" in task.title
    assert "Eve Mail (Front desk, Lakeside Family Medicine): email eve@lakeside.example" in (
        task.detail
    )
    assert "Phil Phone" in task.detail and "call 4025550123" in task.detail
    assert "Nora Nothing" in task.detail and "call the office at 4025550199" in task.detail
    assert "Dee" not in task.detail
    not_to_contact = task.detail.split("Not to be contacted")[1]
    assert "Opal Out" in not_to_contact and "opal@x.example" not in task.detail
    # The reason is the practice's own note, as in the partners' notices.
    assert "speaker" not in task.detail
    # Staff still get no letter: letters are addressed to partners.
    assert not Letter.objects.exists()


def test_an_event_without_an_organizer_leaves_the_staff_task_to_whoever_cancelled(
    manager, monkeypatch
):
    from outreach import tasks
    from outreach.models import Task
    from outreach.services.events import event_cancel
    from partners.factories import StaffMemberFactory

    monkeypatch.setattr(tasks.deliver_letters, "apply_async", lambda *args, **kwargs: None)
    event = EventFactory(organizer=None, starts_at=in_days(5))
    Invitation.objects.create(event=event, staff=StaffMemberFactory(email="a@b.example"))
    event_cancel(event=event, actor=manager, reason="Venue closed")
    assert Task.objects.get().assignee == manager


def test_no_staff_task_when_no_staff_member_is_left_to_tell(liaison, monkeypatch):
    from outreach import tasks
    from outreach.models import Task
    from outreach.services.events import event_cancel
    from partners.factories import StaffMemberFactory

    monkeypatch.setattr(tasks.deliver_letters, "apply_async", lambda *args, **kwargs: None)
    event = EventFactory(organizer=liaison, starts_at=in_days(5))
    Invitation.objects.create(event=event, provider=ProviderFactory())
    Invitation.objects.create(event=event, staff=StaffMemberFactory(), rsvp=Invitation.Rsvp.NO)
    event_cancel(event=event, actor=liaison, reason="Venue closed")
    assert not Task.objects.exists()


# --- A reminder in delivery meets the cancel ------------------------------------------------


def _emailed_reminder(event, email="p@example.org"):
    invitation = Invitation.objects.create(
        event=event, provider=ProviderFactory(email=email, preferred_channel="email")
    )
    letter = reminder(invitation, Letter.Status.PENDING)
    Letter.objects.filter(pk=letter.pk).update(channel="email", recipient=email)
    return letter


def test_a_cancel_saved_while_earlier_letters_of_the_batch_go_stops_the_reminder_after_them(
    monkeypatch, mailoutbox, liaison
):
    """The check is made just before each reminder's send, not once for the batch: a cancel
    saved while the letters before it were being sent is heeded."""
    from outreach import tasks
    from outreach.services import delivery
    from outreach.services.events import event_cancel

    monkeypatch.setattr(tasks.deliver_letters, "apply_async", lambda *args, **kwargs: None)
    event = EventFactory(starts_at=in_days(3))
    first = _emailed_reminder(EventFactory(starts_at=in_days(4)), "first@example.org")
    second = _emailed_reminder(event, "second@example.org")
    real_send = delivery._send

    def send(letter, *args, **kwargs):
        if letter.pk == first.pk:
            event_cancel(event=event, actor=liaison, reason="The speaker is ill")
        return real_send(letter, *args, **kwargs)

    monkeypatch.setattr(delivery, "_send", send)
    delivery.letters_deliver(letter_ids=[first.pk, second.pk])

    assert [message.to for message in mailoutbox] == [["first@example.org"]]
    second.refresh_from_db()
    assert (second.status, second.last_error) == (
        Letter.Status.CANCELLED,
        "Withdrawn: the event was cancelled",
    )


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_reminder_handed_to_delivery_while_a_cancel_is_being_saved_waits_and_is_withdrawn(
    monkeypatch, mailoutbox
):
    """The cancel first: delivery, which had already claimed the reminder, waits for the
    cancel to be saved, reads it and sends nothing."""
    import time

    from django.db import transaction

    from outreach import tasks
    from outreach.services import delivery
    from outreach.services.events import event_cancel

    monkeypatch.setattr(tasks.deliver_letters, "apply_async", lambda *args, **kwargs: None)
    event = EventFactory(starts_at=in_days(3))
    letter = _emailed_reminder(event)
    claimed = delivery.letters_claim(letter_ids=[letter.pk])
    assert [each.pk for each in claimed] == [letter.pk]
    monkeypatch.setattr(delivery, "letters_claim", lambda **kwargs: claimed)
    run: dict[str, object] = {}
    with transaction.atomic():
        event_cancel(event=event, actor=UserFactory(), reason="The speaker is ill")
        other = in_a_thread(lambda: delivery.letters_deliver(letter_ids=[letter.pk]), run)
        time.sleep(1)  # delivery reaches the reminder while the cancel is still being saved
        assert mailoutbox == []
    other.join()

    assert "error" not in run, run.get("error")
    assert mailoutbox == []
    letter.refresh_from_db()
    assert (letter.status, letter.last_error) == (
        Letter.Status.CANCELLED,
        "Withdrawn: the event was cancelled",
    )


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_cancel_that_comes_while_a_reminder_is_being_sent_waits_for_it_then_notifies(
    monkeypatch, mailoutbox
):
    """The send first: the cancel waits until the reminder is recorded as sent, so no
    reminder leaves after the cancel is saved, and the invitee's notice follows it."""
    import threading

    from outreach import tasks
    from outreach.services import delivery
    from outreach.services.events import event_cancel

    monkeypatch.setattr(tasks.deliver_letters, "apply_async", lambda *args, **kwargs: None)
    event = EventFactory(starts_at=in_days(3))
    letter = _emailed_reminder(event)
    real_send = delivery._send
    cancel: dict[str, object] = {}
    seen: dict[str, object] = {}

    def send(sending, *args, **kwargs):
        other = in_a_thread(
            lambda: event_cancel(
                event=Event.objects.get(pk=event.pk), actor=UserFactory(), reason="Speaker ill"
            ),
            cancel,
        )
        other.join(timeout=1)  # the cancel comes while the reminder is on its way
        seen["cancel_waited"] = other.is_alive()
        seen["thread"] = other
        return real_send(sending, *args, **kwargs)

    monkeypatch.setattr(delivery, "_send", send)
    delivery.letters_deliver(letter_ids=[letter.pk])
    thread = seen["thread"]
    assert isinstance(thread, threading.Thread)
    thread.join()

    assert "error" not in cancel, cancel.get("error")
    assert seen["cancel_waited"] is True
    assert [message.to for message in mailoutbox] == [["p@example.org"]]
    letter.refresh_from_db()
    assert letter.status == Letter.Status.SENT
    event.refresh_from_db()
    assert event.is_cancelled
    notice = Letter.objects.get(kind=NOTICE, invitation=letter.invitation)
    assert notice.status == Letter.Status.PENDING


def test_the_cancel_page_says_who_tells_the_invited_staff(client_for, liaison, manager):
    from partners.factories import StaffMemberFactory

    mine = EventFactory(organizer=liaison, starts_at=in_days(5))
    Invitation.objects.create(event=mine, staff=StaffMemberFactory(email="a@b.example"))
    page = client_for(liaison).post(
        cancel_url(mine), {"cancel_reason": "Venue closed"}, follow=True
    )
    assert "listed in a task for you to tell them" in page.content.decode()

    theirs = EventFactory(organizer=liaison, starts_at=in_days(5))
    Invitation.objects.create(event=theirs, staff=StaffMemberFactory(email="c@d.example"))
    page = client_for(manager).post(
        cancel_url(theirs), {"cancel_reason": "Venue closed"}, follow=True
    )
    assert f"listed in a task for {escape(person(liaison))} to tell them" in (page.content.decode())

    without_staff = EventFactory(organizer=liaison, starts_at=in_days(5))
    page = client_for(liaison).post(
        cancel_url(without_staff), {"cancel_reason": "Venue closed"}, follow=True
    )
    assert "are sent a cancellation notice." in page.content.decode()
    assert "office staff invited" not in page.content.decode()


@pytest.mark.parametrize(
    ("change", "withdrawn_as"),
    [
        ("move", "Superseded: the event moved"),
        ("decline", "Withdrawn: the invitee is not coming"),
        ("no_reminders", "Withdrawn: the event sends no reminders"),
    ],
)
def test_a_reminder_overtaken_while_earlier_letters_of_the_batch_go_is_withdrawn_not_sent(
    monkeypatch, mailoutbox, change, withdrawn_as
):
    """As with a cancel: the event moved, the invitee declined or the event's reminders
    were switched off while the letters before it were being sent; the reminder, already
    claimed (so not withdrawn by that change), is not sent with what no longer holds."""
    from outreach import meetings
    from outreach.services import delivery
    from outreach.services.events import invitation_save

    event = EventFactory(starts_at=in_days(3), place="Riverside", remind_days_before=7)
    first = _emailed_reminder(EventFactory(starts_at=in_days(4)), "first@example.org")
    second = _emailed_reminder(event, "second@example.org")
    real_send = delivery._send

    def send(letter, *args, **kwargs):
        if letter.pk == first.pk:
            current = Event.objects.get(pk=event.pk)
            if change == "move":
                current.place = "Hotel Grand"
                meetings.event_save(event=current, changed=["place"])
            elif change == "decline":
                invitation = Invitation.objects.get(pk=second.invitation_id)
                invitation.rsvp = Invitation.Rsvp.NO
                invitation_save(invitation=invitation)
            else:
                current.remind_days_before = 0
                meetings.event_save(event=current, changed=["remind_days_before"])
        return real_send(letter, *args, **kwargs)

    monkeypatch.setattr(delivery, "_send", send)
    delivery.letters_deliver(letter_ids=[first.pk, second.pk])

    assert [message.to for message in mailoutbox] == [["first@example.org"]]
    second.refresh_from_db()
    assert (second.status, second.last_error) == (Letter.Status.CANCELLED, withdrawn_as)


def test_an_organizer_who_left_leaves_the_staff_task_to_whoever_cancelled(
    liaison, manager, monkeypatch
):
    from outreach import tasks
    from outreach.models import Task
    from outreach.services.events import event_cancel
    from partners.factories import StaffMemberFactory

    monkeypatch.setattr(tasks.deliver_letters, "apply_async", lambda *args, **kwargs: None)
    event = EventFactory(organizer=liaison, starts_at=in_days(5))
    Invitation.objects.create(event=event, staff=StaffMemberFactory(email="a@b.example"))
    liaison.is_active = False
    liaison.save(update_fields=["is_active"])
    event_cancel(event=event, actor=manager, reason="Venue closed")
    assert Task.objects.get().assignee == manager
