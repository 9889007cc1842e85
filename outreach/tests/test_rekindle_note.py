"""The liaison's note from a rekindle task: written from the template with the partner's
merge fields filled, sent once through the letter pipeline by the partner's channel,
completing the task; never with patient data."""

from __future__ import annotations

from html import unescape
from smtplib import SMTPServerDisconnected
from unittest import mock

import pytest
from django.core import mail
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.test import TestCase
from django.urls import reverse
from django.utils import timezone

from outreach import rekindle
from outreach.factories import TaskFactory
from outreach.models import Activity, Letter, LetterTemplate, Task
from outreach.services import delivery
from outreach.services.letters import letter_template_for
from outreach.services.rekindle import rekindle_queue_build
from outreach.tasks import deliver_letter
from partners.factories import OrganizationFactory, ProviderFactory
from partners.models import Provider
from referrals.factories import ReferralFactory

pytestmark = pytest.mark.django_db

K = LetterTemplate.Kind
NOTE = {"subject": "Checking in, Dr. {{ provider_last_name }}", "body": "Dear Dana,\n\nLunch?"}


def _partner(owner, **fields):
    fields.setdefault("email", "whitfield@example.org")
    return ProviderFactory(
        owner=owner,
        first_name="Dana",
        last_name="Whitfield",
        credential="MD",
        organization=OrganizationFactory(name="Lakeside Family Medicine", fax="(402) 555-0100"),
        **fields,
    )


def _task(owner, provider=None, **fields):
    provider = provider or _partner(owner)
    return TaskFactory(
        kind=Task.Kind.REKINDLE,
        title=f"Rekindle {provider.display_name}",
        detail="No referral for 75 days.\nNever visited or called.",
        assignee=owner,
        provider=provider,
        **fields,
    )


def _url(task, name="outreach:rekindle_note"):
    return reverse(name, args=[task.pk])


def _send(client, task, data=NOTE, **extra):
    """Post the form; what the commit hands to Celery is run (and caught) before return."""
    with (
        mock.patch("outreach.tasks.deliver_letter.apply_async") as publish,
        TestCase.captureOnCommitCallbacks(execute=True),
    ):
        response = client.post(_url(task), data, **extra)
    return response, publish


def test_the_form_starts_from_the_template_with_the_partners_merge_fields_filled(
    client_for, liaison
):
    template = letter_template_for(K.REKINDLE)
    template.subject = "A word from {{ practice_name }}"
    template.body = (
        "Dear Dr. {{ provider_last_name }} at {{ organization_name }},\n\nIt's been a while."
    )
    template.save()
    task = _task(liaison)

    page = client_for(liaison).get(_url(task)).content.decode()

    assert 'value="A word from Riverside Orthopedics"' in page
    assert "Dear Dr. Whitfield at Lakeside Family Medicine," in page
    assert "{{" not in page.split("<textarea", 1)[1].split("</textarea>", 1)[0]
    assert "by email to whitfield@example.org" in page
    assert "No referral for 75 days." in page  # the reasons, to write with


@pytest.mark.parametrize(
    ("fields", "channel", "recipient", "delivered", "says"),
    [
        ({}, "email", "whitfield@example.org", "sent", "by email to whitfield@example.org"),
        (
            {"preferred_channel": Provider.PreferredChannel.FAX},
            "fax",
            "(402) 555-0100",
            "print_queue",
            "by fax to (402) 555-0100, faxed from the print/fax queue",
        ),
        (
            {"preferred_channel": Provider.PreferredChannel.MAIL},
            "mail",
            "",
            "print_queue",
            "by mail, printed from the print/fax queue",
        ),
    ],
)
def test_sending_makes_one_letter_routed_like_every_letter_and_completes_the_task(
    client_for, liaison, fields, channel, recipient, delivered, says
):
    task = _task(liaison, _partner(liaison, **fields))
    client = client_for(liaison)
    assert says in client.get(_url(task)).content.decode()

    response, publish = _send(client, task)

    letter = Letter.objects.get()
    assert response.status_code == 302 and response["Location"] == task.get_absolute_url()
    # Handed over, not yet delivered: the message says so, and where it goes.
    shown = client.get(response["Location"]).content.decode()
    assert f"is on its way {says}" in " ".join(unescape(shown).split())
    assert (letter.kind, letter.task, letter.provider) == (K.REKINDLE, task, task.provider)
    assert (letter.channel, letter.recipient, letter.status) == (channel, recipient, "pending")
    assert letter.subject == "Checking in, Dr. Whitfield"  # the typed merge field filled
    assert letter.body == NOTE["body"] and letter.message_id
    # Handed to the Celery delivery task after commit, which delivers it by its channel.
    publish.assert_called_once_with(args=(letter.pk,), retry=False)
    deliver_letter(letter.pk)
    letter.refresh_from_db()
    assert letter.status == delivered
    assert len(mail.outbox) == (1 if channel == "email" else 0)
    task.refresh_from_db()
    assert task.status == Task.Status.DONE and task.completed_at is not None
    touch = Activity.objects.get()
    assert (touch.kind, touch.logged_by, list(touch.providers.all())) == (
        Activity.Kind.LETTER,
        liaison,
        [task.provider],
    )
    assert "Checking in, Dr. Whitfield" in touch.notes


def test_the_task_and_the_partner_page_show_the_note(client_for, liaison):
    task = _task(liaison)
    client = client_for(liaison)
    _send(client, task)
    letter = Letter.objects.get()

    done = client.get(task.get_absolute_url()).content.decode()
    assert "What was done" in done and letter.get_absolute_url() in done
    assert "Write a note" not in done and "Mark done" not in done
    timeline = client.get(task.provider.get_absolute_url()).content.decode()
    assert "Rekindle note letter" in timeline and "Checking in, Dr. Whitfield" in timeline
    assert client.get(letter.get_absolute_url()).status_code == 200


def test_the_task_links_the_note_only_for_those_who_may_open_it(
    client_for, manager, liaison, other_liaison
):
    # The partner changed hands after the task was made; a manager sent the note.
    task = _task(liaison, _partner(other_liaison))
    _send(client_for(manager), task)
    letter_url = Letter.objects.get().get_absolute_url()

    page = client_for(liaison).get(task.get_absolute_url()).content.decode()
    assert "What was done" in page and letter_url not in page
    assert client_for(liaison).get(letter_url).status_code == 404
    assert letter_url in client_for(manager).get(task.get_absolute_url()).content.decode()


def test_a_sent_note_keeps_the_partner_out_of_the_next_nights_queue(client_for, liaison):
    provider = _partner(liaison)
    ReferralFactory(provider=provider, received_at=timezone.now() - timezone.timedelta(days=75))
    [task] = rekindle_queue_build()
    _send(client_for(liaison), task)
    assert rekindle_queue_build() == []


def test_pressing_send_twice_sends_one_note(client_for, liaison):
    task = _task(liaison)
    client = client_for(liaison)
    _, first_publish = _send(client, task)
    second, second_publish = _send(client, task, follow=True)

    assert Letter.objects.count() == 1 and Activity.objects.count() == 1
    assert first_publish.call_count == 1 and second_publish.call_count == 0
    assert second.redirect_chain[-1][0] == task.get_absolute_url()
    assert "already sent; nothing was sent twice" in second.content.decode()
    # The back button to the form lands on the task too.
    assert client.get(_url(task))["Location"] == task.get_absolute_url()


def test_a_second_send_that_raced_past_the_page_finds_the_first_note(liaison):
    task = _task(liaison)
    with mock.patch("outreach.tasks.deliver_letter.apply_async"):
        first = rekindle.rekindle_note_send(task=task, actor=liaison, **NOTE)
        second = rekindle.rekindle_note_send(task=task, actor=liaison, **NOTE)
    assert first.created and not second.created
    assert second.letter == first.letter and Letter.objects.count() == 1


def test_the_database_refuses_a_second_note_for_one_task(liaison):
    task = _task(liaison)
    with mock.patch("outreach.tasks.deliver_letter.apply_async"):
        letter = rekindle.rekindle_note_send(task=task, actor=liaison, **NOTE).letter
    letter.pk, letter.message_id = None, "<another@example>"
    with pytest.raises(IntegrityError), transaction.atomic():
        letter.save()


@pytest.mark.parametrize(
    ("field", "text"),
    [
        ("body", "Hope {{ patient_initials }} is doing well."),
        ("subject", "About your patient seen {{ seen_date }}"),
        ("body", "Since {{ referral_date }} we have not heard from you."),
    ],
)
def test_a_patient_merge_field_typed_by_hand_is_refused(client_for, liaison, field, text):
    task = _task(liaison)
    response, publish = _send(client_for(liaison), task, {**NOTE, field: text})

    page = response.content.decode()
    assert response.status_code == 200
    assert "A rekindle note carries no patient data: remove" in page
    assert f'id="error_1_id_{field}"' in page  # on the field itself
    assert not Letter.objects.exists() and not publish.called
    task.refresh_from_db()
    assert task.status == Task.Status.OPEN


def test_the_service_refuses_patient_data_whoever_calls_it(liaison):
    task = _task(liaison)
    with pytest.raises(ValidationError, match="carries no patient data"):
        rekindle.rekindle_note_send(
            task=task, actor=liaison, subject="Hi", body="{{ patient_initials }}"
        )
    assert not Letter.objects.exists()


@pytest.mark.parametrize(
    ("data", "field", "error"),
    [
        ({"subject": ""}, "subject", "This field is required."),
        ({"body": "   \n  "}, "body", "This field is required."),
        ({"subject": "S" * 201}, "subject", "at most 200 characters"),
        ({"body": "word " * 2001}, "body", "at most 10000 characters"),
        ({"body": "{% if x %}Hello{% endif %}"}, "body", "Only plain merge fields"),
        ({"body": "Dear {{ provider_name|upper }}"}, "body", "Only plain merge fields"),
        ({"body": "Dear {{ provider_name }"}, "body", "Only plain merge fields"),
        ({"subject": "Hi {{ favourite_colour }}"}, "subject", "Unknown merge field(s)"),
    ],
)
def test_bad_input_re_renders_with_the_field_error_and_keeps_what_was_typed(
    client_for, liaison, data, field, error
):
    task = _task(liaison)
    typed = {"subject": "Coffee next week?", "body": "Dear Dr. Whitfield, how about coffee?"}
    response, publish = _send(client_for(liaison), task, {**typed, **data})

    page = response.content.decode()
    assert response.status_code == 200
    assert error in page and f'id="error_1_id_{field}"' in page
    other = "body" if field == "subject" else "subject"
    assert typed[other] in page
    if data[field].strip():
        assert data[field][:40] in page.replace("&#x27;", "'")
    assert not Letter.objects.exists() and not publish.called


def test_hostile_text_is_stored_as_typed_and_shown_escaped(client_for, liaison):
    task = _task(liaison)
    client = client_for(liaison)
    hostile = "<script>alert(1)</script>"
    _send(client, task, {"subject": f"Hi {hostile}", "body": f"Dear Dana, {hostile}"})

    letter = Letter.objects.get()
    assert hostile in letter.subject and hostile in letter.body
    for url in (letter.get_absolute_url(), task.get_absolute_url()):
        page = client.get(url).content.decode()
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
        assert hostile not in page


def test_the_preview_fills_the_merge_fields_of_the_text_being_typed(client_for, liaison):
    task = _task(liaison)
    response = client_for(liaison).post(
        _url(task, "outreach:rekindle_note_preview"),
        {"subject": "Hello {{ provider_last_name }}", "body": "At <b>{{ organization_name }}</b>"},
        HTTP_HX_REQUEST="true",
    )
    body = response.content.decode()
    assert response.status_code == 200 and "<html" not in body
    assert "Hello Whitfield" in body
    assert "At &lt;b&gt;Lakeside Family Medicine&lt;/b&gt;" in body
    assert not Letter.objects.exists()


def test_a_partner_who_opted_out_of_letters_gets_no_note(client_for, liaison):
    task = _task(liaison, _partner(liaison, letters_opt_out=True))
    client = client_for(liaison)

    page = client.get(_url(task)).content.decode()
    assert "opted out of letters" in page and "Send the note" not in page
    response, publish = _send(client, task)
    assert response.status_code == 200 and "opted out of letters" in response.content.decode()
    assert not Letter.objects.exists() and not publish.called
    task.refresh_from_db()
    assert task.status == Task.Status.OPEN


def test_a_task_already_done_sends_nothing(client_for, liaison):
    task = _task(liaison, status=Task.Status.DONE)
    client = client_for(liaison)
    assert client.get(_url(task))["Location"] == task.get_absolute_url()
    response, publish = _send(client, task)
    assert response.status_code == 302
    assert not Letter.objects.exists() and not publish.called


def test_the_manager_may_send_any_partners_note_and_signs_it(client_for, manager, liaison):
    manager.first_name, manager.last_name = "Maria", "Lopez"
    manager.save()
    task = _task(liaison)
    client = client_for(manager)
    page = client.get(_url(task)).content.decode()
    assert "Maria Lopez" in page  # the draft is signed by whoever writes it
    response, _ = _send(client, task, {**NOTE, "body": "Warm regards,\n{{ sender_name }}"})
    letter = Letter.objects.get()
    assert response.status_code == 302 and letter.task == task
    assert letter.body == "Warm regards,\nMaria Lopez"


def test_a_note_for_a_partner_without_an_owner_is_signed_by_its_writer(client_for, liaison):
    liaison.first_name, liaison.last_name = "Jamie", "Carter"
    liaison.save()
    task = _task(liaison)
    Provider.objects.filter(pk=task.provider_id).update(owner=None)
    _send(client_for(liaison), task, {**NOTE, "body": "Warm regards,\n{{ sender_name }}"})
    assert Letter.objects.get().body == "Warm regards,\nJamie Carter"


@pytest.mark.parametrize("role", ["other_liaison", "coordinator", "no_role_user"])
def test_others_cannot_open_or_send_the_note(client_for, request, liaison, role):
    task = _task(liaison)
    client = client_for(request.getfixturevalue(role))
    assert client.get(_url(task)).status_code == 404
    response, publish = _send(client, task)
    assert response.status_code == 404
    preview = client.post(_url(task, "outreach:rekindle_note_preview"), NOTE)
    assert preview.status_code == 404
    assert not Letter.objects.exists() and not publish.called
    task.refresh_from_db()
    assert task.status == Task.Status.OPEN


def test_a_liaison_cannot_write_to_a_partner_now_owned_by_a_colleague(
    client_for, liaison, other_liaison
):
    # The task stayed with its first owner when the partner changed hands.
    task = _task(liaison, _partner(other_liaison))
    client = client_for(liaison)
    assert client.get(_url(task)).status_code == 404
    assert "Write a note" not in client.get(task.get_absolute_url()).content.decode()
    assert _send(client, task)[0].status_code == 404
    assert not Letter.objects.exists()


def test_only_rekindle_tasks_have_a_note(client_for, liaison):
    task = TaskFactory(assignee=liaison, provider=_partner(liaison))
    client = client_for(liaison)
    assert client.get(_url(task)).status_code == 404
    assert "Write a note" not in client.get(task.get_absolute_url()).content.decode()


def test_write_a_note_is_offered_wherever_the_liaisons_rekindle_tasks_are_listed(
    client_for, liaison
):
    task = _task(liaison)
    TaskFactory(assignee=liaison, provider=task.provider, title="Bring the MRI schedule")
    client = client_for(liaison)
    note_url = _url(task)
    for page in (
        task.get_absolute_url(),
        reverse("outreach:task_list"),
        reverse("core:dashboard"),
        task.provider.get_absolute_url(),
    ):
        assert client.get(page).content.decode().count(note_url) == 1, page


def test_write_a_note_is_a_button_of_its_own_under_the_task_not_a_second_small_link(
    client_for, liaison
):
    # On the dashboard and the partner page it was a 21px line of small text right under
    # the task's own link: on a phone a thumb meant for one opened the other.
    task = _task(liaison)
    client = client_for(liaison)
    button = f'<a class="btn btn-sm btn-outline-primary mt-1" href="{_url(task)}">Write a note</a>'
    for page in (reverse("core:dashboard"), task.provider.get_absolute_url()):
        assert button in client.get(page).content.decode(), page


def test_the_task_list_costs_the_same_queries_however_many_rekindle_tasks(
    client_for, liaison, django_assert_max_num_queries
):
    client = client_for(liaison)
    _task(liaison)
    client.get(reverse("outreach:task_list"))
    with django_assert_max_num_queries(12) as few:
        client.get(reverse("outreach:task_list"))
    for _ in range(10):
        _task(liaison)
    with django_assert_max_num_queries(len(few.captured_queries)):
        page = client.get(reverse("outreach:task_list")).content.decode()
    assert page.count("Write a note") == 11


def test_the_rekindle_template_refuses_patient_merge_fields(client_for, manager):
    template = letter_template_for(K.REKINDLE)
    response = client_for(manager).post(
        reverse("outreach:template_update", args=[template.pk]),
        {"subject": "Hello", "body": "How is {{ patient_initials }}?"},
    )
    assert response.status_code == 200
    assert "A rekindle note carries no patient data: remove patient_initials." in (
        response.content.decode()
    )


def test_a_note_that_could_not_be_delivered_puts_its_task_back_on_the_list(
    client_for, liaison, settings
):
    settings.LETTER_RETRY_BACKOFF_SECONDS = 0  # no wait between attempts
    task = _task(liaison)
    client = client_for(liaison)
    _send(client, task)
    letter = Letter.objects.get()
    task.refresh_from_db()
    assert task.status == Task.Status.DONE
    with mock.patch(
        "django.core.mail.EmailMultiAlternatives.send", side_effect=SMTPServerDisconnected()
    ):
        for _ in range(delivery.MAX_DELIVERY_ATTEMPTS - 1):
            with pytest.raises(delivery.TransientDeliveryError):
                delivery.letter_deliver(letter_id=letter.pk)
        delivery.letter_deliver(letter_id=letter.pk)
    letter.refresh_from_db()
    task.refresh_from_db()
    assert letter.status == Letter.Status.FAILED
    assert (task.status, task.completed_at) == (Task.Status.OPEN, None)
    # Writing again leads back to the task, saying why, not to "already sent".
    page = client.get(_url(task), follow=True).content.decode()
    assert "could not be delivered. Call or visit instead" in page
    assert "(failed)" in page
