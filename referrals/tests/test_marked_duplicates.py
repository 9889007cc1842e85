"""A referral entered twice, marked as a duplicate of the one kept: cancelled, counted in
no figure, and nothing sent to the referring office about it."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from django.urls import reverse
from django.utils import timezone

from outreach.models import Letter
from outreach.reports import outreach_lift
from outreach.services.loop import loop_message_prepare, referral_events_missing_messages
from partners.factories import ProviderFactory
from partners.models import Provider
from referrals.factories import ReferralFactory
from referrals.models import Inquiry, Referral, ReferralEvent, Status
from referrals.selectors import reciprocity_over_time, referrers, turnaround
from referrals.services.duplicates import referral_mark_duplicate
from referrals.services.workflow import referral_log, referral_transition

pytestmark = pytest.mark.django_db

DOB = date(1950, 4, 2)


def _logged(**kwargs):
    kwargs.setdefault("patient_last_name", "Olsen")
    kwargs.setdefault("patient_dob", DOB)
    return referral_log(referral=ReferralFactory.build(**kwargs), actor=None)


def _figures(provider: Provider) -> dict[str, object]:
    """Every figure a partner's second referral would wrongly add to."""
    now = timezone.now()
    year_ago = now - timedelta(days=365)
    today = timezone.localdate()
    _, months = reciprocity_over_time(since=today - timedelta(days=60), until=today)
    rows = turnaround(start=year_ago, end=now + timedelta(seconds=1))["rows"]
    # Annotated rows (Any: the annotations are not on the model's type).
    listed: Any = Provider.objects.with_referral_stats().get(pk=provider.pk)
    flows: Any = Provider.objects.with_reciprocity(since=year_ago).get()
    return {
        "partner page": provider.referral_figures(since=year_ago).inbound,
        "partner chart": sum(n for _, n in provider.monthly_inbound()),
        "partner list": listed.referrals_12m,
        "reciprocity": flows.received,
        "reciprocity over time": sum(row["received"] for row in months),
        "turnaround": sum(row["received"] for row in rows),
        "who refers": referrers(start=year_ago, end=now + timedelta(seconds=1))["total"],
        "conversion": sum(
            row["inquiries"]
            for row in Inquiry.objects.conversion_by_source(
                since=year_ago, until=now + timedelta(seconds=1)
            )
        ),
        "lost reasons": Referral.objects.lost_reasons(since=year_ago, until=now),
    }


def test_a_copy_marked_as_a_duplicate_counts_in_no_figure(client_for, coordinator):
    provider = ProviderFactory()
    original = _logged(provider=provider)
    copy = _logged(provider=provider)
    assert _figures(provider)["partner page"] == 2  # what the copy added before

    response = client_for(coordinator).post(
        reverse("referrals:mark_duplicate", args=[copy.pk]),
        {"original": original.pk, "version": copy.updated_at.isoformat()},
        follow=True,
    )

    assert "is marked as a duplicate of" in response.content.decode()
    copy.refresh_from_db()
    assert copy.status == Status.CANCELLED and copy.duplicate_of == original
    assert copy.contacted_at is not None
    assert _figures(provider) == {
        "partner page": 1,
        "partner chart": 1,
        "partner list": 1,
        "reciprocity": 1,
        "reciprocity over time": 1,
        "turnaround": 1,
        "who refers": 1,
        "conversion": 1,
        "lost reasons": [],
    }
    assert not Inquiry.objects.filter(referral=copy).exists()
    moved = ReferralEvent.objects.filter(referral=copy, to_status=Status.CANCELLED).get()
    assert moved.actor == coordinator
    assert moved.changes == [{"field": "Duplicate of", "new": f"Referral #{original.pk}"}]


def test_the_dashboard_and_the_outreach_report_count_the_patient_once(client_for, manager):
    provider = ProviderFactory()
    original = _logged(provider=provider)
    copy = _logged(provider=provider)
    now = timezone.now()
    lift = outreach_lift(start=now - timedelta(days=30), end=now + timedelta(seconds=1))
    before = client_for(manager).get(reverse("core:dashboard")).context["received_30d"]
    referral_mark_duplicate(referral=copy, original=original, actor=manager)
    after = client_for(manager).get(reverse("core:dashboard")).context["received_30d"]
    assert (before, after) == (2, 1)
    lifted = outreach_lift(start=now - timedelta(days=30), end=now + timedelta(seconds=1))
    assert lifted != lift


def test_the_referring_office_is_told_nothing_about_the_copy(coordinator):
    provider = ProviderFactory()
    original = _logged(provider=provider)
    copy = _logged(provider=provider)
    _, acknowledgment = loop_message_prepare(referral_id=copy.pk, status=Status.RECEIVED)
    assert acknowledgment is not None and acknowledgment.status == Letter.Status.PENDING

    referral_mark_duplicate(referral=copy, original=original, actor=coordinator)

    acknowledgment.refresh_from_db()
    assert acknowledgment.status == Letter.Status.CANCELLED
    assert acknowledgment.last_error == f"Withdrawn: the referral was a duplicate of #{original.pk}"
    # Neither the move's own message nor the sweep that re-drives lost ones sends a
    # cancellation for it.
    assert loop_message_prepare(referral_id=copy.pk, status=Status.CANCELLED) == (None, None)
    assert (copy.pk, Status.CANCELLED) not in referral_events_missing_messages()
    assert not Letter.objects.filter(referral=copy).exclude(pk=acknowledgment.pk).exists()
    # A real cancellation still tells the office.
    referral_transition(
        referral=original, to_status=Status.CANCELLED, actor=None, cancel_reason="Moved away"
    )
    assert (original.pk, Status.CANCELLED) in referral_events_missing_messages()


def test_the_detail_page_offers_the_mark_and_then_says_what_was_done(client_for, coordinator):
    provider = ProviderFactory()
    original = _logged(provider=provider)
    copy = _logged(provider=provider)
    client = client_for(coordinator)
    page = client.get(copy.get_absolute_url()).content.decode()
    assert f"This is a copy of #{original.pk}" in page
    referral_mark_duplicate(referral=copy, original=original, actor=coordinator)

    page = client.get(copy.get_absolute_url()).content.decode()
    assert 'data-testid="duplicate-of"' in page and f"referral #{original.pk}" in page
    assert "This is a copy of" not in page and "Possible duplicate of" not in page
    kept = client.get(original.get_absolute_url()).content.decode()
    assert 'data-testid="copies"' in kept and f"#{copy.pk}</a>" in kept
    assert "Possible duplicate of" not in kept


def test_marking_the_earlier_one_as_the_copy_clears_the_later_ones_flag(coordinator):
    provider = ProviderFactory()
    earlier = _logged(provider=provider)
    later = _logged(provider=provider)

    def flagged() -> bool:
        row: Any = Referral.objects.with_duplicate_flag().get(pk=later.pk)
        return bool(row.possible_duplicate)

    assert flagged()
    referral_mark_duplicate(referral=earlier, original=later, actor=coordinator)
    assert not flagged()


@pytest.mark.parametrize(
    "case, message",
    [
        ("itself", "Choose another referral"),
        ("chain", "is itself a duplicate of referral"),
        ("seen", "cannot move to cancelled"),
        ("outbound", "was received, and this one sent out"),
        ("kept", "it is the one kept"),
        ("booked", "has an appointment booked"),
        ("another patient", "is not the same patient from the same partner"),
        ("stale", "Someone changed this referral after you opened it"),
        ("unknown", "There is no referral #"),
        ("garbled", "Enter a whole number"),
    ],
)
def test_a_mark_that_cannot_be_is_refused_with_the_reason(client_for, coordinator, case, message):
    provider = ProviderFactory()
    original = _logged(provider=provider)
    copy = _logged(provider=provider)
    version = copy.updated_at.isoformat()
    target: object = original.pk
    if case == "itself":
        target = copy.pk
    elif case == "chain":
        root = _logged(provider=provider)
        referral_mark_duplicate(referral=original, original=root, actor=None)
    elif case == "seen":
        Referral.objects.filter(pk=copy.pk).update(status=Status.SEEN)
        version = Referral.objects.get(pk=copy.pk).updated_at.isoformat()
    elif case == "outbound":
        Referral.objects.filter(pk=copy.pk).update(direction=Referral.Direction.OUTBOUND)
    elif case == "kept":
        third = _logged(provider=provider)
        referral_mark_duplicate(referral=third, original=copy, actor=None)
        version = Referral.objects.get(pk=copy.pk).updated_at.isoformat()
    elif case == "booked":
        referral_transition(referral=copy, to_status=Status.ACCEPTED, actor=None)
        referral_transition(
            referral=copy,
            to_status=Status.SCHEDULED,
            actor=None,
            appointment_at=timezone.now() + timedelta(days=3),
        )
        version = Referral.objects.get(pk=copy.pk).updated_at.isoformat()
    elif case == "another patient":
        target = _logged(provider=provider, patient_last_name="Nilsen").pk
    elif case == "stale":
        referral_transition(referral=copy, to_status=Status.ACCEPTED, actor=None)
    elif case == "unknown":
        target = 10**9
    elif case == "garbled":
        target = "7 OR 1=1"
    before = Referral.objects.get(pk=copy.pk)

    response = client_for(coordinator).post(
        reverse("referrals:mark_duplicate", args=[copy.pk]),
        {"original": target, "version": version},
        follow=True,
    )

    assert response.status_code == 200
    assert "Not marked as a duplicate:" in response.content.decode()
    assert message in response.content.decode()
    after = Referral.objects.get(pk=copy.pk)
    assert (after.status, after.duplicate_of_id) == (before.status, before.duplicate_of_id)


def test_only_those_who_work_referrals_may_mark_one(client_for, liaison):
    provider = ProviderFactory(owner=liaison)
    original = _logged(provider=provider)
    copy = _logged(provider=provider)
    response = client_for(liaison).post(
        reverse("referrals:mark_duplicate", args=[copy.pk]), {"original": original.pk}
    )
    assert response.status_code in (403, 404)
    copy.refresh_from_db()
    assert copy.duplicate_of is None and copy.status == Status.RECEIVED


def test_the_admin_shows_the_mark_but_does_not_offer_every_referral_to_pick(
    client_for, administrator
):
    """A select of every referral ever received would be a million options; the mark is
    made on the referral's page, which also cancels it and withdraws its letters."""
    provider = ProviderFactory()
    original = _logged(provider=provider)
    copy = _logged(provider=provider)
    referral_mark_duplicate(referral=copy, original=original, actor=None)
    page = client_for(administrator).get(reverse("admin:referrals_referral_change", args=[copy.pk]))
    assert page.status_code == 200
    assert 'name="duplicate_of"' not in page.content.decode()
    assert str(original) in page.content.decode()


@pytest.mark.parametrize("from_status", [Status.RECEIVED, Status.ACCEPTED, Status.NO_SHOW])
def test_a_copy_marked_by_mistake_goes_back_to_work_and_counts_again(
    client_for, coordinator, from_status
):
    provider = ProviderFactory()
    ten_days_ago = timezone.now() - timedelta(days=10)
    original = _logged(provider=provider, received_at=ten_days_ago)
    copy = _logged(provider=provider, received_at=ten_days_ago)
    if from_status != Status.RECEIVED:
        referral_transition(referral=copy, to_status=Status.ACCEPTED, actor=None)
    if from_status == Status.NO_SHOW:
        # Booked and missed: the appointment is over, the patient may be booked again.
        referral_transition(
            referral=copy,
            to_status=Status.SCHEDULED,
            actor=None,
            appointment_at=timezone.now() - timedelta(days=2),
        )
        referral_transition(referral=copy, to_status=Status.NO_SHOW, actor=None)
    referral_mark_duplicate(referral=copy, original=original, actor=coordinator)
    copy.refresh_from_db()
    client = client_for(coordinator)
    assert "Not a copy: put it back" in client.get(copy.get_absolute_url()).content.decode()

    response = client.post(
        reverse("referrals:unmark_duplicate", args=[copy.pk]),
        {"version": copy.updated_at.isoformat()},
        follow=True,
    )

    assert "is no longer a duplicate" in response.content.decode()
    copy.refresh_from_db()
    assert copy.status == from_status and copy.duplicate_of is None
    assert _figures(provider)["partner page"] == 2
    inquiry = Inquiry.objects.get(referral=copy)
    expected = Inquiry.Status.SCHEDULED if from_status == Status.NO_SHOW else Inquiry.Status.INQUIRY
    assert inquiry.status == expected
    assert _figures(provider)["conversion"] == 2
    back = ReferralEvent.objects.filter(referral=copy).order_by("-at", "-pk").first()
    assert back is not None and back.to_status == from_status
    assert back.changes == [
        {"field": "Duplicate of", "old": f"Referral #{original.pk}", "new": "none"}
    ]


def test_putting_back_is_refused_for_one_never_marked_or_closed_since(client_for, coordinator):
    provider = ProviderFactory()
    original = _logged(provider=provider)
    copy = _logged(provider=provider)
    client = client_for(coordinator)
    url = reverse("referrals:unmark_duplicate", args=[copy.pk])
    response = client.post(url, {"version": copy.updated_at.isoformat()}, follow=True)
    assert "Not changed: It is not marked as a duplicate." in response.content.decode()

    referral_mark_duplicate(referral=copy, original=original, actor=None)
    referral_transition(referral=copy, to_status=Status.CLOSED, actor=None)
    copy.refresh_from_db()
    response = client.post(url, {"version": copy.updated_at.isoformat()}, follow=True)
    assert "it stays a duplicate" in response.content.decode()
    response = client.post(url, {"version": "not a time"}, follow=True)
    assert "The page was not understood" in response.content.decode()
    copy.refresh_from_db()
    assert copy.duplicate_of == original and copy.status == Status.CLOSED


def test_the_queue_names_a_marked_copy_instead_of_flagging_it_as_possible(client_for, coordinator):
    import re

    provider = ProviderFactory()
    original = _logged(provider=provider)
    copy = _logged(provider=provider)
    client = client_for(coordinator)
    shown = {"status": ["received", "cancelled"]}

    def badges(pk: int) -> str:
        page = client.get(reverse("referrals:list"), shown).content.decode()
        [row] = re.findall(rf'data-queue-row="{pk}"[^>]*>((?:(?!</tr>).)*)', page, re.S)
        return row

    assert "Possible duplicate" in badges(copy.pk)
    referral_mark_duplicate(referral=copy, original=original, actor=None)
    row = badges(copy.pk)
    assert f"Duplicate of #{original.pk}" in row and "Possible duplicate" not in row
    assert "Duplicate of" not in badges(original.pk)


def test_a_report_figure_links_to_exactly_the_rows_it_counted(client_for, manager):
    import re
    from html import unescape

    provider = ProviderFactory()
    original = _logged(provider=provider)
    copy = _logged(provider=provider)
    referral_mark_duplicate(referral=copy, original=original, actor=None)
    client = client_for(manager)
    report = client.get(reverse("referrals:reciprocity")).content.decode()
    [link] = re.findall(r'href="([^"]+)"><strong data-testid="received">1<', report)
    queue = client.get(unescape(link)).content.decode()
    assert set(map(int, re.findall(r'data-queue-row="(\d+)"', queue))) == {original.pk}
    # Unticked, the copy is listed, named as such.
    everything = client.get(unescape(link).replace("counted=true", "counted=false"))
    rows = set(map(int, re.findall(r'data-queue-row="(\d+)"', everything.content.decode())))
    assert rows == {original.pk, copy.pk}


def test_the_copys_documents_move_to_the_referral_kept(client_for, coordinator, settings, tmp_path):
    """The fax with the records may be the one that came second."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    from intake.services import attachment_add

    settings.PRIVATE_STORAGE_ROOT = tmp_path
    pdf = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"
    provider = ProviderFactory()
    original = _logged(provider=provider, channel="phone")
    copy = _logged(provider=provider, channel="fax")
    [document] = attachment_add(
        referral=copy,
        documents=[(SimpleUploadedFile("records.pdf", pdf), "application/pdf")],
        actor=coordinator,
    )
    referral_mark_duplicate(referral=copy, original=original, actor=coordinator)

    document.refresh_from_db()
    assert document.referral_id == original.pk
    page = client_for(coordinator).get(original.get_absolute_url()).content.decode()
    assert "records.pdf" in page
    moved = ReferralEvent.objects.filter(referral=original, kind="edit").get()
    assert moved.changes == [
        {"field": "Documents", "new": f"1 document from its duplicate #{copy.pk}"}
    ]
    marked = ReferralEvent.objects.filter(referral=copy, to_status=Status.CANCELLED).get()
    assert {"field": "Documents", "new": f"1 document moved to #{original.pk}"} in marked.changes


def test_moving_the_copys_documents_is_in_the_patient_data_audit_trail(
    client_for, coordinator, settings, tmp_path
):
    """Who moved a patient's documents from one referral to another, and when: a change
    of both referrals' documents, as adding or deleting one is."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    from audit.models import PatientDataAccess
    from intake.services import attachment_add

    settings.PRIVATE_STORAGE_ROOT = tmp_path
    pdf = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"
    provider = ProviderFactory()
    original = _logged(provider=provider, channel="phone")
    copy = _logged(provider=provider, channel="fax")
    attachment_add(
        referral=copy,
        documents=[(SimpleUploadedFile("records.pdf", pdf), "application/pdf")],
        actor=coordinator,
    )
    before = set(PatientDataAccess.objects.values_list("pk", flat=True))

    client_for(coordinator).post(
        reverse("referrals:mark_duplicate", args=[copy.pk]),
        {"original": original.pk, "version": copy.updated_at.isoformat()},
        REMOTE_ADDR="10.0.0.7",
    )

    changes = PatientDataAccess.objects.exclude(pk__in=before).filter(
        action=PatientDataAccess.Action.CHANGE
    )
    assert sorted(
        (row.referral_id, row.user_id, row.fields, row.ip_address) for row in changes
    ) == [
        (original.pk, coordinator.pk, ["attachments"], "10.0.0.7"),
        (copy.pk, coordinator.pk, ["attachments"], "10.0.0.7"),
    ]


def test_marking_a_copy_without_documents_writes_no_change_to_the_audit_trail(coordinator):
    from audit.models import PatientDataAccess

    provider = ProviderFactory()
    original = _logged(provider=provider)
    copy = _logged(provider=provider)
    before = PatientDataAccess.objects.filter(action=PatientDataAccess.Action.CHANGE).count()

    referral_mark_duplicate(referral=copy, original=original, actor=coordinator)

    assert (
        PatientDataAccess.objects.filter(action=PatientDataAccess.Action.CHANGE).count() == before
    )


def test_a_booked_referral_is_the_one_kept_and_its_page_says_to_mark_the_other(
    client_for, coordinator
):
    provider = ProviderFactory()
    original = _logged(provider=provider)
    booked = _logged(provider=provider)
    referral_transition(referral=booked, to_status=Status.ACCEPTED, actor=None)
    referral_transition(
        referral=booked,
        to_status=Status.SCHEDULED,
        actor=None,
        appointment_at=timezone.now() + timedelta(days=3),
    )
    client = client_for(coordinator)
    page = client.get(booked.get_absolute_url()).content.decode()
    assert 'data-testid="booked-keeps"' in page and "This is a copy of" not in page
    other = client.get(original.get_absolute_url()).content.decode()
    assert f"This is a copy of #{booked.pk}" in other
    referral_mark_duplicate(referral=original, original=booked, actor=coordinator)
    assert Referral.objects.get(pk=original.pk).duplicate_of_id == booked.pk
