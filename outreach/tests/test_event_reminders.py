"""Reminder letters to the invitees of an upcoming event, through the letter pipeline."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings
from django.core import mail
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from outreach import meetings, tasks
from outreach.factories import EventFactory
from outreach.models import Invitation, Letter, LetterTemplate
from outreach.services import delivery
from outreach.services import letters as letter_services
from partners.factories import ProviderFactory, StaffMemberFactory
from partners.models import Provider

pytestmark = pytest.mark.django_db

REMINDER = LetterTemplate.Kind.EVENT_REMINDER


def in_days(days: int, hour: int = 18):
    moment = timezone.localtime() + timedelta(days=days)
    return moment.replace(hour=hour, minute=30, second=0, microsecond=0)


def invite(event, **provider_kwargs):
    provider = ProviderFactory(**provider_kwargs)
    return Invitation.objects.create(event=event, provider=provider)


def test_the_default_reminder_template_is_there_from_the_data_migration():
    template = LetterTemplate.objects.get(kind=REMINDER)
    assert "{{ event_name }}" in template.subject
    assert "{{ event_place }}" in template.body


def test_invitees_get_one_reminder_by_their_channel_n_days_before():
    event = EventFactory(
        name="Spring referral-partner dinner",
        starts_at=in_days(5),
        place="Riverside Country Club",
        remind_days_before=7,
    )
    by_email = invite(
        event,
        first_name="Ana",
        last_name="Reyes",
        credential="MD",
        email="reyes@example.org",
        preferred_channel=Provider.PreferredChannel.EMAIL,
    )
    opted_out = invite(event, letters_opt_out=True)
    declined = invite(event)
    Invitation.objects.filter(pk=declined.pk).update(rsvp=Invitation.Rsvp.NO)
    Invitation.objects.create(event=event, staff=StaffMemberFactory())
    later = EventFactory(starts_at=in_days(20), remind_days_before=7)
    invite(later)
    over = EventFactory(starts_at=timezone.now() - timedelta(hours=1), remind_days_before=7)
    invite(over)

    letters = meetings.event_reminders_prepare()
    assert meetings.event_reminders_prepare() == []  # the next run: nothing new

    assert {letter.invitation_id for letter in letters} == {by_email.pk, opted_out.pk}
    email = Letter.objects.get(invitation=by_email)
    assert (email.kind, email.channel, email.status) == (REMINDER, "email", "pending")
    assert email.due_on == timezone.localdate()
    assert email.subject.startswith("Reminder: Spring referral-partner dinner on ")
    assert "Dear Ana Reyes, MD" in email.body
    assert "at Riverside Country Club" in email.body
    assert "{{" not in email.body
    assert Letter.objects.get(invitation=opted_out).status == Letter.Status.SKIPPED
    # The database refuses a second reminder for an invitation, whoever writes it.
    with pytest.raises(IntegrityError), transaction.atomic():
        Letter.objects.create(
            kind=REMINDER,
            provider=by_email.provider,
            invitation=by_email,
            subject="again",
            body="again",
            due_on=timezone.localdate(),
        )

    delivery.letters_deliver(letter_ids=[email.pk])
    [sent] = mail.outbox
    assert sent.to == ["reyes@example.org"]
    assert sent.subject == email.subject
    assert Letter.objects.get(pk=email.pk).status == Letter.Status.SENT


def test_no_reminder_before_the_day_or_when_the_event_asks_for_none():
    soon = EventFactory(starts_at=in_days(10), remind_days_before=7)
    invite(soon)
    silent = EventFactory(starts_at=in_days(1), remind_days_before=0)
    invite(silent)
    assert meetings.event_reminders_prepare() == []
    # Three days later the first one's reminder day has come.
    assert (
        len(meetings.event_reminders_prepare(today=timezone.localdate() + timedelta(days=3))) == 1
    )


def test_the_beat_task_hands_pending_reminders_to_the_delivery_task(monkeypatch):
    event = EventFactory(starts_at=in_days(2))
    invitation = invite(event, email="p@example.org", preferred_channel="email")
    invite(event, letters_opt_out=True)
    queued: list[list[int]] = []
    monkeypatch.setattr(tasks.deliver_letters, "delay", lambda ids: queued.append(ids))

    tasks.send_event_reminders()

    assert queued == [[Letter.objects.get(invitation=invitation).pk]]


def test_the_reminder_template_is_edited_like_the_others(client_for, manager):
    template = LetterTemplate.objects.get(kind=REMINDER)
    client = client_for(manager)
    assert "Event reminder" in client.get(reverse("outreach:template_list")).content.decode()
    url = reverse("outreach:template_update", args=[template.pk])
    page = client.get(url).content.decode()
    assert "event_name" in page  # the merge fields it may use are listed
    refused = client.post(
        url, {"subject": "See you {{ event_nam }}", "body": "x", "delay_business_days": 0}
    )
    assert "Unknown merge field(s): event_nam" in refused.content.decode()
    client.post(
        url,
        {
            "subject": "See you at {{ event_name }}, {{ provider_last_name }}",
            "body": "{{ event_date }} at {{ event_place }}",
            "delay_business_days": 0,
        },
    )
    event = EventFactory(name="Open house", starts_at=in_days(3), place="")
    invite(event, last_name="Pilcher")
    [letter] = meetings.event_reminders_prepare()
    assert letter.subject == "See you at Open house, Pilcher"
    assert letter.body.endswith(f"at {settings.PRACTICE_NAME}")  # no place: ours


def test_a_reminder_shows_on_the_partners_timeline_and_prints_as_a_pdf(client_for, manager):
    event = EventFactory(name="Open house", starts_at=in_days(2))
    invitation = invite(event, preferred_channel="mail")
    [letter] = meetings.event_reminders_prepare()
    assert (letter.channel, letter.status) == ("mail", "pending")
    client = client_for(manager)
    timeline = client.get(invitation.provider.get_absolute_url()).content.decode()
    assert "Event reminder letter" in timeline
    assert client.get(letter.get_absolute_url()).status_code == 200
    pdf = client.get(reverse("outreach:letter_pdf", args=[letter.pk]))
    assert pdf.status_code == 200
    assert pdf.content.startswith(b"%PDF")


def test_an_event_that_moves_reminds_again_with_the_new_date(client_for, manager):
    event = EventFactory(
        name="Spring dinner", starts_at=in_days(5), remind_days_before=7, organizer=manager
    )
    told = invite(event, email="told@example.org")
    waiting = invite(event, email="waiting@example.org")
    first = {letter.invitation_id: letter for letter in meetings.event_reminders_prepare()}
    Letter.objects.filter(pk=first[told.pk].pk).update(status=Letter.Status.SENT)

    # The organizer moves the dinner two days later, through the edit page.
    new_start = in_days(7, hour=19)
    form = {
        "name": event.name,
        "kind": event.kind,
        "starts_at": timezone.localtime(new_start).strftime("%Y-%m-%dT%H:%M"),
        "place": event.place,
        "notes": event.notes,
        "cost": "",
        "remind_days_before": event.remind_days_before,
    }
    response = client_for(manager).post(reverse("outreach:event_update", args=[event.pk]), form)
    assert response.status_code == 302, response.content.decode()[:1500]
    event.refresh_from_db()
    assert event.schedule_version == 2

    # The reminder of the old date not yet sent gives way; everyone gets the new date.
    assert Letter.objects.get(pk=first[waiting.pk].pk).status == Letter.Status.CANCELLED
    again = {letter.invitation_id: letter for letter in meetings.event_reminders_prepare()}
    assert set(again) == {told.pk, waiting.pk}
    assert meetings.event_reminders_prepare() == []
    new_date = f"{timezone.localtime(new_start):%B %-d, %Y at %-I:%M %p}"
    assert all(new_date in letter.body for letter in again.values())
    assert again[told.pk].subject.startswith("New date: Reminder: Spring dinner")
    assert again[waiting.pk].subject.startswith("Reminder: Spring dinner")

    # Saving it again without moving it changes nothing.
    form["name"] = "Spring dinner at the club"
    client_for(manager).post(reverse("outreach:event_update", args=[event.pk]), form)
    event.refresh_from_db()
    assert event.schedule_version == 2
    assert meetings.event_reminders_prepare() == []


def test_a_reminder_waiting_in_the_print_queue_gives_way_when_the_event_moves(client_for, manager):
    """A reminder to a partner without email waits in the print and fax queue until
    someone prints it: when the event moves, it is withdrawn like one waiting to be
    emailed, and the partner gets the new date as their first reminder."""
    old_start = in_days(5)
    event = EventFactory(
        name="Spring dinner", starts_at=old_start, remind_days_before=7, organizer=manager
    )
    queued = invite(event, email="")
    (letter,) = meetings.event_reminders_prepare()
    Letter.objects.filter(pk=letter.pk).update(status=Letter.Status.PRINT_QUEUE)

    new_start = in_days(7, hour=19)
    form = {
        "name": event.name,
        "kind": event.kind,
        "starts_at": timezone.localtime(new_start).strftime("%Y-%m-%dT%H:%M"),
        "place": event.place,
        "notes": event.notes,
        "cost": "",
        "remind_days_before": event.remind_days_before,
    }
    response = client_for(manager).post(reverse("outreach:event_update", args=[event.pk]), form)
    assert response.status_code == 302

    letter.refresh_from_db()
    assert f"{timezone.localtime(old_start):%B %-d, %Y}" in letter.body
    assert letter.status == Letter.Status.CANCELLED
    (again,) = meetings.event_reminders_prepare()
    assert again.invitation_id == queued.pk
    assert again.subject.startswith("Reminder: Spring dinner")


def test_an_invitee_who_declines_is_not_sent_the_reminder_waiting_for_them(client_for, manager):
    """A reminder waiting to go out (or in the print and fax queue, for a partner without
    email) is withdrawn when the invitee says they are not coming: "See you on Thursday"
    to someone who said no. A reminder to one still coming stays."""
    event = EventFactory(
        name="Spring dinner", starts_at=in_days(5), remind_days_before=7, organizer=manager
    )
    declining, coming = invite(event, email=""), invite(event, email="penner@example.org")
    letters = {letter.invitation_id: letter for letter in meetings.event_reminders_prepare()}
    Letter.objects.filter(pk=letters[declining.pk].pk).update(status=Letter.Status.PRINT_QUEUE)

    for invitation in (declining, coming):
        response = client_for(manager).post(
            reverse("outreach:invitation_update", args=[invitation.pk]),
            {"rsvp": Invitation.Rsvp.NO if invitation == declining else Invitation.Rsvp.YES},
        )
        assert response.status_code == 302

    withdrawn, kept = letters[declining.pk], letters[coming.pk]
    withdrawn.refresh_from_db()
    kept.refresh_from_db()
    assert withdrawn.status == Letter.Status.CANCELLED
    assert "not coming" in withdrawn.last_error
    assert kept.status == Letter.Status.PENDING
    # Nor is another made for them by the next run.
    assert meetings.event_reminders_prepare() == []


def test_an_invitee_who_declines_then_says_yes_after_all_is_reminded_again(client_for, manager):
    """Declined, then called back to say they are coming after all: the reminder withdrawn
    for them goes out again (the run makes no second one: one per invitation and date)."""
    event = EventFactory(
        name="Spring dinner", starts_at=in_days(5), remind_days_before=7, organizer=manager
    )
    invitation = invite(event, email="penner@example.org")
    (letter,) = meetings.event_reminders_prepare()
    url = reverse("outreach:invitation_update", args=[invitation.pk])
    client = client_for(manager)
    client.post(url, {"rsvp": Invitation.Rsvp.NO})
    letter.refresh_from_db()
    assert letter.status == Letter.Status.CANCELLED

    response = client.post(url, {"rsvp": Invitation.Rsvp.YES})

    assert response.status_code == 302
    letter.refresh_from_db()
    assert (letter.status, letter.last_error) == (Letter.Status.PENDING, "")
    assert meetings.event_reminders_prepare() == []


def test_a_reminder_withdrawn_for_another_reason_stays_withdrawn_when_the_invitee_says_yes(
    client_for, manager
):
    event = EventFactory(
        name="Spring dinner", starts_at=in_days(5), remind_days_before=7, organizer=manager
    )
    invitation = invite(event, email="penner@example.org")
    (letter,) = meetings.event_reminders_prepare()
    Letter.objects.filter(pk=letter.pk).update(
        status=Letter.Status.CANCELLED, last_error="Cancelled by hand"
    )
    client_for(manager).post(
        reverse("outreach:invitation_update", args=[invitation.pk]), {"rsvp": Invitation.Rsvp.YES}
    )
    letter.refresh_from_db()
    assert (letter.status, letter.last_error) == (Letter.Status.CANCELLED, "Cancelled by hand")


@pytest.mark.parametrize("change", ["declined", "moved"])
def test_a_decline_or_a_new_date_that_comes_while_the_reminders_are_written_is_heeded(
    monkeypatch, change
):
    from outreach.models import Event
    from outreach.services.events import invitation_save

    event = EventFactory(name="Spring dinner", starts_at=in_days(5), remind_days_before=7)
    declining = invite(event, email="reyes@example.org")
    coming = invite(event, email="penner@example.org")
    # The moment each letter is routed, as it is written (letter_to).
    real_route = letter_services.letter_route
    changed = []

    def route(provider, kind, **kwargs):
        # The run has read the invitations and their event; the change is saved now.
        if not changed:
            if change == "declined":
                declining.rsvp = Invitation.Rsvp.NO
                changed.append(invitation_save(invitation=declining))
            else:
                moved = Event.objects.get(pk=event.pk)
                moved.starts_at = in_days(6)
                changed.append(meetings.event_save(event=moved, changed=["starts_at"]))
        return real_route(provider, kind, **kwargs)

    monkeypatch.setattr(letter_services, "letter_route", route)
    meetings.event_reminders_prepare()
    monkeypatch.undo()
    meetings.event_reminders_prepare()  # the next run

    waiting = Letter.objects.filter(kind=REMINDER).exclude(status=Letter.Status.CANCELLED)
    if change == "declined":
        assert [letter.invitation_id for letter in waiting] == [coming.pk]
    else:
        # Only the new date is on its way, to both.
        assert sorted((letter.invitation_id, letter.sequence) for letter in waiting) == [
            (declining.pk, 2),
            (coming.pk, 2),
        ]


def test_an_event_that_changes_place_reminds_again_with_the_new_place(client_for, manager):
    """Moved to another hall on the same evening: the reminder of the old place not yet
    sent gives way, and everyone, those told the old place first, gets the new one."""
    event = EventFactory(
        name="Spring dinner",
        starts_at=in_days(5),
        place="Riverside Country Club",
        remind_days_before=7,
        organizer=manager,
    )
    told = invite(event, email="told@example.org")
    waiting = invite(event, email="waiting@example.org")
    first = {letter.invitation_id: letter for letter in meetings.event_reminders_prepare()}
    Letter.objects.filter(pk=first[told.pk].pk).update(status=Letter.Status.SENT)

    form = {
        "name": event.name,
        "kind": event.kind,
        "starts_at": timezone.localtime(event.starts_at).strftime("%Y-%m-%dT%H:%M"),
        "place": "Hotel Grand, Ballroom B",
        "notes": event.notes,
        "cost": "",
        "remind_days_before": event.remind_days_before,
    }
    response = client_for(manager).post(reverse("outreach:event_update", args=[event.pk]), form)
    assert response.status_code == 302

    assert Letter.objects.get(pk=first[waiting.pk].pk).status == Letter.Status.CANCELLED
    again = {letter.invitation_id: letter for letter in meetings.event_reminders_prepare()}
    assert set(again) == {told.pk, waiting.pk}
    assert all("Hotel Grand, Ballroom B" in letter.body for letter in again.values())
    assert again[told.pk].subject.startswith("New place: Reminder: Spring dinner")
    assert again[waiting.pk].subject.startswith("Reminder: Spring dinner")
    assert meetings.event_reminders_prepare() == []


def test_an_event_set_to_send_no_reminders_withdraws_those_still_waiting(client_for, manager):
    """ "0 sends none": set after the reminders were made, the one waiting in the print and
    fax queue is withdrawn too, not printed and mailed anyway."""
    event = EventFactory(
        name="Spring dinner", starts_at=in_days(5), remind_days_before=7, organizer=manager
    )
    invite(event, email="")
    (letter,) = meetings.event_reminders_prepare()
    Letter.objects.filter(pk=letter.pk).update(status=Letter.Status.PRINT_QUEUE)

    form = {
        "name": event.name,
        "kind": event.kind,
        "starts_at": timezone.localtime(event.starts_at).strftime("%Y-%m-%dT%H:%M"),
        "place": event.place,
        "notes": event.notes,
        "cost": "",
        "remind_days_before": "0",
    }
    response = client_for(manager).post(reverse("outreach:event_update", args=[event.pk]), form)
    assert response.status_code == 302

    letter.refresh_from_db()
    assert letter.status == Letter.Status.CANCELLED
    assert "sends no reminders" in letter.last_error
    assert meetings.event_reminders_prepare() == []

    # Reminders after all: the one withdrawn goes out again, and no second is made.
    client_for(manager).post(
        reverse("outreach:event_update", args=[event.pk]), {**form, "remind_days_before": "7"}
    )
    letter.refresh_from_db()
    assert (letter.status, letter.last_error) == (Letter.Status.PENDING, "")
    assert meetings.event_reminders_prepare() == []


def test_reminders_are_made_each_hour_of_the_working_day_not_once_at_seven(settings):
    """An invitee added at 10:00 to tomorrow morning's breakfast was reminded the next
    morning at 7:00, maybe after it began: the run comes each hour of the working day."""
    schedule = settings.CELERY_BEAT_SCHEDULE["send-event-reminders"]["schedule"]
    assert {7, 10, 18} <= set(schedule.hour)
    assert schedule.minute == {0}


def _move(event, *, starts_at=None, place=None):
    changed = []
    if starts_at is not None:
        event.starts_at, changed = starts_at, [*changed, "starts_at"]
    if place is not None:
        event.place, changed = place, [*changed, "place"]
    meetings.event_save(event=event, changed=changed)


def _told_then_moved(event, **move):
    told = invite(event, email="told@example.org")
    [first] = meetings.event_reminders_prepare()
    Letter.objects.filter(pk=first.pk).update(status=Letter.Status.SENT)
    _move(event, **move)
    [again] = meetings.event_reminders_prepare()
    assert again.invitation_id == told.pk
    return first, again


def test_each_reminder_keeps_the_date_and_place_it_told(manager):
    event = EventFactory(starts_at=in_days(5), place="Riverside Country Club", organizer=manager)
    first, again = _told_then_moved(event, place="Hotel Grand")
    first.refresh_from_db()
    assert (first.told_starts_at, first.told_place) == (event.starts_at, "Riverside Country Club")
    assert (again.told_starts_at, again.told_place) == (event.starts_at, "Hotel Grand")


def test_a_new_place_is_said_even_when_the_template_does_not_write_the_date(manager):
    """What changed is read from what the last reminder told, kept on it, not guessed from
    its text: a template edited to leave out the date once made a new place a "New date"."""
    template = meetings.letter_template_for(REMINDER)
    template.body = "Dear {{ provider_name }}, see you at {{ event_place }}."
    template.save()
    event = EventFactory(
        name="Spring dinner", starts_at=in_days(5), place="Riverside", organizer=manager
    )
    _, again = _told_then_moved(event, place="Hotel Grand")
    assert again.subject.startswith("New place: Reminder: Spring dinner")


def test_a_new_date_and_a_new_place_at_once_are_both_said(manager):
    event = EventFactory(
        name="Spring dinner", starts_at=in_days(5), place="Riverside", organizer=manager
    )
    _, again = _told_then_moved(event, starts_at=in_days(6), place="Hotel Grand")
    assert again.subject.startswith("New date and place: Reminder: Spring dinner")


def test_a_move_back_to_what_was_told_says_nothing_changed(manager):
    event = EventFactory(
        name="Spring dinner", starts_at=in_days(5), place="Riverside", organizer=manager
    )
    told = invite(event, email="told@example.org")
    [first] = meetings.event_reminders_prepare()
    Letter.objects.filter(pk=first.pk).update(status=Letter.Status.SENT)
    # Moved, then moved back before the run: the version went up twice.
    _move(event, place="Hotel Grand")
    _move(event, place="Riverside")
    [again] = meetings.event_reminders_prepare()
    assert again.invitation_id == told.pk
    assert again.subject.startswith("Reminder: Spring dinner")


def test_a_reminder_written_before_it_kept_what_it_told_is_still_read_from_its_text(manager):
    event = EventFactory(
        name="Spring dinner", starts_at=in_days(5), place="Riverside", organizer=manager
    )
    invite(event, email="told@example.org")
    [first] = meetings.event_reminders_prepare()
    Letter.objects.filter(pk=first.pk).update(
        status=Letter.Status.SENT, told_starts_at=None, told_place=""
    )
    _move(event, place="Hotel Grand")
    [again] = meetings.event_reminders_prepare()
    assert again.subject.startswith("New place: Reminder: Spring dinner")
