"""An event changed in the Django admin cannot skip what its own page does when its date
or place moves: those fields are read-only there, with a link to the page."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from outreach.factories import EventFactory
from outreach.models import Event, Invitation, Letter, LetterTemplate
from partners.factories import ProviderFactory

pytestmark = pytest.mark.django_db


def _admin_form(event: Event, **changes: object) -> dict[str, object]:
    starts = timezone.localtime(event.starts_at)
    data = {
        "name": event.name,
        "kind": event.kind,
        "starts_at_0": starts.strftime("%Y-%m-%d"),
        "starts_at_1": starts.strftime("%H:%M:%S"),
        "place": event.place,
        "organizer": event.organizer_id or "",
        "notes": event.notes,
        "cost": "",
        "remind_days_before": event.remind_days_before,
        "invitations-TOTAL_FORMS": "0",
        "invitations-INITIAL_FORMS": "0",
        "invitations-MIN_NUM_FORMS": "0",
        "invitations-MAX_NUM_FORMS": "1000",
    }
    return {**data, **changes}


def test_the_admin_leaves_date_place_and_reminders_to_the_events_page(client_for, administrator):
    event = EventFactory(
        name="Spring dinner",
        organizer=administrator,
        place="Riverside Country Club",
        starts_at=timezone.now() + timedelta(days=10),
        remind_days_before=7,
    )
    invitation = Invitation.objects.create(event=event, provider=ProviderFactory())
    sent = Letter.objects.create(
        kind=LetterTemplate.Kind.EVENT_REMINDER,
        provider=invitation.provider,
        invitation=invitation,
        subject="Reminder",
        body="See you there",
        due_on=timezone.localdate(),
        status=Letter.Status.SENT,
    )
    client = client_for(administrator)
    url = reverse("admin:outreach_event_change", args=[event.pk])

    page = client.get(url).content.decode()
    assert reverse("outreach:event_update", args=[event.pk]) in page
    assert 'name="starts_at_0"' not in page
    assert 'name="place"' not in page
    assert 'name="remind_days_before"' not in page
    assert 'name="invitations-0-rsvp"' not in page

    later = timezone.localtime(event.starts_at) + timedelta(days=3)
    response = client.post(
        url,
        _admin_form(
            event,
            name="Spring dinner (renamed)",
            starts_at_0=later.strftime("%Y-%m-%d"),
            place="Somewhere else",
            remind_days_before=0,
        ),
    )
    assert response.status_code == 302, _errors(response)
    before = (event.starts_at, event.place, event.remind_days_before, event.schedule_version)
    event.refresh_from_db()
    # What may change here did; what invitees are told did not, nor did their reminder.
    assert event.name == "Spring dinner (renamed)"
    assert (event.starts_at, event.place, event.remind_days_before, event.schedule_version) == (
        before
    )
    sent.refresh_from_db()
    assert sent.status == Letter.Status.SENT


def test_an_administrator_may_still_add_an_event_with_its_date_and_place(client_for, administrator):
    starts = timezone.localtime() + timedelta(days=20)
    event = EventFactory.build(
        name="Open house", place="Main office", starts_at=starts, organizer=administrator
    )
    response = client_for(administrator).post(
        reverse("admin:outreach_event_add"), _admin_form(event)
    )
    assert response.status_code == 302, _errors(response)
    made = Event.objects.get(name="Open house")
    assert made.place == "Main office"
    assert made.starts_at.replace(microsecond=0) == starts.replace(microsecond=0)


def _errors(response: object) -> object:
    """The admin form's and its inlines' errors, for a failed save's message."""
    context = response.context  # type: ignore[attr-defined]
    inlines = [inline.formset.errors for inline in context["inline_admin_formsets"]]
    return context["adminform"].form.errors, inlines


def test_an_event_with_invitees_is_not_deleted_in_the_admin_but_one_without_may_be(
    client_for, administrator
):
    invited = EventFactory(organizer=administrator)
    Invitation.objects.create(event=invited, provider=ProviderFactory())
    empty = EventFactory(organizer=administrator)
    client = client_for(administrator)

    refused = client.post(
        reverse("admin:outreach_event_delete", args=[invited.pk]), {"post": "yes"}
    )
    assert refused.status_code == 403
    assert Event.objects.filter(pk=invited.pk).exists()
    changelist = client.get(reverse("admin:outreach_event_changelist")).content.decode()
    assert "delete_selected" not in changelist

    client.post(reverse("admin:outreach_event_delete", args=[empty.pk]), {"post": "yes"})
    assert not Event.objects.filter(pk=empty.pk).exists()
