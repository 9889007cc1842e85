"""A letter that failed for good (the mail server refused it five times, the fax line was
dead) was seen only on its own page: the thank-you or the consult report cover letter
never reached the office, and nobody was asked to act. The print and fax queue lists the
letters that did not go, with why, and the coordinator tries again (after correcting the
address, say), prints and mails it instead, or lets it go."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from outreach.models import Letter, LetterTemplate
from outreach.services import delivery
from partners.factories import ProviderFactory

pytestmark = pytest.mark.django_db

S = Letter.Status


def _failed(provider=None, **kwargs) -> Letter:
    provider = provider or ProviderFactory(email="wiebe@example.org")
    return Letter.objects.create(
        kind=LetterTemplate.Kind.THANK_YOU,
        provider=provider,
        subject=kwargs.pop("subject", "Thank you for referring R.O."),
        body="Dear Dr. Wiebe,\n\nThank you.",
        due_on=timezone.localdate() - timedelta(days=3),
        status=S.FAILED,
        channel=Letter.Channel.EMAIL,
        recipient=provider.email,
        attempts=5,
        last_error="SMTPRecipientsRefused on attempt 5",
        message_id=f"<{uuid.uuid4().hex}@test>",
        **kwargs,
    )


def _act(client, letter, do):
    return client.post(reverse("outreach:letter_failed", args=[letter.pk]), {"do": do})


def test_the_queue_lists_the_letters_that_did_not_go_with_why(client_for, coordinator):
    letter = _failed(subject="Thank you for referring K.M.")
    page = client_for(coordinator).get(reverse("outreach:print_queue")).content.decode()
    assert 'data-testid="failed-letters"' in page
    assert "Thank you for referring K.M." in page
    assert "SMTPRecipientsRefused on attempt 5" in page
    assert reverse("outreach:letter_failed", args=[letter.pk]) in page


def test_trying_again_sends_it_on_the_next_sweep_to_the_corrected_address(client_for, coordinator):
    letter = _failed()
    letter.provider.email = "dr.wiebe@clinic.example"
    letter.provider.save()

    response = _act(client_for(coordinator), letter, "retry")

    assert response.status_code == 302
    letter.refresh_from_db()
    assert (letter.status, letter.attempts, letter.due_on) == (S.PENDING, 0, timezone.localdate())
    assert letter.pk in delivery.letters_to_deliver()
    delivery.letters_deliver(letter_ids=[letter.pk])
    letter.refresh_from_db()
    assert (letter.status, letter.recipient) == (S.SENT, "dr.wiebe@clinic.example")


def test_mailing_it_instead_puts_it_in_the_print_queue(client_for, coordinator):
    letter = _failed()
    _act(client_for(coordinator), letter, "mail")
    letter.refresh_from_db()
    assert (letter.status, letter.channel, letter.recipient) == (S.PRINT_QUEUE, "mail", "")
    page = client_for(coordinator).get(reverse("outreach:print_queue")).content.decode()
    assert f'id="letter-{letter.pk}"' in page


def test_letting_it_go_says_who_and_it_leaves_the_list(client_for, coordinator):
    letter = _failed(subject="Thank you for referring Z.Z.")
    client = client_for(coordinator)
    _act(client, letter, "let_go")
    letter.refresh_from_db()
    assert letter.status == S.CANCELLED
    assert "Let go" in letter.last_error
    page = client.get(reverse("outreach:print_queue")).content.decode()
    assert 'data-testid="failed-letters"' not in page


def test_a_letter_a_colleague_already_dealt_with_is_left_as_it_is(client_for, coordinator, manager):
    letter = _failed()
    _act(client_for(manager), letter, "mail")
    client = client_for(coordinator)
    response = _act(client, letter, "let_go")
    letter.refresh_from_db()
    assert letter.status == S.PRINT_QUEUE
    followed = client.get(response.url).content.decode()
    assert "already" in followed


def test_an_unknown_action_is_refused_and_changes_nothing(client_for, coordinator):
    letter = _failed()
    response = _act(client_for(coordinator), letter, "explode")
    assert response.status_code == 400
    letter.refresh_from_db()
    assert letter.status == S.FAILED


def test_a_liaison_cannot_act_on_a_failed_letter(client_for, liaison):
    letter = _failed(provider=ProviderFactory(owner=liaison, email="a@example.org"))
    assert _act(client_for(liaison), letter, "retry").status_code == 403
    letter.refresh_from_db()
    assert letter.status == S.FAILED


def test_the_failed_list_costs_the_same_queries_however_many(client_for, coordinator):
    client = client_for(coordinator)
    url = reverse("outreach:print_queue")
    _failed()
    client.get(url)
    with CaptureQueriesContext(connection) as few:
        client.get(url)
    for _ in range(8):
        _failed()
    with CaptureQueriesContext(connection) as many:
        client.get(url)
    assert len(many.captured_queries) == len(few.captured_queries)


def test_a_failed_letters_page_says_where_to_deal_with_it(client_for, coordinator):
    letter = _failed()
    page = client_for(coordinator).get(letter.get_absolute_url()).content.decode()
    assert 'data-testid="failed-next"' in page


def _history(client, letter) -> str:
    page = client.get(letter.get_absolute_url()).content.decode()
    assert 'data-testid="letter-history"' in page
    return page.split('data-testid="letter-history"')[1].split("</section>")[0]


def test_trying_again_is_kept_with_who_and_when_and_shown_on_the_letters_page(
    client_for, coordinator, manager
):
    """Trying again clears the error and the next attempt writes its own: who tried it
    again, when, and what it had failed with, are kept apart and shown on its page."""
    coordinator.first_name, coordinator.last_name = "Cora", "Lindqvist"
    coordinator.save()
    letter = _failed()
    _act(client_for(coordinator), letter, "retry")
    event = letter.events.get()
    assert (event.action, event.actor, event.failure) == (
        "retry",
        coordinator,
        "SMTPRecipientsRefused on attempt 5",
    )
    assert timezone.now() - event.at < timedelta(minutes=1)
    delivery.letters_deliver(letter_ids=[letter.pk])
    letter.refresh_from_db()
    assert (letter.status, letter.last_error) == (S.SENT, "")
    history = _history(client_for(manager), letter)
    assert "Cora Lindqvist tried it again" in history
    assert "SMTPRecipientsRefused on attempt 5" in history
    assert f"{timezone.localtime(event.at):%b} {timezone.localtime(event.at).day}, " in history


def test_mailing_it_instead_and_marking_it_mailed_say_who_and_when_on_its_page(
    client_for, coordinator, manager
):
    manager.first_name, manager.last_name = "Mara", "Quist"
    manager.save()
    coordinator.first_name, coordinator.last_name = "Cora", "Lindqvist"
    coordinator.save()
    letter = _failed()
    _act(client_for(manager), letter, "mail")
    client = client_for(coordinator)
    client.post(reverse("outreach:letter_printed", args=[letter.pk]))
    letter.refresh_from_db()
    assert letter.status == S.SENT
    assert [(e.action, e.actor) for e in letter.events.all()] == [("mail", manager)]
    page = client.get(letter.get_absolute_url()).content.decode()
    assert "Mara Quist had it printed and mailed instead" in _history(client, letter)
    printed = page.split('data-testid="printed-by"')[1].split("</p>")[0]
    assert "Marked printed and mailed by Cora Lindqvist on " in printed


def test_each_time_a_letter_fails_and_someone_deals_with_it_is_kept(client_for, coordinator):
    letter = _failed()
    client = client_for(coordinator)
    _act(client, letter, "retry")
    Letter.objects.filter(pk=letter.pk).update(
        status=S.FAILED, attempts=5, last_error="SMTPServerDisconnected on attempt 5"
    )
    _act(client, letter, "let_go")
    assert list(letter.events.values_list("action", "failure")) == [
        ("retry", "SMTPRecipientsRefused on attempt 5"),
        ("let_go", "SMTPServerDisconnected on attempt 5"),
    ]
    history = _history(client, letter)
    assert history.index("tried it again") < history.index("let it go")


def test_a_letter_already_dealt_with_or_asked_the_impossible_records_nothing(
    client_for, coordinator, manager
):
    letter = _failed()
    _act(client_for(manager), letter, "let_go")
    _act(client_for(coordinator), letter, "retry")  # too late: a colleague let it go
    _act(client_for(coordinator), _failed(), "explode")
    assert list(letter.events.values_list("action", "actor")) == [("let_go", manager.pk)]
    assert Letter.objects.filter(events__isnull=False).distinct().count() == 1


def test_a_failed_letter_nobody_dealt_with_yet_shows_no_history(client_for, coordinator):
    letter = _failed()
    page = client_for(coordinator).get(letter.get_absolute_url()).content.decode()
    assert 'data-testid="letter-history"' not in page
    assert 'data-testid="printed-by"' not in page
