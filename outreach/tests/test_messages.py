"""Loop messages for every referral event, routed by the partner's preferences."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import mail
from django.test import override_settings
from django.urls import reverse
from django.utils import timezone

from bench.smtp_sink import SilentServer, SmtpSink
from outreach.fax import PrintQueueFaxBackend
from outreach.models import Letter, LetterTemplate, Task
from outreach.pdf import letter_pdf
from outreach.services import delivery, letters, loop
from partners.factories import ProviderFactory
from partners.models import Organization, Provider
from referrals.factories import ReferralFactory
from referrals.models import Referral, Status
from referrals.services.workflow import referral_log, referral_transition

pytestmark = pytest.mark.django_db

K = LetterTemplate.Kind


def _referral(**provider_kwargs):
    provider = ProviderFactory(**provider_kwargs)
    return referral_log(
        referral=ReferralFactory.build(
            provider=provider, patient_first_name="Ruth", patient_last_name="Olsen"
        ),
        actor=None,
    )


def _walk(referral, *statuses):
    # Booked for three days out, and seen on that day.
    appointment = timezone.now() + timedelta(days=3)
    for status in statuses:
        referral = referral_transition(
            referral=referral,
            to_status=status,
            actor=None,
            appointment_at=appointment,
            at=appointment if status == Status.SEEN else None,
        )
    return referral


def _missed(referral):
    # A no-show is known once the appointment time has passed.
    return referral_transition(
        referral=referral,
        to_status=Status.NO_SHOW,
        actor=None,
        at=referral.appointment_at + timedelta(hours=1),
    )


def test_a_new_inbound_referral_is_acknowledged_by_email_the_same_day():
    referral = _referral(email="wiebe@example.org")

    _task, letter = loop.loop_message_prepare(referral_id=referral.pk, status=Status.RECEIVED)

    assert letter.kind == K.ACKNOWLEDGMENT
    assert (letter.channel, letter.status) == (Letter.Channel.EMAIL, Letter.Status.PENDING)
    assert letter.recipient == "wiebe@example.org"
    assert letter.due_on == timezone.localdate()
    assert "R.O." in letter.subject and "Olsen" not in letter.body
    assert letter.message_id.startswith("<") and letter.message_id.endswith(">")


def test_each_pipeline_step_sends_its_own_message_once():
    referral = _referral(email="wiebe@example.org")
    # Every message asked for (twice) as each step is reached, as the worker does.
    for step in (None, Status.ACCEPTED, Status.SCHEDULED, Status.SEEN, Status.REPORT_SENT):
        if step is not None:
            referral = _walk(referral, step)
        for status in loop.LOOP_MESSAGES:
            loop.loop_message_prepare(referral_id=referral.pk, status=status)
            loop.loop_message_prepare(referral_id=referral.pk, status=status)

    kinds = sorted(Letter.objects.filter(referral=referral).values_list("kind", flat=True))
    assert kinds == sorted([K.ACKNOWLEDGMENT, K.SCHEDULED, K.THANK_YOU, K.OUTCOME])
    scheduled = Letter.objects.get(referral=referral, kind=K.SCHEDULED)
    appointment = timezone.localtime(referral.appointment_at)
    assert f"{appointment:%B %-d, %Y}" in scheduled.body


def test_a_step_the_referral_never_reached_sends_nothing():
    referral = _referral(email="wiebe@example.org")
    assert loop.loop_message_prepare(referral_id=referral.pk, status=Status.SEEN) == (
        None,
        None,
    )
    assert loop.loop_message_prepare(referral_id=referral.pk, status=Status.ACCEPTED) == (
        None,
        None,
    )


def test_an_outbound_referral_messages_nobody():
    referral = referral_log(
        referral=ReferralFactory.build(
            provider=ProviderFactory(), direction=Referral.Direction.OUTBOUND
        ),
        actor=None,
    )
    assert loop.loop_message_prepare(referral_id=referral.pk, status=Status.RECEIVED) == (
        None,
        None,
    )


def test_a_partner_who_opted_out_gets_no_letter_but_the_timeline_shows_why():
    referral = _referral(email="wiebe@example.org", letters_opt_out=True)
    _task, letter = loop.loop_message_prepare(referral_id=referral.pk, status=Status.RECEIVED)
    assert letter.status == Letter.Status.SKIPPED
    assert delivery.letter_deliver(letter_id=letter.pk) is None
    assert mail.outbox == []
    # The sweep does not prepare it again and again.
    assert (referral.pk, Status.RECEIVED) not in loop.referral_events_missing_messages()


def test_a_partner_who_prefers_a_call_gets_a_call_task_instead_of_a_thank_you_letter():
    referral = _referral(email="wiebe@example.org", thank_you_by=Provider.ThankYouBy.CALL)
    referral = _walk(referral, Status.ACCEPTED, Status.SCHEDULED, Status.SEEN)
    task, letter = loop.loop_message_prepare(referral_id=referral.pk, status=Status.SEEN)
    assert (letter.channel, letter.status) == (Letter.Channel.CALL, Letter.Status.SKIPPED)
    assert task.kind == Task.Kind.THANK_YOU and task.title.startswith("Call ")
    # Other messages still go by the preferred channel.
    _, ack = loop.loop_message_prepare(referral_id=referral.pk, status=Status.RECEIVED)
    assert ack.channel == Letter.Channel.EMAIL


@pytest.mark.parametrize(
    ("preferred", "email", "expected"),
    [
        (Provider.PreferredChannel.EMAIL, "a@example.org", Letter.Channel.EMAIL),
        (Provider.PreferredChannel.PORTAL, "a@example.org", Letter.Channel.EMAIL),
        (Provider.PreferredChannel.FAX, "a@example.org", Letter.Channel.FAX),
        (Provider.PreferredChannel.MAIL, "a@example.org", Letter.Channel.MAIL),
        # No address for the preferred channel: paper, by fax when the office has one.
        (Provider.PreferredChannel.EMAIL, "", Letter.Channel.FAX),
    ],
)
def test_the_channel_follows_the_partners_preference(preferred, email, expected):
    provider = ProviderFactory(preferred_channel=preferred, email=email, organization__email="")
    channel, status, _ = letters.letter_route(provider, K.ACKNOWLEDGMENT)
    assert (channel, status) == (expected, Letter.Status.PENDING)


def test_without_any_fax_or_email_the_letter_goes_by_mail():
    provider = ProviderFactory(email="", organization=None)
    assert letters.letter_route(provider, K.OUTCOME)[0] == Letter.Channel.MAIL


def _due(letter):
    Letter.objects.filter(pk=letter.pk).update(due_on=timezone.localdate())
    return letter


def test_an_email_letter_carries_html_text_and_its_own_message_id():
    referral = _referral(email="wiebe@example.org")
    _, letter = loop.loop_message_prepare(referral_id=referral.pk, status=Status.RECEIVED)
    delivery.letter_deliver(letter_id=_due(letter).pk)
    sent = mail.outbox[0]
    assert sent.extra_headers["Message-ID"] == letter.message_id
    assert sent.body == letter.body
    html, mimetype = sent.alternatives[0]
    assert mimetype == "text/html"
    assert "Riverside Orthopedics" in html and "R.O." in html


class RecordingFaxBackend:
    sent: list[bytes] = []

    def send(self, *, letter, pdf):
        RecordingFaxBackend.sent.append(pdf)
        return Letter.Status.SENT


def test_a_fax_goes_through_the_configured_backend_with_the_pdf():
    RecordingFaxBackend.sent = []
    referral = _referral(preferred_channel=Provider.PreferredChannel.FAX)
    _, letter = loop.loop_message_prepare(referral_id=referral.pk, status=Status.RECEIVED)
    with override_settings(FAX_BACKEND=f"{__name__}.RecordingFaxBackend"):
        delivered = delivery.letter_deliver(letter_id=_due(letter).pk)
    assert delivered.status == Letter.Status.SENT
    assert RecordingFaxBackend.sent[0].startswith(b"%PDF")


def test_the_default_fax_backend_leaves_the_fax_in_the_print_queue():
    assert isinstance(delivery.fax_backend(), PrintQueueFaxBackend)
    referral = _referral(preferred_channel=Provider.PreferredChannel.FAX)
    _, letter = loop.loop_message_prepare(referral_id=referral.pk, status=Status.RECEIVED)
    delivered = delivery.letter_deliver(letter_id=_due(letter).pk)
    assert (delivered.status, delivered.channel) == (Letter.Status.PRINT_QUEUE, "fax")
    assert delivered.recipient == referral.provider.fax
    assert mail.outbox == []


def test_a_waiting_letter_goes_to_the_fax_number_or_channel_the_partner_has_now():
    RecordingFaxBackend.sent = []
    referral = _referral(
        preferred_channel=Provider.PreferredChannel.FAX, organization__fax="2125550100"
    )
    _, by_fax = loop.loop_message_prepare(referral_id=referral.pk, status=Status.RECEIVED)
    assert (by_fax.channel, by_fax.recipient) == ("fax", "2125550100")
    # The office's fax number was corrected before the letter left.
    Organization.objects.filter(pk=referral.provider.organization_id).update(fax="2125550199")
    delivered = delivery.letter_deliver(letter_id=_due(by_fax).pk)
    assert (delivered.status, delivered.recipient) == (Letter.Status.PRINT_QUEUE, "2125550199")
    assert Letter.objects.get(pk=by_fax.pk).recipient == "2125550199"
    # And a partner who now prefers email gets the next waiting letter by email.
    referral = _walk(referral, Status.ACCEPTED, Status.SCHEDULED)
    _, booked = loop.loop_message_prepare(referral_id=referral.pk, status=Status.SCHEDULED)
    assert booked.channel == "fax"
    Provider.objects.filter(pk=referral.provider_id).update(
        preferred_channel=Provider.PreferredChannel.EMAIL, email="new@example.org"
    )
    delivered = delivery.letter_deliver(letter_id=_due(booked).pk)
    assert (delivered.status, delivered.channel) == (Letter.Status.SENT, "email")
    assert mail.outbox[0].to == ["new@example.org"]
    assert RecordingFaxBackend.sent == []


def test_a_thank_you_waiting_when_the_partner_asks_for_calls_keeps_its_route():
    referral = _referral(email="wiebe@example.org")
    _, letter = loop.loop_message_prepare(referral_id=referral.pk, status=Status.RECEIVED)
    Provider.objects.filter(pk=referral.provider_id).update(thank_you_by=Provider.ThankYouBy.CALL)
    delivered = delivery.letter_deliver(letter_id=_due(letter).pk)
    assert (delivered.status, delivered.recipient) == (Letter.Status.SENT, "wiebe@example.org")


def test_the_pdf_has_the_letterhead_and_survives_typographic_characters():
    referral = _referral(first_name="Zoë", last_name="O\u2019Brien")
    _, letter = loop.loop_message_prepare(referral_id=referral.pk, status=Status.RECEIVED)
    letter.body += "\n\n“Quoted” — and a snowman ☃."
    pdf = letter_pdf(letter)
    assert pdf.startswith(b"%PDF-") and len(pdf) > 1000


def test_the_sweep_finds_every_kind_of_message_whose_enqueue_was_lost():
    referral = _referral(email="wiebe@example.org")
    referral = _walk(referral, Status.ACCEPTED, Status.SCHEDULED, Status.SEEN, Status.REPORT_SENT)
    declined = referral_transition(
        referral=_referral(email="other@example.org"),
        to_status=Status.DECLINED,
        actor=None,
        decline_reason="outside our scope.",
    )
    missed = _walk(_referral(email="third@example.org"), Status.ACCEPTED, Status.SCHEDULED)
    missed = _missed(missed)
    cancelled = referral_transition(
        referral=_referral(email="fourth@example.org"),
        to_status=Status.CANCELLED,
        actor=None,
        cancel_reason="the patient moved away.",
    )
    missing = set(loop.referral_events_missing_messages())
    # Not the scheduled notices: both appointments are over (seen, missed), and the office
    # is not told of an appointment that no longer stands.
    assert missing == {
        *(
            (referral.pk, status)
            for status in loop.LOOP_MESSAGES
            if status
            not in (
                Status.DECLINED,
                Status.NO_SHOW,
                Status.CANCELLED,
                Status.ON_HOLD,
                Status.SCHEDULED,
            )
        ),
        (declined.pk, Status.RECEIVED),
        (declined.pk, Status.DECLINED),
        *((missed.pk, status) for status in (Status.RECEIVED, Status.NO_SHOW)),
        (cancelled.pk, Status.RECEIVED),
        (cancelled.pk, Status.CANCELLED),
    }
    for referral_id, status in missing:
        loop.loop_message_prepare(referral_id=referral_id, status=status)
    assert loop.referral_events_missing_messages() == []


def test_an_smtp_server_that_refuses_leads_to_retries_then_a_visible_failure(settings):
    settings.LETTER_RETRY_BACKOFF_SECONDS = 0  # no wait between attempts
    sink = SmtpSink().start()
    sink.refuse = True
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", sink.port
    try:
        referral = _referral(email="wiebe@example.org")
        _, letter = loop.loop_message_prepare(referral_id=referral.pk, status=Status.RECEIVED)
        _due(letter)
        for _ in range(delivery.MAX_DELIVERY_ATTEMPTS - 1):
            with pytest.raises(delivery.TransientDeliveryError):
                delivery.letter_deliver(letter_id=letter.pk)
        failed = delivery.letter_deliver(letter_id=letter.pk)
    finally:
        sink.stop()
    assert failed.status == Letter.Status.FAILED
    assert failed.last_error.startswith("SMTPDataError")
    assert sink.total == 0


def test_an_smtp_server_that_never_answers_times_out_and_is_retried(settings):
    silent = SilentServer()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", silent.port, 1
    try:
        referral = _referral(email="wiebe@example.org")
        _, letter = loop.loop_message_prepare(referral_id=referral.pk, status=Status.RECEIVED)
        with pytest.raises(delivery.TransientDeliveryError):
            delivery.letter_deliver(letter_id=_due(letter).pk)
    finally:
        silent.stop()
    letter.refresh_from_db()
    assert (letter.status, letter.attempts) == (Letter.Status.PENDING, 1)
    # smtplib reports the greeting that never came as a disconnect after the timeout.
    assert letter.last_error == "SMTPServerDisconnected on attempt 1"


def test_a_declined_referral_tells_the_referring_office_why():
    referral = _referral(email="wiebe@example.org")
    referral = referral_transition(
        referral=referral,
        to_status=Status.DECLINED,
        actor=None,
        decline_reason="we do not treat pediatric patients.",
    )

    _task, letter = loop.loop_message_prepare(referral_id=referral.pk, status=Status.DECLINED)

    assert letter.kind == K.DECLINED
    assert (letter.channel, letter.recipient) == (Letter.Channel.EMAIL, "wiebe@example.org")
    assert letter.due_on == timezone.localdate()
    assert "we do not treat pediatric patients." in letter.body
    assert "R.O." in letter.subject and "Olsen" not in letter.body
    # Declining is a loop event like the others: enqueued by the workflow, recovered by
    # the sweep if that message was lost.
    Letter.objects.all().delete()
    assert (referral.pk, Status.DECLINED) in loop.referral_events_missing_messages()


def test_a_bulk_decline_sends_each_referring_office_its_notice(coordinator):
    from referrals.services.bulk import referral_bulk_apply

    referrals = [_referral(email=f"office{n}@example.org") for n in range(3)]
    referral_bulk_apply(
        queryset=Referral.objects.filter(pk__in=[referral.pk for referral in referrals]),
        versions={referral.pk: referral.updated_at for referral in referrals},
        actor=coordinator,
        to_status=Status.DECLINED,
        reason="the practice is not taking new patients this month.",
    )
    missing = loop.referral_events_missing_messages()
    assert {(referral.pk, Status.DECLINED) for referral in referrals} <= set(missing)
    for referral_id, status in missing:
        loop.loop_message_prepare(referral_id=referral_id, status=status)
    notices = Letter.objects.filter(kind=K.DECLINED).order_by("recipient")
    assert [letter.recipient for letter in notices] == [
        "office0@example.org",
        "office1@example.org",
        "office2@example.org",
    ]
    assert all("not taking new patients" in letter.body for letter in notices)


def test_each_missed_appointment_tells_the_referring_office():
    referral = _walk(_referral(email="wiebe@example.org"), Status.ACCEPTED, Status.SCHEDULED)
    first_appointment = timezone.localtime(referral.appointment_at)
    referral = _missed(referral)
    _task, notice = loop.loop_message_prepare(referral_id=referral.pk, status=Status.NO_SHOW)
    assert notice.kind == K.NO_SHOW and notice.sequence == 1
    assert notice.recipient == "wiebe@example.org"
    assert f"{first_appointment:%B %-d, %Y}" in notice.body
    assert "R.O." in notice.subject and "Olsen" not in notice.body

    # Rebooked, missed again: a second notice; preparing again changes nothing.
    referral = _walk(referral, Status.SCHEDULED)
    referral = _missed(referral)
    for _ in range(2):
        loop.loop_message_prepare(referral_id=referral.pk, status=Status.NO_SHOW)
    notices = Letter.objects.filter(referral=referral, kind=K.NO_SHOW).order_by("sequence")
    assert [notice.sequence for notice in notices] == [1, 2]
    # And the sweep sees nothing missing for them.
    assert (referral.pk, Status.NO_SHOW) not in loop.referral_events_missing_messages()


def test_a_cancelled_referral_tells_the_referring_office_once(coordinator):
    from referrals.services.bulk import referral_bulk_apply

    scheduled = _walk(_referral(email="wiebe@example.org"), Status.ACCEPTED, Status.SCHEDULED)
    fresh = _referral(email="office@example.org")
    referral_bulk_apply(
        queryset=Referral.objects.filter(pk__in=[scheduled.pk, fresh.pk]),
        versions={scheduled.pk: scheduled.updated_at, fresh.pk: fresh.updated_at},
        actor=coordinator,
        to_status=Status.CANCELLED,
        reason="we could not reach the patient after three calls.",
    )
    for referral in (scheduled, fresh):
        for _ in range(2):
            loop.loop_message_prepare(referral_id=referral.pk, status=Status.CANCELLED)
    notices = Letter.objects.filter(kind=K.CANCELLED).order_by("recipient")
    assert [letter.recipient for letter in notices] == ["office@example.org", "wiebe@example.org"]
    notice = notices[1]
    received_on = timezone.localtime(scheduled.received_at)
    assert f"{received_on:%B %-d, %Y}" in notice.body
    assert "cancelled" in notice.subject and "R.O." in notice.subject
    assert "The reason: we could not reach the patient after three calls." in notice.body
    assert "Olsen" not in notice.subject + notice.body
    assert not any(
        status == Status.CANCELLED for _pk, status in loop.referral_events_missing_messages()
    )


def test_an_outbound_referral_cancelled_sends_nothing():
    referral = referral_log(
        referral=ReferralFactory.build(
            provider=ProviderFactory(email="wiebe@example.org"), direction="outbound"
        ),
        actor=None,
    )
    referral = referral_transition(
        referral=referral, to_status=Status.CANCELLED, actor=None, cancel_reason="Sent in error"
    )
    assert loop.loop_message_prepare(referral_id=referral.pk, status=Status.CANCELLED) == (
        None,
        None,
    )
    assert not Letter.objects.filter(referral=referral).exists()


def test_a_hold_that_says_what_it_needs_asks_the_referring_office_for_it():
    referral = referral_transition(
        referral=_referral(email="wiebe@example.org"),
        to_status=Status.ON_HOLD,
        actor=None,
        hold_reason="  the office notes of the last visit.  ",
    )
    assert referral.hold_reason == "the office notes of the last visit."
    assert (referral.pk, Status.ON_HOLD) in loop.referral_events_missing_messages()
    _task, notice = loop.loop_message_prepare(referral_id=referral.pk, status=Status.ON_HOLD)
    assert (notice.kind, notice.sequence, notice.recipient) == (K.ON_HOLD, 1, "wiebe@example.org")
    assert "until we have this: the office notes of the last visit." in notice.body
    assert "R.O." in notice.subject and "Olsen" not in notice.subject + notice.body
    assert (referral.pk, Status.ON_HOLD) not in loop.referral_events_missing_messages()

    # Resumed, then held again for something else: a second notice, numbered.
    referral = _walk(referral, Status.ACCEPTED)
    referral = referral_transition(
        referral=referral, to_status=Status.ON_HOLD, actor=None, hold_reason="the MRI report."
    )
    for _ in range(2):
        loop.loop_message_prepare(referral_id=referral.pk, status=Status.ON_HOLD)
    notices = Letter.objects.filter(referral=referral, kind=K.ON_HOLD).order_by("sequence")
    assert [n.sequence for n in notices] == [1, 2]
    assert "the MRI report." in notices[1].body


def test_a_hold_without_a_reason_or_already_over_sends_nothing():
    silent = referral_transition(
        referral=_referral(email="wiebe@example.org"), to_status=Status.ON_HOLD, actor=None
    )
    resumed = referral_transition(
        referral=_referral(email="office@example.org"),
        to_status=Status.ON_HOLD,
        actor=None,
        hold_reason="the insurance authorization.",
    )
    resumed = _walk(resumed, Status.ACCEPTED)  # before its notice was prepared
    missing = loop.referral_events_missing_messages()
    for referral in (silent, resumed):
        assert (referral.pk, Status.ON_HOLD) not in missing
        assert loop.loop_message_prepare(referral_id=referral.pk, status=Status.ON_HOLD) == (
            None,
            None,
        )
    assert not Letter.objects.filter(kind=K.ON_HOLD).exists()


def _held(**provider_kwargs):
    referral = referral_transition(
        referral=_referral(**provider_kwargs),
        to_status=Status.ON_HOLD,
        actor=None,
        hold_reason="the insurance authorization.",
    )
    _task, notice = loop.loop_message_prepare(referral_id=referral.pk, status=Status.ON_HOLD)
    return referral, notice


def test_ending_a_hold_withdraws_its_notice_unless_it_has_left():
    waiting, waiting_notice = _held(email="wiebe@example.org")
    queued, queued_notice = _held(preferred_channel=Provider.PreferredChannel.FAX)
    assert delivery.letter_deliver(letter_id=queued_notice.pk).status == Letter.Status.PRINT_QUEUE
    sent, sent_notice = _held(email="office@example.org")
    assert delivery.letter_deliver(letter_id=sent_notice.pk).status == Letter.Status.SENT
    _task, acknowledgment = loop.loop_message_prepare(
        referral_id=waiting.pk, status=Status.RECEIVED
    )

    for referral in (waiting, queued, sent):
        _walk(referral, Status.ACCEPTED)

    for notice in (waiting_notice, queued_notice):
        notice.refresh_from_db()
        assert (notice.status, notice.last_error) == (Letter.Status.CANCELLED, loop.HOLD_ENDED)
    sent_notice.refresh_from_db()
    assert sent_notice.status == Letter.Status.SENT
    # Only the hold's notices: the acknowledgment still waiting to go stays as it was.
    acknowledgment.refresh_from_db()
    assert acknowledgment.status == Letter.Status.PENDING
    # Nothing withdrawn is sent: the sender no longer sees it.
    assert delivery.letter_deliver(letter_id=waiting_notice.pk) is None
    assert len(mail.outbox) == 1


def test_a_hold_that_ends_while_its_notice_is_written_sends_nothing(monkeypatch):
    referral = referral_transition(
        referral=_referral(email="wiebe@example.org"),
        to_status=Status.ON_HOLD,
        actor=None,
        hold_reason="the insurance authorization.",
    )
    write_template = letters.letter_template_for

    def coordinator_resumes_meanwhile(kind):
        # After the notice's first check, before it is saved: another request ends the hold.
        _walk(Referral.objects.get(pk=referral.pk), Status.ACCEPTED)
        return write_template(kind)

    monkeypatch.setattr(loop, "letter_template_for", coordinator_resumes_meanwhile)

    assert loop.loop_message_prepare(referral_id=referral.pk, status=Status.ON_HOLD) == (
        None,
        None,
    )
    assert not Letter.objects.filter(referral=referral, kind=K.ON_HOLD).exists()


def test_a_bulk_hold_with_a_reason_asks_each_referring_office_for_it(client_for, coordinator):
    referrals = [_referral(email=f"office{n}@example.org") for n in range(2)]
    response = client_for(coordinator).post(
        reverse("referrals:bulk"),
        {
            "rows": [f"{r.pk}:{r.updated_at.isoformat()}" for r in referrals],
            "to_status": "on_hold",
            "reason": "the insurance authorization.",
        },
    )
    assert response.status_code == 302
    for referral in referrals:
        referral.refresh_from_db()
        assert (referral.status, referral.hold_reason) == (
            Status.ON_HOLD,
            "the insurance authorization.",
        )
        _task, notice = loop.loop_message_prepare(referral_id=referral.pk, status=Status.ON_HOLD)
        assert "the insurance authorization." in notice.body


def test_a_cancelled_notice_template_left_as_first_shipped_learns_to_say_why():
    import importlib

    from django.apps import apps

    migration = importlib.import_module("outreach.migrations.0016_cancelled_notice_says_why")
    assert letters.DEFAULT_TEMPLATES[K.CANCELLED]["body"] == migration.SAYS_WHY
    template = letters.letter_template_for(K.CANCELLED)
    template.body = migration.FIRST
    template.save()

    migration.forwards(apps, None)
    template.refresh_from_db()
    assert "{{ cancel_reason }}" in template.body

    # A text the practice wrote itself is theirs: left alone.
    template.body = "Dear {{ provider_name }}, we closed the referral. Call us."
    template.save()
    migration.forwards(apps, None)
    template.refresh_from_db()
    assert template.body == "Dear {{ provider_name }}, we closed the referral. Call us."


def test_names_outside_latin_1_lose_their_accents_in_the_pdf_not_their_letters():
    from outreach.pdf import _latin1

    assert _latin1("Thị Ðặng Nguyễn") == "Thi Ðang Nguyen"
    assert _latin1("Dvořák, Łukasz Đorđević") == "Dvorák, Lukasz Dordevic"
    assert _latin1("José Peña Müller") == "José Peña Müller"  # Latin-1 as it is
    assert _latin1("محمد") == "????"  # no Latin form: said as unknown, not dropped


def test_a_word_wider_than_the_page_is_broken_to_fit_it():
    from fpdf import FPDF

    from outreach.pdf import _wrap

    pdf = FPDF(format="letter")
    pdf.add_page()
    pdf.set_font("Helvetica", size=11)
    width = 170.0
    long_word = "https://example.org/" + "x" * 300
    lines = _wrap(pdf, f"See {long_word} today.\n\nThanks.", width)
    assert all(pdf.get_string_width(line) <= width for line in lines)
    assert "".join(lines).replace(" ", "") == f"See{long_word}today.Thanks."
    assert lines[0] == "See" and lines[-1] == "Thanks." and lines[-2] == ""


def test_a_letter_to_an_office_with_a_very_long_name_renders_within_the_page(monkeypatch):
    from fpdf import FPDF

    drawn: list[tuple[str, float, float]] = []
    cell = FPDF.cell

    def measured(self, *args, **kwargs):
        text = kwargs.get("text", "")
        drawn.append((text, self.get_string_width(text), self.epw))
        return cell(self, *args, **kwargs)

    monkeypatch.setattr(FPDF, "cell", measured)
    referral = _referral(first_name="Thị", last_name="Nguyễn")
    referral.provider.organization.name = "Kearney Regional Medical Center " * 6
    referral.provider.organization.save()
    _, letter = loop.loop_message_prepare(referral_id=referral.pk, status=Status.RECEIVED)
    assert letter_pdf(letter).startswith(b"%PDF-")
    assert any(text.startswith("Kearney Regional") for text, _, _ in drawn)
    assert all(width <= page for _, width, page in drawn)
    assert any("Nguyen" in text for text, _, _ in drawn)


def test_a_referral_moved_to_the_right_partner_sends_its_waiting_letters_to_them():
    from core.factories import UserFactory
    from referrals.services.edit import referral_edit

    referral = _walk(
        _referral(first_name="Wrong", last_name="Doctor", email="wrong@example.org"),
        Status.ACCEPTED,
        Status.SCHEDULED,
        Status.SEEN,
    )
    _, ack = loop.loop_message_prepare(referral_id=referral.pk, status=Status.RECEIVED)
    delivery.letter_deliver(letter_id=ack.pk)
    task, thank_you = loop.loop_message_prepare(referral_id=referral.pk, status=Status.SEEN)
    assert thank_you.status == Letter.Status.PENDING and not thank_you.is_due
    owner = UserFactory(first_name="Jamie", last_name="Carter")
    right = ProviderFactory(
        first_name="Right", last_name="Doctor", email="right@example.org", owner=owner
    )

    referral.provider = right
    referral_edit(referral=referral, fields=["provider"], actor=None)
    Letter.objects.filter(pk=thank_you.pk).update(due_on=timezone.localdate())
    delivery.letter_deliver(letter_id=thank_you.pk)

    [sent] = mail.outbox[-1:]
    assert sent.to == ["right@example.org"]
    assert "Dear Right Doctor" in sent.body and "Wrong" not in sent.body
    thank_you.refresh_from_db()
    assert (thank_you.provider, thank_you.status) == (right, Letter.Status.SENT)
    task.refresh_from_db()
    assert (task.provider, task.assignee) == (right, owner)
    assert task.title.startswith("Thank Right Doctor")
    # The letters that already left stay where they went, as history.
    ack.refresh_from_db()
    assert (ack.provider.first_name, ack.recipient, ack.status) == (
        "Wrong",
        "wrong@example.org",
        Letter.Status.SENT,
    )


@pytest.mark.parametrize("then", [Status.CANCELLED, Status.NO_SHOW])
def test_a_scheduled_notice_still_waiting_is_withdrawn_when_the_appointment_falls_through(then):
    # The practice lets a day pass before telling the office of an appointment.
    LetterTemplate.objects.create(
        kind=K.SCHEDULED,
        subject="Scheduled",
        body="On {{ appointment_date }}",
        delay_business_days=1,
    )
    referral = _walk(_referral(email="wiebe@example.org"), Status.ACCEPTED)
    referral = referral_transition(
        referral=referral,
        to_status=Status.SCHEDULED,
        actor=None,
        appointment_at=timezone.now() + timedelta(minutes=30),
    )
    _task, notice = loop.loop_message_prepare(referral_id=referral.pk, status=Status.SCHEDULED)
    assert notice.status == Letter.Status.PENDING and not notice.is_due

    if then == Status.CANCELLED:
        referral_transition(
            referral=referral, to_status=then, actor=None, cancel_reason="Patient moved away."
        )
    else:
        _missed(referral)

    notice.refresh_from_db()
    assert notice.status == Letter.Status.CANCELLED
    assert "no longer" in notice.last_error
    Letter.objects.filter(pk=notice.pk).update(due_on=timezone.localdate())
    assert delivery.letter_deliver(letter_id=notice.pk) is None
    assert mail.outbox == []


@pytest.mark.parametrize("then", [Status.CANCELLED, Status.NO_SHOW, Status.SEEN])
def test_a_scheduled_notice_written_after_the_appointment_fell_through_is_not_written(then):
    # The notice's enqueue was lost (the broker was down) or waited behind a backlog, and
    # the referral moved on before it was written: the sweep or the late worker must not
    # tell the office of an appointment that no longer stands (a waiting notice would have
    # been withdrawn by the move).
    referral = _walk(_referral(email="wiebe@example.org"), Status.ACCEPTED)
    referral = referral_transition(
        referral=referral,
        to_status=Status.SCHEDULED,
        actor=None,
        appointment_at=timezone.now() + timedelta(minutes=30),
    )
    if then == Status.CANCELLED:
        referral_transition(
            referral=referral, to_status=then, actor=None, cancel_reason="Patient moved away."
        )
    elif then == Status.NO_SHOW:
        _missed(referral)
    else:
        referral_transition(referral=referral, to_status=then, actor=None)

    assert (referral.pk, Status.SCHEDULED) not in loop.referral_events_missing_messages()
    assert loop.loop_message_prepare(referral_id=referral.pk, status=Status.SCHEDULED) == (
        None,
        None,
    )
    assert not Letter.objects.filter(referral=referral, kind=K.SCHEDULED).exists()


def test_a_scheduled_notice_for_a_referral_rebooked_after_a_missed_visit_is_written():
    referral = _missed(
        _walk(_referral(email="wiebe@example.org"), Status.ACCEPTED, Status.SCHEDULED)
    )
    referral = referral_transition(
        referral=referral,
        to_status=Status.SCHEDULED,
        actor=None,
        appointment_at=timezone.now() + timedelta(days=5),
    )
    assert (referral.pk, Status.SCHEDULED) in loop.referral_events_missing_messages()
    _task, notice = loop.loop_message_prepare(referral_id=referral.pk, status=Status.SCHEDULED)
    assert (notice.sequence, notice.status) == (2, Letter.Status.PENDING)


def test_a_referral_corrected_to_one_we_sent_out_withdraws_its_waiting_letters(
    client_for, coordinator
):
    """Logged as received by mistake: the patient is one we sent to this specialist. The
    letters still waiting (the acknowledgment, a thank-you "for referring" the patient not
    yet due) would thank the specialist for a referral they never made, and the thank-you
    task would ask the owner to call them for it; all are withdrawn."""
    from core.factories import UserFactory

    owner = UserFactory(first_name="Jamie", last_name="Carter")
    referral = _walk(
        _referral(email="wiebe@example.org", in_network=True, owner=owner),
        Status.ACCEPTED,
        Status.SCHEDULED,
        Status.SEEN,
    )
    _, ack = loop.loop_message_prepare(referral_id=referral.pk, status=Status.RECEIVED)
    task, thank_you = loop.loop_message_prepare(referral_id=referral.pk, status=Status.SEEN)
    assert ack.status == thank_you.status == Letter.Status.PENDING
    assert task.status == Task.Status.OPEN
    referral.refresh_from_db()
    data = {
        "direction": "outbound",
        "provider": referral.provider_id,
        "channel": referral.channel,
        "urgency": referral.urgency,
        "received_at": f"{timezone.localtime(referral.received_at):%Y-%m-%dT%H:%M}",
        "patient_first_name": referral.patient_first_name,
        "patient_last_name": referral.patient_last_name,
        "patient_dob": referral.patient_dob.isoformat(),
        "reason": referral.reason,
        "version": referral.updated_at.isoformat(),
    }
    response = client_for(coordinator).post(reverse("referrals:update", args=[referral.pk]), data)
    assert response.status_code == 302
    referral.refresh_from_db()
    assert referral.direction == Referral.Direction.OUTBOUND
    for letter in (ack, thank_you):
        letter.refresh_from_db()
        assert letter.status == Letter.Status.CANCELLED
        delivery.letter_deliver(letter_id=letter.pk)
    assert mail.outbox == []
    task.refresh_from_db()
    assert task.status == Task.Status.CANCELLED


def test_a_patient_name_corrected_before_the_letters_leave_is_corrected_in_them():
    """A typo in the patient's name fixed on the referral: the letters still waiting, and
    the thank-you task, name the patient by the corrected initials, not the mistyped ones
    (the office would look for a patient it never sent)."""
    from core.factories import UserFactory
    from referrals.services.edit import referral_edit

    owner = UserFactory(first_name="Jamie", last_name="Carter")
    referral = _walk(
        _referral(email="wiebe@example.org", owner=owner),
        Status.ACCEPTED,
        Status.SCHEDULED,
        Status.SEEN,
    )
    _, ack = loop.loop_message_prepare(referral_id=referral.pk, status=Status.RECEIVED)
    task, thank_you = loop.loop_message_prepare(referral_id=referral.pk, status=Status.SEEN)
    assert "R.O." in ack.subject and "R.O." in thank_you.body and "R.O." in task.title

    referral.patient_last_name = "Nelson"
    referral_edit(referral=referral, fields=["patient_last_name"], actor=None)
    delivery.letter_deliver(letter_id=ack.pk)

    [sent] = mail.outbox
    assert "R.N." in sent.subject and "R.N." in sent.body
    assert "R.O." not in sent.subject and "R.O." not in sent.body
    thank_you.refresh_from_db()
    assert "R.N." in thank_you.subject and "R.O." not in thank_you.body
    task.refresh_from_db()
    assert task.title.endswith("for referring R.N.")


def test_the_sweep_acknowledges_a_referral_logged_today_that_was_received_weeks_ago():
    # Logged three weeks ago: long settled, not mailed now (by a newly added kind, say).
    settled = _referral()
    weeks_ago = timezone.now() - timedelta(days=21)
    Referral.objects.filter(pk=settled.pk).update(received_at=weeks_ago, created_at=weeks_ago)
    settled.events.update(at=weeks_ago)
    # A fax found in the tray after a holiday, typed in today while the broker was down:
    # its history says it came in three weeks ago, but its acknowledgment is today's work.
    late = referral_log(
        referral=ReferralFactory.build(provider=ProviderFactory(), received_at=weeks_ago),
        actor=None,
    )

    assert loop.referral_events_missing_messages() == [(late.pk, Status.RECEIVED)]


def test_an_acknowledgment_being_written_as_the_partner_is_corrected_goes_to_the_right_one(
    monkeypatch,
):
    from referrals.services.edit import referral_edit

    referral = _referral(first_name="Wrong", last_name="Doctor", email="wrong@example.org")
    right = ProviderFactory(first_name="Right", last_name="Doctor", email="right@example.org")
    real_template_for = loop.letter_template_for
    corrected = []

    def template_for(kind):
        # The worker has read the referral; the coordinator corrects its partner now.
        if not corrected:
            fixed = Referral.objects.get(pk=referral.pk)
            fixed.provider = right
            corrected.append(referral_edit(referral=fixed, fields=["provider"], actor=None))
        return real_template_for(kind)

    monkeypatch.setattr(loop, "letter_template_for", template_for)
    loop.loop_message_prepare(referral_id=referral.pk, status=Status.RECEIVED)
    monkeypatch.undo()
    for referral_id, status in loop.referral_events_missing_messages():  # the sweep
        loop.loop_message_prepare(referral_id=referral_id, status=status)

    [ack] = Letter.objects.filter(referral=referral, kind=K.ACKNOWLEDGMENT)
    assert (ack.provider, ack.recipient) == (right, "right@example.org")
    assert "Right Doctor" in ack.body and "Wrong" not in ack.body
