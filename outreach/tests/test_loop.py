"""Closing the loop: the thank-you task and letter, and their delivery."""

from datetime import datetime, timedelta
from smtplib import SMTPServerDisconnected
from unittest import mock
from zoneinfo import ZoneInfo

import pytest
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from core.factories import UserFactory
from core.roles import Role
from outreach.models import Letter, LetterTemplate, Task
from outreach.services import delivery, letters, loop
from outreach.tasks import sweep_loop_work
from partners.factories import ProviderFactory
from referrals.factories import ReferralFactory
from referrals.models import Status
from referrals.services.workflow import referral_log, referral_transition

pytestmark = pytest.mark.django_db

NEW_YORK = ZoneInfo("America/New_York")


def _seen_referral(*, seen_at=None, **provider_kwargs):
    provider = ProviderFactory(**provider_kwargs)
    # Seen at its appointment, which was booked after the referral came in.
    appointment = seen_at or timezone.now()
    referral = referral_log(
        referral=ReferralFactory.build(
            provider=provider,
            patient_first_name="Ruth",
            patient_last_name="Olsen",
            received_at=appointment - timedelta(days=7),
        ),
        actor=None,
    )
    for status in (Status.ACCEPTED, Status.SCHEDULED):
        referral = referral_transition(
            referral=referral, to_status=status, actor=None, appointment_at=appointment
        )
    return referral_transition(referral=referral, to_status=Status.SEEN, actor=None, at=seen_at)


def test_the_thank_you_goes_to_the_owner_with_initials_only_due_in_business_days():
    owner = UserFactory(first_name="Jamie", last_name="Carter")
    # Seen on the Wednesday before Thanksgiving: two business days later is Monday.
    seen = datetime(2026, 11, 25, 10, 0, tzinfo=NEW_YORK)
    referral = _seen_referral(
        seen_at=seen, owner=owner, first_name="David", last_name="Wiebe", credential="MD"
    )

    task, letter = loop.thank_you_prepare(referral_id=referral.pk)

    assert task.assignee == owner
    assert letter.due_on.isoformat() == "2026-11-30"
    # The task is due then too, unless that day has passed (recorded late): then today.
    assert task.due_on == max(letter.due_on, timezone.localdate())
    assert letter.subject == "Thank you for referring R.O."
    assert "Dear David Wiebe, MD" in letter.body
    assert "R.O." in letter.body and "Olsen" not in letter.body and "Ruth" not in letter.body
    assert "November 25, 2026" in letter.body
    assert "Jamie Carter" in letter.body


def test_a_visit_recorded_days_late_gets_a_thank_you_task_due_today_not_overdue():
    seen = timezone.now() - timedelta(days=20)
    referral = _seen_referral(seen_at=seen)
    task, letter = loop.thank_you_prepare(referral_id=referral.pk)
    assert task.due_on == timezone.localdate()
    assert letter.due_on < timezone.localdate()  # the letter, late already, goes at once


def test_preparing_twice_creates_nothing_new():
    referral = _seen_referral()
    first = loop.thank_you_prepare(referral_id=referral.pk)
    second = loop.thank_you_prepare(referral_id=referral.pk)
    assert first == second
    assert Task.objects.filter(referral=referral).count() == 1
    assert Letter.objects.filter(referral=referral).count() == 1


def test_a_referral_not_yet_seen_gets_no_thank_you():
    provider = ProviderFactory()
    referral = referral_log(referral=ReferralFactory.build(provider=provider), actor=None)
    assert loop.thank_you_prepare(referral_id=referral.pk) == (None, None)
    assert not Task.objects.exists()


def test_an_edited_template_is_used_for_new_letters():
    LetterTemplate.objects.create(
        kind=LetterTemplate.Kind.THANK_YOU,
        subject="Grateful, {{ provider_last_name }}",
        body="Patient {{ patient_initials }} was seen.",
        delay_business_days=5,
    )
    referral = _seen_referral(last_name="Pilcher")
    _, letter = loop.thank_you_prepare(referral_id=referral.pk)
    assert letter.subject == "Grateful, Pilcher"
    assert letter.body == "Patient R.O. was seen."


def test_a_letter_due_later_is_dated_the_day_it_goes_out_not_the_day_it_was_written():
    """{{ today }} in a letter due days after it is written is the day it goes out: the
    date its PDF carries, not the day the visit was recorded."""
    LetterTemplate.objects.create(
        kind=LetterTemplate.Kind.THANK_YOU,
        subject="Thank you",
        body="{{ today }}\n\nPatient {{ patient_initials }} was seen.",
        delay_business_days=5,
    )
    referral = _seen_referral()
    _, letter = loop.thank_you_prepare(referral_id=referral.pk)

    assert letter.due_on > timezone.localdate()
    assert letter.body.startswith(f"{letter.due_on:%B %-d, %Y}\n")
    assert f"{timezone.localdate():%B %-d, %Y}" not in letter.body


def _due_letter(**provider_kwargs):
    referral = _seen_referral(**provider_kwargs)
    _, letter = loop.thank_you_prepare(referral_id=referral.pk)
    Letter.objects.filter(pk=letter.pk).update(due_on=timezone.localdate())
    return letter


def test_a_due_letter_is_emailed_to_the_partner_and_marked_sent():
    letter = _due_letter(email="wiebe@example.org")
    delivery.letter_deliver(letter_id=letter.pk)
    letter.refresh_from_db()
    assert letter.status == Letter.Status.SENT
    assert letter.recipient == "wiebe@example.org"
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["wiebe@example.org"]
    assert mail.outbox[0].subject == letter.subject


def test_a_letter_is_delivered_once_however_often_it_is_handed_out():
    letter = _due_letter(email="wiebe@example.org")
    delivery.letter_deliver(letter_id=letter.pk)
    delivery.letter_deliver(letter_id=letter.pk)
    assert len(mail.outbox) == 1


def test_a_subject_with_a_line_break_is_emailed_on_one_line(client_for):
    """A line break in a template's subject (a tampered post: the subject box holds one
    line) reaches no email header: the mail library refused such a letter at every try,
    which left it 'sending' for ever, re-driven by each sweep and never marked failed."""
    template = letters.letter_template_for(LetterTemplate.Kind.THANK_YOU)
    manager = UserFactory(role=Role.MANAGER)
    saved = client_for(manager).post(
        reverse("outreach:template_update", args=[template.pk]),
        {
            "subject": "Thank you\r\nBcc: someone@example.org",
            "body": "Dear {{ provider_name }}",
            "delay_business_days": 0,
        },
    )
    assert saved.status_code == 302
    letter = _due_letter(email="wiebe@example.org")

    delivery.letter_deliver(letter_id=letter.pk)

    letter.refresh_from_db()
    assert letter.status == Letter.Status.SENT
    (sent,) = mail.outbox
    assert sent.subject == "Thank you Bcc: someone@example.org"
    assert sent.message()["Bcc"] is None


def test_a_partner_without_email_gets_the_letter_in_the_print_queue():
    letter = _due_letter(email="", organization__email="")
    delivery.letter_deliver(letter_id=letter.pk)
    letter.refresh_from_db()
    assert letter.status == Letter.Status.PRINT_QUEUE
    assert mail.outbox == []


def test_a_partner_who_opts_out_before_a_letter_is_due_is_not_sent_it():
    referral = _seen_referral(email="wiebe@example.org")
    _, letter = loop.thank_you_prepare(referral_id=referral.pk)
    assert (letter.channel, letter.status) == (Letter.Channel.EMAIL, Letter.Status.PENDING)
    referral.provider.letters_opt_out = True
    referral.provider.save()
    Letter.objects.filter(pk=letter.pk).update(due_on=timezone.localdate())

    delivery.letter_deliver(letter_id=letter.pk)

    letter.refresh_from_db()
    assert mail.outbox == []
    assert (letter.status, letter.channel, letter.recipient) == (Letter.Status.SKIPPED, "", "")
    assert letter.sent_at is None
    assert delivery.letters_to_deliver() == []


def test_a_letter_not_yet_due_is_not_sent():
    referral = _seen_referral(email="wiebe@example.org")
    _, letter = loop.thank_you_prepare(referral_id=referral.pk)
    assert letter.due_on > timezone.localdate()
    assert delivery.letter_deliver(letter_id=letter.pk) is None
    assert mail.outbox == []


def test_an_smtp_failure_is_retried_then_shown_as_failed(settings):
    # No wait between attempts (the backoff has its own test): this is about the last one.
    settings.LETTER_RETRY_BACKOFF_SECONDS = 0
    letter = _due_letter(email="wiebe@example.org")
    with mock.patch(
        "django.core.mail.EmailMultiAlternatives.send", side_effect=SMTPServerDisconnected()
    ):
        with pytest.raises(delivery.TransientDeliveryError):
            delivery.letter_deliver(letter_id=letter.pk)
        letter.refresh_from_db()
        assert (letter.status, letter.attempts) == (Letter.Status.PENDING, 1)
        for _ in range(delivery.MAX_DELIVERY_ATTEMPTS - 2):
            with pytest.raises(delivery.TransientDeliveryError):
                delivery.letter_deliver(letter_id=letter.pk)
        delivery.letter_deliver(letter_id=letter.pk)
    letter.refresh_from_db()
    assert letter.status == Letter.Status.FAILED
    assert letter.attempts == delivery.MAX_DELIVERY_ATTEMPTS
    assert letter.last_error.startswith("SMTPServerDisconnected")


def test_a_letter_that_cannot_be_sent_for_a_fault_of_its_own_fails_and_its_batch_goes_on(
    caplog,
):
    # A bug, not the network: sending this letter again would fail the same way. Before,
    # the error left it and the letters after it in its batch claimed ("sending") for the
    # sweep to hand out together again, and fail together again, for ever.
    faulty = _due_letter(email="wiebe@example.org")
    fine = _due_letter(email="penner@example.org")
    real_send = delivery._send

    def send(letter, *args):
        if letter.pk == faulty.pk:
            raise ValueError(f"cannot render the letter about {letter.referral.patient_last_name}")
        return real_send(letter, *args)

    with mock.patch("outreach.services.delivery._send", side_effect=send):
        delivery.letters_deliver(letter_ids=[faulty.pk, fine.pk])
    faulty.refresh_from_db()
    fine.refresh_from_db()
    assert fine.status == Letter.Status.SENT
    assert [message.to for message in mail.outbox] == [["penner@example.org"]]
    assert (faulty.status, faulty.attempts) == (Letter.Status.FAILED, 1)
    assert faulty.last_error.startswith("ValueError")
    # Said, with where it happened, for whoever mends it; not what it said of the patient.
    assert any(
        record.levelname == "ERROR" and str(faulty.pk) in record.getMessage()
        for record in caplog.records
    )
    assert "Olsen" not in caplog.text and "Olsen" not in faulty.last_error
    # The sweep does not hand it out again.
    assert faulty.pk not in delivery.letters_to_deliver()


def test_the_sweep_prepares_lost_thank_yous_and_queues_due_letters():
    referral = _seen_referral()
    assert not Letter.objects.exists()
    with mock.patch("outreach.tasks.deliver_letters.delay") as deliver:
        sweep_loop_work()
        letter = Letter.objects.get(referral=referral, kind=LetterTemplate.Kind.THANK_YOU)
        queued = {pk for call in deliver.call_args_list for pk in call.args[0]}
        assert letter.pk not in queued  # prepared, but not due yet
        deliver.reset_mock()
        Letter.objects.filter(pk=letter.pk).update(due_on=timezone.localdate())
        Letter.objects.exclude(pk=letter.pk).update(status=Letter.Status.SENT)
        sweep_loop_work()
    deliver.assert_called_once_with([letter.pk])


def test_a_letter_abandoned_by_a_dead_worker_is_handed_out_again():
    letter = _due_letter()
    stale = timezone.now() - delivery.STALE_CLAIM - timezone.timedelta(seconds=1)
    Letter.objects.filter(pk=letter.pk).update(status=Letter.Status.SENDING, claimed_at=stale)
    assert delivery.letters_to_deliver() == [letter.pk]


@pytest.mark.parametrize(
    ("kind", "named"),
    [
        (LetterTemplate.Kind.OUTCOME, "Consult report cover letter"),
        (LetterTemplate.Kind.THANK_YOU, "Thank-you letter"),
    ],
)
def test_a_referral_s_letters_are_named_once_as_letters(client_for, coordinator, kind, named):
    referral = _seen_referral()
    Letter.objects.create(
        kind=kind,
        referral=referral,
        provider=referral.provider,
        subject="About your patient",
        body="Dear colleague,",
        due_on=timezone.localdate(),
    )
    page = client_for(coordinator).get(referral.get_absolute_url()).content.decode()
    assert f">{named}</a>" in page
    assert "letter letter" not in page
    assert str(Letter.objects.get()) == f"{named} to {referral.provider}"


def test_a_partner_with_a_long_name_gets_a_thank_you_task_and_does_not_stop_the_sweep():
    # Names and credential at their longest: the task's title must still fit its column,
    # or the sweep raises on this referral and hands out no due letter for anyone.
    referral = _seen_referral(first_name="F" * 100, last_name="L" * 100, credential="C" * 50)
    due = _due_letter()

    with mock.patch("outreach.tasks.deliver_letters.delay") as deliver:
        sweep_loop_work()

    task = Task.objects.get(referral=referral, kind=Task.Kind.THANK_YOU)
    assert len(task.title) <= 200 and task.title.startswith("Thank F")
    assert Letter.objects.filter(referral=referral, kind=LetterTemplate.Kind.THANK_YOU).exists()
    assert due.pk in {pk for call in deliver.call_args_list for pk in call.args[0]}


def test_a_failed_letter_waits_out_its_backoff_before_the_sweep_hands_it_out_again():
    letter = _due_letter(email="wiebe@example.org")
    with (
        mock.patch(
            "django.core.mail.EmailMultiAlternatives.send", side_effect=SMTPServerDisconnected()
        ),
        pytest.raises(delivery.TransientDeliveryError),
    ):
        delivery.letter_deliver(letter_id=letter.pk)
    letter.refresh_from_db()
    assert (letter.status, letter.attempts) == (Letter.Status.PENDING, 1)

    # The sweep runs every minute: were a failed letter due again at once, an SMTP outage
    # of a few minutes would use up every attempt and mark it failed for good.
    assert letter.pk not in delivery.letters_to_deliver()
    assert delivery.letter_deliver(letter_id=letter.pk) is None

    waited = timezone.now() - delivery.retry_delay(1) - timedelta(seconds=1)
    Letter.objects.filter(pk=letter.pk).update(claimed_at=waited)
    assert letter.pk in delivery.letters_to_deliver()
    assert delivery.letter_deliver(letter_id=letter.pk).status == Letter.Status.SENT


def test_each_failed_attempt_waits_longer_up_to_a_ceiling():
    delays = [delivery.retry_delay(attempts) for attempts in range(1, 10)]
    assert delays == sorted(delays)
    assert delays[1] == 2 * delays[0]
    assert delays[-1] == timedelta(seconds=900)


def test_a_letter_of_a_copy_left_mid_send_by_a_dead_worker_is_withdrawn_not_sent():
    """Marking withdraws the letters waiting; one a worker was sending when it died is
    handed out again later, and by then it is about a copy the office hears nothing of."""
    from referrals.services.duplicates import referral_mark_duplicate

    provider = ProviderFactory(email="office@example.org", preferred_channel="email")
    original = referral_log(referral=ReferralFactory.build(provider=provider), actor=None)
    copy = referral_log(
        referral=ReferralFactory.build(
            provider=provider,
            patient_last_name=original.patient_last_name,
            patient_dob=original.patient_dob,
        ),
        actor=None,
    )
    _, acknowledgment = loop.loop_message_prepare(referral_id=copy.pk, status=Status.RECEIVED)
    assert acknowledgment is not None
    stale = timezone.now() - delivery.STALE_CLAIM - timezone.timedelta(seconds=1)
    Letter.objects.filter(pk=acknowledgment.pk).update(
        status=Letter.Status.SENDING, claimed_at=stale, due_on=timezone.localdate()
    )
    referral_mark_duplicate(referral=copy, original=original, actor=None)
    acknowledgment.refresh_from_db()
    assert acknowledgment.status == Letter.Status.SENDING  # not the mark's to withdraw

    delivery.letters_deliver(letter_ids=delivery.letters_to_deliver())

    acknowledgment.refresh_from_db()
    assert acknowledgment.status == Letter.Status.CANCELLED
    assert acknowledgment.last_error == f"Withdrawn: the referral was a duplicate of #{original.pk}"
    assert not [m for m in mail.outbox if copy.patient_initials in m.subject]


def test_one_referral_whose_message_cannot_be_prepared_does_not_stop_the_sweep(caplog):
    # Any fault of one referral's (a bad value, a bug) would otherwise raise out of the
    # sweep every minute for a week, and no due letter of anyone's would be handed out.
    broken = _seen_referral(last_name="Broken")
    fine = _seen_referral(last_name="Fine")
    due = _due_letter()
    real_prepare = loop.loop_message_prepare

    def prepare(*, referral_id, status):
        if referral_id == broken.pk:
            raise ValueError(f"cannot write to {broken.patient_last_name}")
        return real_prepare(referral_id=referral_id, status=status)

    with (
        mock.patch("outreach.services.loop.loop_message_prepare", side_effect=prepare),
        mock.patch("outreach.tasks.deliver_letters.delay") as deliver,
    ):
        sweep_loop_work()

    assert Letter.objects.filter(referral=fine, kind=LetterTemplate.Kind.THANK_YOU).exists()
    assert due.pk in {pk for call in deliver.call_args_list for pk in call.args[0]}
    # Said, for whoever mends it, by the referral's number, not its patient.
    assert any(
        record.levelname == "ERROR" and str(broken.pk) in record.getMessage()
        for record in caplog.records
    )
    assert "Olsen" not in caplog.text


def test_a_backlog_is_delivered_oldest_due_first(monkeypatch):
    """With more due letters than one sweep hands out (a mail outage's backlog), the
    oldest due go first: newest first, as letters are listed, left the oldest waiting
    for as long as new ones kept coming."""
    provider = ProviderFactory(email="wiebe@example.org")
    today = timezone.localdate()

    def due(days_ago):
        return Letter.objects.create(
            kind=LetterTemplate.Kind.THANK_YOU,
            provider=provider,
            subject="Thank you",
            body="Thank you",
            due_on=today - timedelta(days=days_ago),
            channel=Letter.Channel.EMAIL,
            recipient=provider.email,
        )

    oldest, older = due(3), due(2)
    due(0), due(1)
    monkeypatch.setattr(delivery, "DELIVERY_SCAN", 2)

    assert delivery.letters_to_deliver() == [oldest.pk, older.pk]
