"""A letter about a referral names its patient (initials, the dates of their care, why it
was declined or held): opening its page or downloading its PDF is a read of that patient's
data, written to the audit trail like the referral's own page. Letters about no patient
(newsletters, invitations) write nothing, and neither does a HEAD request, which shows
nobody anything."""

from __future__ import annotations

import uuid

import pytest
from django.urls import reverse
from django.utils import timezone

from audit.models import PatientDataAccess
from outreach.models import Letter, LetterTemplate
from partners.factories import ProviderFactory
from partners.models import Provider
from referrals.factories import ReferralFactory

pytestmark = pytest.mark.django_db

Action = PatientDataAccess.Action
K = LetterTemplate.Kind


def _letter(*, provider=None, referral=None, kind=K.THANK_YOU, **kwargs) -> Letter:
    provider = provider or (referral.provider if referral else ProviderFactory())
    return Letter.objects.create(
        kind=kind,
        provider=provider,
        referral=referral,
        subject=kwargs.pop("subject", "Thank you for referring R.O."),
        body=kwargs.pop("body", "Dear Dr. Wiebe,\n\nThank you for referring R.O."),
        due_on=timezone.localdate(),
        status=kwargs.pop("status", Letter.Status.PRINT_QUEUE),
        channel=kwargs.pop("channel", Letter.Channel.MAIL),
        message_id=f"<{uuid.uuid4().hex}@test>",
        **kwargs,
    )


def _trail():
    return list(
        PatientDataAccess.objects.order_by("pk").values_list(
            "action", "referral_id", "user_id", "fields", "ip_address"
        )
    )


@pytest.mark.parametrize(
    ("url_name", "action"),
    [("outreach:letter_detail", Action.VIEW), ("outreach:letter_pdf", Action.DOWNLOAD)],
)
def test_reading_a_referrals_letter_is_recorded_with_who_what_and_from_where(
    client_for, coordinator, url_name, action
):
    letter = _letter(referral=ReferralFactory())
    response = client_for(coordinator).get(
        reverse(url_name, args=[letter.pk]), REMOTE_ADDR="10.1.2.3"
    )
    assert response.status_code == 200
    assert _trail() == [(action, letter.referral_id, coordinator.pk, ["letter"], "10.1.2.3")]


def test_the_audit_page_names_a_letter_read_as_one(client_for, coordinator, manager):
    letter = _letter(referral=ReferralFactory())
    client_for(coordinator).get(reverse("outreach:letter_pdf", args=[letter.pk]))
    page = client_for(manager).get(reverse("audit:list"), {"action": "download"})
    row = page.content.decode().split(f"#{letter.referral_id}<")[1].split("</tr>")[0]
    assert "letter" in row
    # A letter is a download too, not an "attachment".
    assert "Downloaded attachment" not in page.content.decode()


def test_a_liaison_reading_a_letter_to_their_partner_is_recorded_too(client_for, liaison):
    """The letter reads the same whoever opens it (initials and dates, never the full name,
    for every role), so every read of it is recorded, the liaison's included."""
    referral = ReferralFactory(provider=ProviderFactory(owner=liaison))
    letter = _letter(referral=referral)
    client = client_for(liaison)
    page = client.get(letter.get_absolute_url())
    assert page.status_code == 200
    assert referral.patient_last_name not in page.content.decode()
    client.get(reverse("outreach:letter_pdf", args=[letter.pk]))
    assert [(row[0], row[1], row[2]) for row in _trail()] == [
        (Action.VIEW, referral.pk, liaison.pk),
        (Action.DOWNLOAD, referral.pk, liaison.pk),
    ]


def test_a_letter_someone_may_not_open_writes_no_row(client_for, other_liaison, liaison):
    letter = _letter(referral=ReferralFactory(provider=ProviderFactory(owner=liaison)))
    client = client_for(other_liaison)
    assert client.get(letter.get_absolute_url()).status_code == 404
    assert client.get(reverse("outreach:letter_pdf", args=[letter.pk])).status_code == 404
    assert not PatientDataAccess.objects.exists()


@pytest.mark.parametrize("kind", [K.NEWSLETTER, K.EVENT_REMINDER, K.REKINDLE])
def test_a_letter_about_no_patient_writes_nothing(client_for, coordinator, kind):
    letter = _letter(kind=kind, subject="News from the practice", body="Dear Dr. Wiebe")
    client = client_for(coordinator)
    assert client.get(letter.get_absolute_url()).status_code == 200
    assert client.get(reverse("outreach:letter_pdf", args=[letter.pk])).status_code == 200
    assert not PatientDataAccess.objects.exists()


def test_a_report_summary_names_every_patient_it_lists(client_for, coordinator):
    """A summary has no referral of its own, but its body lists the initials and dates of
    each cover letter it was sent instead of: a read of each of those patients."""
    partner = ProviderFactory()
    summary = _letter(
        provider=partner,
        kind=K.REPORT_SUMMARY,
        period="2026-W10",
        subject="Consult reports for the week of March 2, 2026",
        body="- R.O., seen March 3, 2026\n- K.M., seen March 4, 2026",
        status=Letter.Status.SENT,
    )
    listed = [ReferralFactory(provider=partner) for _ in range(2)]
    for referral in listed:
        _letter(
            referral=referral,
            kind=K.OUTCOME,
            status=Letter.Status.IN_SUMMARY,
            period="2026-W10",
            summary=summary,
        )
    # Held for the next summary, not in this one.
    _letter(referral=ReferralFactory(provider=partner), kind=K.OUTCOME, period="2026-W11")
    client_for(coordinator).get(summary.get_absolute_url())
    assert sorted(row[1] for row in _trail()) == sorted(referral.pk for referral in listed)
    assert {row[0] for row in _trail()} == {Action.VIEW}


@pytest.mark.parametrize(
    "url",
    [
        lambda letter: letter.get_absolute_url(),
        lambda letter: reverse("outreach:letter_pdf", args=[letter.pk]),
        lambda letter: letter.referral.get_absolute_url(),
    ],
    ids=["letter page", "letter PDF", "referral page"],
)
def test_a_head_request_reads_nothing_and_writes_no_row(client_for, coordinator, url):
    """HEAD runs the page's view as GET does, but its body goes to nobody (Django's server
    and gunicorn drop it): no patient data was read, so nothing is recorded. The GET that
    follows is."""
    letter = _letter(referral=ReferralFactory())
    client = client_for(coordinator)
    head = client.head(url(letter))
    assert head.status_code == 200
    assert head.content == b""
    assert not PatientDataAccess.objects.exists()
    assert client.get(url(letter)).status_code == 200
    assert [row[1] for row in _trail()] == [letter.referral_id]


def test_the_print_queue_records_the_patients_its_letters_name(client_for, coordinator):
    queued = _letter(referral=ReferralFactory())
    failed = _letter(referral=ReferralFactory(), status=Letter.Status.FAILED)
    _letter(kind=K.NEWSLETTER, subject="News")  # about no patient
    sent = _letter(referral=ReferralFactory(), status=Letter.Status.SENT)  # not listed
    page = client_for(coordinator).get(reverse("outreach:print_queue")).content.decode()
    assert queued.subject in page and f'id="letter-{queued.pk}"' in page
    assert reverse("outreach:letter_failed", args=[failed.pk]) in page
    listed = PatientDataAccess.objects.filter(action=Action.LIST, user=coordinator)
    assert sorted(listed.values_list("referral_id", flat=True)) == sorted(
        [queued.referral_id, failed.referral_id]
    )
    assert sent.referral_id not in set(listed.values_list("referral_id", flat=True))


def test_paging_the_print_queue_with_htmx_records_only_the_letters_it_redraws(
    client_for, coordinator
):
    queued = _letter(referral=ReferralFactory())
    _letter(referral=ReferralFactory(), status=Letter.Status.FAILED)  # on the whole page only
    response = client_for(coordinator).get(reverse("outreach:print_queue"), HTTP_HX_REQUEST="true")
    assert 'data-testid="failed-letters"' not in response.content.decode()
    listed = PatientDataAccess.objects.filter(action=Action.LIST)
    assert list(listed.values_list("referral_id", flat=True)) == [queued.referral_id]


def test_the_print_queue_audits_in_the_same_queries_however_many_letters_it_lists(
    client_for, coordinator, django_assert_num_queries
):
    client = client_for(coordinator)
    url = reverse("outreach:print_queue")
    _letter(referral=ReferralFactory())
    _letter(referral=ReferralFactory(), status=Letter.Status.FAILED)
    client.get(url)  # warm the session and permission caches
    # Session, user, the queue's count and page, the failed letters, and one INSERT of
    # the audit rows for all of them.
    with django_assert_num_queries(7):
        client.get(url)
    for _ in range(30):
        _letter(referral=ReferralFactory())
    for _ in range(5):
        _letter(referral=ReferralFactory(), status=Letter.Status.FAILED)
    before = PatientDataAccess.objects.count()
    with django_assert_num_queries(7):
        response = client.get(url)
    # A page of 25 queued letters and the 6 failed ones, one row each.
    assert PatientDataAccess.objects.count() - before == 25 + 6
    assert response.content.decode().count("Mark printed") == 25


def test_the_letter_admin_records_the_letter_read(client_for, administrator):
    letter = _letter(referral=ReferralFactory())
    client = client_for(administrator)
    response = client.get(reverse("admin:outreach_letter_change", args=[letter.pk]))
    assert response.status_code == 200
    assert [(row[0], row[1], row[3]) for row in _trail()] == [
        (Action.VIEW, letter.referral_id, ["letter"])
    ]


def test_partner_360_records_the_patients_named_in_its_letters_subjects(client_for, manager):
    partner = ProviderFactory()
    # The letter's referral is not on the timeline itself (older than its latest entries,
    # say), but the letter's subject still names its patient.
    letter = _letter(referral=ReferralFactory(), provider=partner)
    page = client_for(manager).get(partner.get_absolute_url()).content.decode()
    assert letter.subject in page
    listed = PatientDataAccess.objects.filter(action=Action.LIST, user=manager)
    assert list(listed.values_list("referral_id", flat=True)) == [letter.referral_id]


@pytest.mark.parametrize(
    ("url_name", "opted_out"),
    [("outreach:letter_printed", False), ("outreach:letter_withdraw", True)],
)
def test_the_queue_row_htmx_redraws_records_the_patient_it_names_as_the_page_does(
    client_for, coordinator, django_assert_num_queries, url_name, opted_out
):
    letter = _letter(referral=ReferralFactory())
    # Only a letter whose partner has opted out since it was queued can be withdrawn.
    Provider.objects.filter(pk=letter.provider_id).update(letters_opt_out=opted_out)
    client = client_for(coordinator)
    client.get(reverse("outreach:print_queue"))  # warm the session and permission caches
    before = PatientDataAccess.objects.count()
    # Session, user, permissions, the letter, a savepoint, its locked row with its partner
    # and office, the save, the savepoint's release, and one INSERT of the audit row.
    with django_assert_num_queries(9) as captured:
        response = client.post(
            reverse(url_name, args=[letter.pk]), HTTP_HX_REQUEST="true", REMOTE_ADDR="10.1.2.3"
        )
    assert response.status_code == 200
    assert letter.subject in response.content.decode()
    inserts = [q for q in captured.captured_queries if "audit_patientdataaccess" in q["sql"]]
    assert len(inserts) == 1
    rows = _trail()[before:]
    assert rows == [
        (
            Action.LIST,
            letter.referral_id,
            coordinator.pk,
            ["patient_first_name", "patient_last_name"],
            "10.1.2.3",
        )
    ]


def test_a_queue_row_redrawn_for_a_letter_about_no_patient_records_nothing(client_for, coordinator):
    letter = _letter(kind=K.NEWSLETTER, subject="News")
    response = client_for(coordinator).post(
        reverse("outreach:letter_printed", args=[letter.pk]), HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 200
    assert not PatientDataAccess.objects.exists()


def test_marking_a_letter_printed_without_htmx_redirects_and_records_no_read(
    client_for, coordinator
):
    letter = _letter(referral=ReferralFactory())
    response = client_for(coordinator).post(reverse("outreach:letter_printed", args=[letter.pk]))
    assert response.status_code == 302
    # It shows nothing: the queue it redirects to records its own read.
    assert not PatientDataAccess.objects.exists()


def test_dealing_with_a_failed_letter_records_the_patient_its_message_names(
    client_for, coordinator
):
    letter = _letter(referral=ReferralFactory(), status=Letter.Status.FAILED)
    response = client_for(coordinator).post(
        reverse("outreach:letter_failed", args=[letter.pk]), {"do": "let_go"}, follow=True
    )
    # The message names the letter by its subject; the queue no longer lists it.
    assert f"“{letter.subject}”: Let go" in response.content.decode()
    listed = PatientDataAccess.objects.filter(action=Action.LIST, user=coordinator)
    assert list(listed.values_list("referral_id", flat=True)) == [letter.referral_id]
