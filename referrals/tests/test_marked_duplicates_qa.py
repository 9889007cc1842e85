"""Marking duplicates, as a demanding coordinator and practice manager use it: deleting the
referral kept, putting a copy back, and the queue's flags."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from django.urls import reverse
from django.utils import timezone

from partners.factories import ProviderFactory
from partners.models import Provider
from referrals.factories import ReferralFactory
from referrals.models import Referral, SlaState, Status
from referrals.services.duplicates import referral_mark_duplicate, referral_unmark_duplicate
from referrals.services.workflow import referral_log

pytestmark = pytest.mark.django_db

DOB = date(1950, 4, 2)


def _logged(**kwargs: Any) -> Referral:
    kwargs.setdefault("patient_last_name", "Olsen")
    kwargs.setdefault("patient_dob", DOB)
    return referral_log(referral=ReferralFactory.build(**kwargs), actor=None)


def test_deleting_the_referral_kept_is_refused_with_the_reason_not_a_server_error(
    client_for, manager
):
    provider = ProviderFactory()
    original = _logged(provider=provider)
    copy = _logged(provider=provider)
    referral_mark_duplicate(referral=copy, original=original, actor=manager)
    client = client_for(manager)
    client.raise_request_exception = False

    response = client.post(reverse("referrals:delete", args=[original.pk]), follow=True)

    assert response.status_code == 200
    assert f"#{copy.pk}" in response.content.decode()
    assert Referral.objects.filter(pk=original.pk).exists()


def test_a_copy_put_back_to_received_waits_for_its_first_contact_again(coordinator):
    """Marking stopped the contact clock (like any first answer); putting the copy back
    to received must start it again, or the queue never shows it overdue."""
    provider = ProviderFactory()
    original = _logged(provider=provider)
    copy = _logged(provider=provider, received_at=timezone.now() - timedelta(days=5))
    referral_mark_duplicate(referral=copy, original=original, actor=coordinator)

    referral_unmark_duplicate(referral=copy, actor=coordinator)

    back: Any = Referral.objects.with_sla().get(pk=copy.pk)
    assert back.status == Status.RECEIVED
    assert back.contacted_at is None
    assert back.sla_state == SlaState.CONTACT_OVERDUE


def test_a_copy_put_back_keeps_a_first_contact_made_before_it_was_marked(coordinator):
    from referrals.services.workflow import referral_transition

    provider = ProviderFactory()
    original = _logged(provider=provider)
    copy = _logged(provider=provider)
    referral_transition(referral=copy, to_status=Status.ACCEPTED, actor=None)
    copy.refresh_from_db()
    contacted = copy.contacted_at
    referral_mark_duplicate(referral=copy, original=original, actor=coordinator)

    referral_unmark_duplicate(referral=copy, actor=coordinator)

    copy.refresh_from_db()
    assert copy.status == Status.ACCEPTED and copy.contacted_at == contacted


def test_the_queue_does_not_flag_a_copy_already_marked_as_a_possible_duplicate(
    client_for, coordinator
):
    provider = ProviderFactory()
    original = _logged(provider=provider, received_at=timezone.now() - timedelta(hours=2))
    copy = _logged(provider=provider)
    referral_mark_duplicate(referral=copy, original=original, actor=coordinator)

    row: Any = Referral.objects.with_duplicate_flag().get(pk=copy.pk)
    assert not row.possible_duplicate
    page = client_for(coordinator).get(reverse("referrals:list"), {"status": "cancelled"})
    assert "data-duplicate" not in page.content.decode()


def test_the_referral_kept_still_lists_its_copies_after_the_duplicate_window(
    client_for, coordinator, settings
):
    """A month later the kept referral's page must still say it has copies, and must not
    offer to mark it as a copy of a new one (which the service then refuses)."""
    provider = ProviderFactory()
    long_ago = timezone.now() - timedelta(days=settings.DUPLICATE_WINDOW_DAYS + 10)
    original = _logged(provider=provider, received_at=long_ago)
    copy = _logged(provider=provider, received_at=long_ago + timedelta(hours=1))
    referral_mark_duplicate(referral=copy, original=original, actor=coordinator)
    again = _logged(provider=provider)

    page = client_for(coordinator).get(original.get_absolute_url()).content.decode()

    assert 'data-testid="copies"' in page and f"#{copy.pk}</a>" in page
    assert f"This is a copy of #{again.pk}" not in page


def test_a_report_figure_links_to_exactly_the_referrals_it_counts(client_for, manager):
    """Who refers says 1 referral received; its link to the rows behind it must list that
    one, not the copy marked as its duplicate too."""
    import re

    provider = ProviderFactory()
    original = _logged(provider=provider, received_at=timezone.now() - timedelta(days=3))
    copy = _logged(provider=provider, received_at=timezone.now() - timedelta(days=2))
    referral_mark_duplicate(referral=copy, original=original, actor=manager)
    client = client_for(manager)
    page = client.get(reverse("referrals:referrers")).content.decode()
    assert 'data-testid="total">1<' in page
    found = re.search(r'<a href="([^"]+)" data-testid="total">', page)
    assert found is not None

    rows = client.get(found.group(1).replace("&amp;", "&")).content.decode()

    assert rows.count("data-queue-row=") == 1
    assert f'data-queue-row="{original.pk}"' in rows


def test_an_acknowledgment_being_written_as_the_copy_is_marked_is_not_sent(
    coordinator, monkeypatch
):
    """The worker read the referral before the coordinator marked it, and writes the
    acknowledgment after: the office must not get a letter about the copy."""
    from outreach.models import Letter
    from outreach.services import loop

    provider = ProviderFactory()
    original = _logged(provider=provider)
    copy = _logged(provider=provider)
    addressed = loop._addressed

    def marked_meanwhile(*args: Any, **kwargs: Any) -> Any:
        # The coordinator's mark commits while the worker is writing the letter.
        referral_mark_duplicate(referral=copy, original=original, actor=coordinator)
        return addressed(*args, **kwargs)

    monkeypatch.setattr(loop, "_addressed", marked_meanwhile)

    loop.loop_message_prepare(referral_id=copy.pk, status=Status.RECEIVED)

    assert not Letter.objects.filter(referral=copy, status=Letter.Status.PENDING).exists()


def test_the_export_tells_a_copy_from_a_referral_cancelled_for_a_reason(client_for, manager):
    """A manager counting the month's referrals (or cancellations) in a spreadsheet must be
    able to leave the copies out, as every figure of the app does."""
    import csv
    import io

    from referrals.services.workflow import referral_transition

    provider = ProviderFactory()
    original = _logged(provider=provider)
    copy = _logged(provider=provider)
    referral_mark_duplicate(referral=copy, original=original, actor=manager)
    cancelled = _logged(provider=ProviderFactory(), patient_last_name="Berg")
    referral_transition(
        referral=cancelled, to_status=Status.CANCELLED, actor=None, cancel_reason="Moved away"
    )

    response = client_for(manager).get(reverse("referrals:export"), {"status": "cancelled"})

    body = b"".join(response.streaming_content).decode("utf-8-sig")
    header, *rows = list(csv.reader(io.StringIO(body)))
    by_number = {int(row[0]): dict(zip(header, row, strict=True)) for row in rows}
    assert by_number[copy.pk]["Duplicate of"] == str(original.pk)
    assert by_number[cancelled.pk]["Duplicate of"] == ""


def test_reciprocity_leaves_out_a_partner_whose_only_referral_of_the_period_is_a_copy(manager):
    """The original came on the last day of one month, the copy on the first of the next:
    for the next month the partner sent nothing, and is not a 0-0 line of the report."""
    provider = ProviderFactory()
    now = timezone.now()
    original = _logged(provider=provider, received_at=now - timedelta(days=40))
    copy = _logged(provider=provider, received_at=now - timedelta(days=2))
    referral_mark_duplicate(referral=copy, original=original, actor=manager)

    listed = Provider.objects.with_reciprocity(since=now - timedelta(days=10))

    assert provider not in listed


def _edit_data(referral: Referral, **overrides: Any) -> dict[str, Any]:
    data = {
        "direction": referral.direction,
        "provider": referral.provider_id,
        "channel": referral.channel,
        "urgency": referral.urgency,
        "received_at": timezone.localtime(referral.received_at).strftime("%Y-%m-%dT%H:%M"),
        "patient_first_name": referral.patient_first_name,
        "patient_last_name": referral.patient_last_name,
        "patient_dob": referral.patient_dob.isoformat(),
        "patient_phone": referral.patient_phone,
        "reason": referral.reason,
        "assigned_to": referral.assigned_to_id or "",
        "version": referral.updated_at.isoformat(),
    }
    return {**data, **overrides}


@pytest.mark.parametrize("edited", ["original", "copy"])
def test_turning_either_referral_of_a_marked_pair_outbound_is_refused(
    client_for, coordinator, edited
):
    """Made outbound, the original would leave the patient the partner sent counted
    nowhere (the copy still cancelled as its duplicate); the copy would be an outbound
    duplicate, which can never be marked."""
    provider = ProviderFactory(in_network=True)
    original = _logged(provider=provider)
    copy = _logged(provider=provider)
    referral_mark_duplicate(referral=copy, original=original, actor=coordinator)
    target = Referral.objects.get(pk=original.pk if edited == "original" else copy.pk)

    response = client_for(coordinator).post(
        reverse("referrals:update", args=[target.pk]),
        _edit_data(target, direction=Referral.Direction.OUTBOUND),
    )

    assert response.status_code == 200
    assert "marked as a duplicate" in response.content.decode()
    target.refresh_from_db()
    assert target.direction == Referral.Direction.INBOUND
    assert provider.referral_figures(since=timezone.now() - timedelta(days=1)).inbound == 1


def test_the_partner_timeline_shows_a_copy_as_a_duplicate_not_as_a_lost_referral(
    client_for, manager
):
    """The partner page counts one referral; its timeline lists both, and the copy read
    as a referral the practice cancelled (lost), with nothing to say it was a copy."""
    import re

    provider = ProviderFactory()
    original = _logged(provider=provider, received_at=timezone.now() - timedelta(hours=2))
    copy = _logged(provider=provider)
    referral_mark_duplicate(referral=copy, original=original, actor=manager)

    page = client_for(manager).get(provider.get_absolute_url()).content.decode()

    entry = re.search(rf"Referral #{copy.pk}</a>(.*?)</li>", page, re.S)
    assert entry is not None
    assert f"Duplicate of #{original.pk}" in entry.group(1)


def test_an_older_pair_the_queue_flags_can_be_compared_and_marked_on_its_page(
    client_for, coordinator, settings
):
    """Faxed twice six weeks ago: the queue flags the second as a possible duplicate ("open
    it to compare"), so its page must name the first and offer the mark, as it does for a
    pair of this week."""
    provider = ProviderFactory()
    weeks_ago = timezone.now() - timedelta(days=settings.DUPLICATE_WINDOW_DAYS + 12)
    first = _logged(provider=provider, received_at=weeks_ago)
    second = _logged(provider=provider, received_at=weeks_ago + timedelta(hours=3))
    client = client_for(coordinator)
    queue = client.get(reverse("referrals:list"))
    assert "data-duplicate" in queue.content.decode()

    page = client.get(second.get_absolute_url()).content.decode()

    assert 'data-testid="possible-duplicates"' in page
    assert f"This is a copy of #{first.pk}" in page


def test_a_fax_entered_late_is_checked_against_the_referrals_of_its_own_days(
    client_for, coordinator, settings
):
    """A fax found six weeks late is entered with the day it came: the one logged from the
    same office that day is a possible duplicate before saving, as the queue flags it
    after."""
    provider = ProviderFactory()
    came = timezone.localtime() - timedelta(days=settings.DUPLICATE_WINDOW_DAYS + 12)
    earlier = _logged(provider=provider, received_at=came - timedelta(hours=2))
    data = {
        "direction": "inbound",
        "provider": provider.pk,
        "channel": "fax",
        "urgency": "routine",
        "received_at": came.strftime("%Y-%m-%dT%H:%M"),
        "patient_first_name": "Ruth",
        "patient_last_name": "Olsen",
        "patient_dob": DOB.isoformat(),
        "reason": "Knee pain again",
    }

    response = client_for(coordinator).post(reverse("referrals:create"), data)

    assert response.status_code == 200
    assert f"Referral #{earlier.pk}" in response.content.decode()
    assert Referral.objects.count() == 1


def test_a_copy_put_back_on_hold_still_asks_the_office_for_what_it_waits_for(coordinator):
    """Marked by mistake while on hold for the office notes, then put back: it is on hold
    again, waiting for notes the office must be asked for; the request the mark withdrew
    (and the acknowledgment) go out after all."""
    from outreach.models import Letter
    from outreach.services.loop import loop_message_prepare
    from referrals.services.workflow import referral_transition

    provider = ProviderFactory()
    original = _logged(provider=provider)
    copy = _logged(provider=provider, reason="Shoulder pain, not the knee")
    loop_message_prepare(referral_id=copy.pk, status=Status.RECEIVED)
    referral_transition(
        referral=copy,
        to_status=Status.ON_HOLD,
        actor=None,
        hold_reason="The office notes of the last visit.",
    )
    loop_message_prepare(referral_id=copy.pk, status=Status.ON_HOLD)
    assert Letter.objects.filter(referral=copy, status=Letter.Status.PENDING).count() == 2
    referral_mark_duplicate(referral=copy, original=original, actor=coordinator)
    assert not Letter.objects.filter(referral=copy, status=Letter.Status.PENDING).exists()

    referral_unmark_duplicate(referral=copy, actor=coordinator)

    copy.refresh_from_db()
    assert copy.status == Status.ON_HOLD
    waiting = Letter.objects.filter(referral=copy, status=Letter.Status.PENDING)
    assert sorted(waiting.values_list("kind", flat=True)) == sorted(["acknowledgment", "on_hold"])


@pytest.mark.parametrize(
    "change",
    [
        {"patient_last_name": "Hansen"},
        {"patient_dob": "1961-01-01"},
        "another partner",
    ],
)
def test_a_marked_copy_keeps_the_patient_and_partner_of_the_referral_it_repeats(
    client_for, coordinator, change
):
    """Given another patient or partner, the copy would be a referral of its own that is
    still cancelled and counted nowhere."""
    provider = ProviderFactory()
    original = _logged(provider=provider)
    copy = _logged(provider=provider)
    referral_mark_duplicate(referral=copy, original=original, actor=coordinator)
    copy.refresh_from_db()
    if change == "another partner":
        change = {"provider": ProviderFactory().pk}

    response = client_for(coordinator).post(
        reverse("referrals:update", args=[copy.pk]), _edit_data(copy, **change)
    )

    assert response.status_code == 200
    assert f"marked as a duplicate of referral #{original.pk}" in response.content.decode()
    unchanged = Referral.objects.get(pk=copy.pk)
    assert (unchanged.provider_id, unchanged.patient_last_name, unchanged.patient_dob) == (
        provider.pk,
        "Olsen",
        DOB,
    )


def test_the_referral_kept_may_still_be_corrected(client_for, coordinator):
    provider = ProviderFactory()
    original = _logged(provider=provider)
    copy = _logged(provider=provider)
    referral_mark_duplicate(referral=copy, original=original, actor=coordinator)
    original.refresh_from_db()
    response = client_for(coordinator).post(
        reverse("referrals:update", args=[original.pk]),
        _edit_data(original, patient_last_name="Olson"),
    )
    assert response.status_code == 302
    assert Referral.objects.get(pk=original.pk).patient_last_name == "Olson"
