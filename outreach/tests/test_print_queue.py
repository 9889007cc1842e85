"""The print and fax queue, PDF downloads, and the template editor's live preview."""

from __future__ import annotations

import uuid

import pytest
from django.urls import reverse
from django.utils import timezone

from outreach.models import Letter, LetterTemplate
from partners.factories import ProviderFactory
from partners.models import Provider

pytestmark = pytest.mark.django_db


def _queued(provider=None, channel=Letter.Channel.FAX, **kwargs):
    return Letter.objects.create(
        kind=LetterTemplate.Kind.THANK_YOU,
        provider=provider or ProviderFactory(),
        subject=kwargs.pop("subject", "Thank you for referring R.O."),
        body="Dear Dr. Wiebe,\n\nThank you.",
        due_on=timezone.localdate(),
        status=Letter.Status.PRINT_QUEUE,
        channel=channel,
        recipient="(402) 555-0100" if channel == Letter.Channel.FAX else "",
        message_id=f"<{uuid.uuid4().hex}@test>",
        **kwargs,
    )


def test_coordinators_and_managers_work_the_print_queue_and_liaisons_do_not(
    client_for, coordinator, manager, liaison
):
    _queued(subject="Fax me please")
    url = reverse("outreach:print_queue")
    assert "Fax me please" in client_for(coordinator).get(url).content.decode()
    assert client_for(manager).get(url).status_code == 200
    assert client_for(liaison).get(url).status_code == 403


def test_the_print_queue_lists_only_letters_waiting_for_paper(client_for, coordinator):
    _queued(subject="Waiting for the fax")
    _queued(subject="Already sent", channel=Letter.Channel.MAIL).__class__.objects.filter(
        subject="Already sent"
    ).update(status=Letter.Status.SENT)
    page = client_for(coordinator).get(reverse("outreach:print_queue")).content.decode()
    assert "Waiting for the fax" in page
    assert "Already sent" not in page


def test_the_print_queue_runs_the_same_queries_however_many_letters_wait(
    client_for, coordinator, django_assert_num_queries
):
    client = client_for(coordinator)
    _queued()
    url = reverse("outreach:print_queue")
    client.get(url)  # warm the session and permission caches
    with django_assert_num_queries(6) as few:
        client.get(url)
    for _ in range(30):
        _queued()
    with django_assert_num_queries(len(few.captured_queries)):
        response = client.get(url)
    assert response.content.decode().count("Mark faxed") == 25


def test_a_queued_letter_downloads_as_a_pdf(client_for, coordinator):
    letter = _queued()
    response = client_for(coordinator).get(reverse("outreach:letter_pdf", args=[letter.pk]))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response.content.startswith(b"%PDF-")
    assert response["Content-Disposition"] == f'attachment; filename="letter-{letter.pk}.pdf"'


def test_a_liaison_downloads_only_the_letters_of_their_own_partners(
    client_for, liaison, other_liaison
):
    letter = _queued(provider=ProviderFactory(owner=liaison))
    url = reverse("outreach:letter_pdf", args=[letter.pk])
    assert client_for(liaison).get(url).status_code == 200
    assert client_for(other_liaison).get(url).status_code == 404


def test_marking_a_fax_sent_records_who_and_when_and_returns_the_row_to_htmx(
    client_for, coordinator
):
    letter = _queued()
    response = client_for(coordinator).post(
        reverse("outreach:letter_printed", args=[letter.pk]), HTTP_HX_REQUEST="true"
    )
    letter.refresh_from_db()
    assert (letter.status, letter.printed_by) == (Letter.Status.SENT, coordinator)
    assert letter.sent_at is not None
    assert "<html" not in response.content.decode()


def test_a_queued_letter_to_a_partner_who_opted_out_since_is_flagged_and_withdrawn(
    client_for, coordinator, manager
):
    from partners.services.offices import organization_set_letters_opt_out

    own = _queued(provider=ProviderFactory(), subject="To the partner")
    office = _queued(provider=ProviderFactory(), subject="To the office")
    still = _queued(provider=ProviderFactory(), subject="Still wanted")
    Provider.objects.filter(pk=own.provider_id).update(letters_opt_out=True)
    organization_set_letters_opt_out(
        organization=office.provider.organization, opted_out=True, actor=manager
    )
    client = client_for(coordinator)
    page = client.get(reverse("outreach:print_queue")).content.decode()
    assert "The partner has opted out of letters since this was queued" in page
    assert "Their office has opted out of letters since this was queued" in page
    assert page.count('data-testid="opted-out"') == 2
    for letter in (own, office, still):
        response = client.post(
            reverse("outreach:letter_withdraw", args=[letter.pk]), HTTP_HX_REQUEST="true"
        )
        assert response.status_code == 200 and "<html" not in response.content.decode()
        letter.refresh_from_db()
    assert (own.status, office.status) == (Letter.Status.SKIPPED, Letter.Status.SKIPPED)
    # A partner who still takes letters keeps theirs in the queue.
    assert still.status == Letter.Status.PRINT_QUEUE
    page = client.get(reverse("outreach:print_queue")).content.decode()
    assert "Still wanted" in page and "To the office" not in page


def test_a_liaison_cannot_withdraw_a_letter(client_for, liaison):
    letter = _queued(provider=ProviderFactory(owner=liaison, letters_opt_out=True))
    response = client_for(liaison).post(reverse("outreach:letter_withdraw", args=[letter.pk]))
    assert response.status_code == 403
    letter.refresh_from_db()
    assert letter.status == Letter.Status.PRINT_QUEUE


def test_a_liaison_cannot_mark_a_letter_printed(client_for, liaison):
    letter = _queued(provider=ProviderFactory(owner=liaison))
    response = client_for(liaison).post(reverse("outreach:letter_printed", args=[letter.pk]))
    assert response.status_code == 403
    letter.refresh_from_db()
    assert letter.status == Letter.Status.PRINT_QUEUE


def test_the_template_list_offers_every_kind_of_letter(client_for, manager):
    page = client_for(manager).get(reverse("outreach:template_list")).content.decode()
    for label in LetterTemplate.Kind.labels:
        assert label in page
    # Each says when its letters go out; the schedule-driven kinds have no delay.
    assert "due 2 business days after the referral reaches that step" in page  # thank-you
    assert "sent as many days before an event as the event says" in page
    assert "after the event" not in page


def test_a_letter_kind_on_its_own_schedule_has_no_delay_to_edit(client_for, manager):
    from outreach.services.letters import letter_template_for

    reminder = letter_template_for(LetterTemplate.Kind.EVENT_REMINDER)
    page = client_for(manager).get(reverse("outreach:template_update", args=[reminder.pk]))
    assert 'name="delay_business_days"' not in page.content.decode()
    thanks = letter_template_for(LetterTemplate.Kind.THANK_YOU)
    page = client_for(manager).get(reverse("outreach:template_update", args=[thanks.pk]))
    assert 'name="delay_business_days"' in page.content.decode()


def test_the_editor_previews_unsaved_text_for_a_sample_referral(client_for, manager):
    client = client_for(manager)
    client.get(reverse("outreach:template_list"))
    template = LetterTemplate.objects.get(kind=LetterTemplate.Kind.SCHEDULED)
    response = client.post(
        reverse("outreach:template_preview", args=[template.pk]),
        {"subject": "See you, {{ provider_last_name }}", "body": "On {{ appointment_date }}."},
        HTTP_HX_REQUEST="true",
    )
    html = response.content.decode()
    assert "See you, Whitfield" in html
    assert "On March 12, 2026 at 9:30 AM." in html
    assert "<html" not in html
    template.refresh_from_db()
    assert template.subject != "See you, {{ provider_last_name }}"


def test_the_partner_timeline_shows_each_letter_with_what_was_sent_and_how(client_for, manager):
    provider = ProviderFactory(preferred_channel="fax")
    _queued(provider=provider, subject="Thank you for referring K.L.")
    page = client_for(manager).get(provider.get_absolute_url()).content.decode()
    assert "Thank you for referring K.L." in page
    assert "In the print/fax queue · fax" in page
    assert "Letters by fax" in page


def test_a_letter_not_yet_sent_says_where_it_will_go_and_a_sent_one_where_it_went(
    client_for, manager
):
    pending = _queued(channel=Letter.Channel.EMAIL)
    Letter.objects.filter(pk=pending.pk).update(
        status=Letter.Status.PENDING, recipient="desk@clinic.test"
    )
    page = client_for(manager).get(pending.get_absolute_url()).content.decode()
    assert "Will go to desk@clinic.test" in page and "Sent to" not in page
    Letter.objects.filter(pk=pending.pk).update(status=Letter.Status.SENT, sent_at=timezone.now())
    page = client_for(manager).get(pending.get_absolute_url()).content.decode()
    assert "Sent to desk@clinic.test" in page


def test_a_fax_waiting_in_the_queue_is_not_called_sent_and_can_be_marked_from_its_page(
    client_for, coordinator
):
    letter = _queued()
    Letter.objects.filter(pk=letter.pk).update(sent_at=timezone.now())  # as an older row had
    client = client_for(coordinator)
    page = client.get(letter.get_absolute_url()).content.decode()
    assert "Will go to (402) 555-0100" in page and "Sent to" not in page
    assert "Letter: Thank-you" in page and "Mark faxed…" in page
    client.post(reverse("outreach:letter_printed", args=[letter.pk]))
    page = client.get(letter.get_absolute_url()).content.decode()
    assert "Sent to (402) 555-0100" in page and "Mark faxed…" not in page


def test_a_letter_to_mail_without_a_deliverable_address_is_flagged_in_the_queue(
    client_for, coordinator
):
    from partners.factories import OrganizationFactory

    nowhere = OrganizationFactory(address_line1="", city="", zip_code="")
    somewhere = OrganizationFactory(address_line1="1 Main St", city="Kearney", zip_code="68847")
    _queued(ProviderFactory(organization=nowhere), channel=Letter.Channel.MAIL, subject="Nowhere")
    _queued(ProviderFactory(organization=somewhere), channel=Letter.Channel.MAIL, subject="Here")
    _queued(ProviderFactory(organization=None), channel=Letter.Channel.MAIL, subject="No office")
    page = client_for(coordinator).get(reverse("outreach:print_queue")).content.decode()
    rows = {
        subject: page.split(f">{subject}</a>")[1].split("</li>")[0]
        for subject in ("Nowhere", "Here", "No office")
    }
    assert "No mailing address on file" in rows["Nowhere"]
    assert nowhere.get_absolute_url() in rows["Nowhere"]
    assert "No mailing address on file" in rows["No office"]
    assert "No mailing address on file" not in rows["Here"]
