"""Bulk decline, hold and cancel from the work queue: one transaction, every row through
the workflow, and a message that says what was done and what was left alone and why."""

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

from partners.factories import ProviderFactory
from referrals.factories import ReferralFactory
from referrals.models import Referral, ReferralEvent, Status
from referrals.services.bulk import referral_bulk_apply
from referrals.services.workflow import referral_log, referral_transition

pytestmark = pytest.mark.django_db


def _logged(**kwargs):
    kwargs.setdefault("provider", ProviderFactory())
    return referral_log(referral=ReferralFactory.build(**kwargs), actor=None)


def _token(referral: Referral) -> str:
    referral.refresh_from_db()
    return f"{referral.pk}:{referral.updated_at.isoformat()}"


def _messages(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


@pytest.mark.parametrize(
    ("to_status", "said"), [("declined", "declined"), ("cancelled", "cancelled")]
)
def test_a_bulk_decline_or_cancel_needs_a_reason_and_changes_nothing_without_one(
    client_for, coordinator, to_status, said
):
    referral = _logged()
    response = client_for(coordinator).post(
        reverse("referrals:bulk"),
        {"rows": [_token(referral)], "to_status": to_status, "reason": "  "},
    )
    assert response.status_code == 302
    assert _messages(response) == [f"Say why the selected referrals are {said}."]
    referral.refresh_from_db()
    assert referral.status == Status.RECEIVED


@pytest.mark.parametrize("to_status", [Status.DECLINED, Status.CANCELLED])
def test_the_service_refuses_a_bulk_decline_or_cancel_without_a_reason(coordinator, to_status):
    from django.core.exceptions import ValidationError

    referral = _logged()
    with pytest.raises(ValidationError, match="Say why"):
        referral_bulk_apply(
            queryset=Referral.objects.all(),
            versions={referral.pk: referral.updated_at},
            actor=coordinator,
            to_status=to_status,
        )
    referral.refresh_from_db()
    assert referral.status == Status.RECEIVED


def test_a_bulk_decline_declines_every_row_with_the_reason_and_an_event(client_for, coordinator):
    referrals = [_logged() for _ in range(3)]
    response = client_for(coordinator).post(
        reverse("referrals:bulk"),
        {
            "rows": [_token(r) for r in referrals],
            "to_status": "declined",
            "reason": "Outside our scope",
        },
    )
    ids = ", ".join(f"#{r.pk}" for r in referrals)
    assert _messages(response) == [f"Declined 3 referrals ({ids}) (reason: Outside our scope)."]
    for referral in referrals:
        referral.refresh_from_db()
        assert (referral.status, referral.decline_reason) == (Status.DECLINED, "Outside our scope")
        last = referral.events.last()
        assert (last.from_status, last.to_status, last.actor) == (
            Status.RECEIVED,
            Status.DECLINED,
            coordinator,
        )


@pytest.mark.parametrize(
    ("to_status", "said"),
    [
        ("on_hold", "Put 2 referrals ({ids}) on hold (waiting for: the X-rays)."),
        ("cancelled", "Cancelled 2 referrals ({ids}) (reason: the X-rays)."),
    ],
)
def test_bulk_hold_and_cancel_move_every_row(client_for, coordinator, to_status, said):
    referrals = [_logged() for _ in range(2)]
    response = client_for(coordinator).post(
        reverse("referrals:bulk"),
        {"rows": [_token(r) for r in referrals], "to_status": to_status, "reason": "the X-rays"},
    )
    ids = ", ".join(f"#{r.pk}" for r in referrals)
    assert _messages(response) == [said.format(ids=ids)]
    assert set(Referral.objects.values_list("status", flat=True)) == {to_status}
    assert ReferralEvent.objects.filter(to_status=to_status).count() == 2


def test_every_bulk_move_goes_through_the_workflow_service(coordinator, monkeypatch):
    from referrals.services import bulk

    referrals = [_logged() for _ in range(2)]
    calls = []
    real = bulk.referral_transition

    def spy(**kwargs):
        calls.append((kwargs["referral"].pk, kwargs["to_status"], kwargs["decline_reason"]))
        return real(**kwargs)

    monkeypatch.setattr(bulk, "referral_transition", spy)
    referral_bulk_apply(
        queryset=Referral.objects.all(),
        versions={r.pk: r.updated_at for r in referrals},
        actor=coordinator,
        to_status=Status.DECLINED,
        reason="Duplicate",
    )
    assert calls == [(r.pk, Status.DECLINED, "Duplicate") for r in referrals]


def test_a_mixed_selection_reports_what_was_done_and_each_reason_rows_were_skipped(
    client_for, coordinator, manager
):
    fine = _logged()
    stale_one, stale_two = _logged(), _logged()
    closed = _logged()
    referral_transition(
        referral=closed, to_status="cancelled", actor=None, cancel_reason="Duplicate"
    )
    referral_transition(referral=closed, to_status="closed", actor=None)
    tokens = [_token(r) for r in (fine, stale_one, stale_two, closed)]
    # After the page loaded, the manager accepted two of them.
    for referral in (stale_one, stale_two):
        referral_transition(referral=referral, to_status="accepted", actor=manager)
    response = client_for(coordinator).post(
        reverse("referrals:bulk"),
        {"rows": tokens, "to_status": "cancelled", "reason": "Sent twice"},
    )
    assert _messages(response) == [
        f"Cancelled 1 referral (#{fine.pk}) (reason: Sent twice).",
        f"Left 2 referrals (#{stale_one.pk}, #{stale_two.pk}) unchanged: changed by someone "
        "else since you loaded the page; reload the page to see their changes, then try again.",
        f"Left 1 referral (#{closed.pk}) unchanged: a closed referral cannot move to cancelled.",
    ]
    # The manager's change stands: nothing was overwritten.
    for referral in (stale_one, stale_two):
        referral.refresh_from_db()
        assert referral.status == Status.ACCEPTED
        assert not referral.events.filter(to_status="cancelled").exists()


def test_the_queue_offers_decline_hold_and_cancel_but_not_scheduling(client_for, coordinator):
    _logged()
    page = client_for(coordinator).get(reverse("referrals:list")).content.decode()
    for value in ("declined", "on_hold", "cancelled"):
        assert f'<option value="{value}">' in page
    assert '<option value="scheduled">' not in page
    assert 'name="reason"' in page


def test_a_bulk_action_refused_over_htmx_answers_only_the_message(client_for, coordinator):
    from referrals.models import Referral

    referral = referral_log(referral=ReferralFactory.build(provider=ProviderFactory()), actor=None)
    referral.refresh_from_db()
    client = client_for(coordinator)
    rows = f"{referral.pk}:{referral.updated_at.isoformat()}"
    refused = client.post(
        reverse("referrals:bulk"),
        {"rows": rows, "to_status": "declined", "next": "/referrals/?page=1"},
        HTTP_HX_REQUEST="true",
    )
    assert refused.status_code == 200
    page = refused.content.decode()
    assert "Say why the selected referrals are declined." in page
    assert "your selection is kept" in page and "<html" not in page
    assert Referral.objects.get(pk=referral.pk).status == "received"

    applied = client.post(
        reverse("referrals:bulk"),
        {"rows": rows, "to_status": "accepted", "next": "/referrals/?page=1"},
        HTTP_HX_REQUEST="true",
    )
    assert (applied.status_code, applied["HX-Redirect"]) == (204, "/referrals/?page=1")
    assert Referral.objects.get(pk=referral.pk).status == "accepted"


def test_a_refused_bulk_move_names_the_status_with_the_article_that_fits(client_for, coordinator):
    accepted = _logged()
    referral_transition(referral=accepted, to_status="accepted", actor=None)
    held = _logged()
    referral_transition(referral=held, to_status="on_hold", actor=None)
    response = client_for(coordinator).post(
        reverse("referrals:bulk"),
        {"rows": [_token(accepted), _token(held)], "to_status": "accepted"},
    )
    assert _messages(response) == [
        f"Accepted 1 referral (#{held.pk}).",
        f"Left 1 referral (#{accepted.pk}) unchanged: an accepted referral cannot move to "
        "accepted.",
    ]


def test_a_reason_of_invisible_characters_only_is_no_reason_alone_or_in_bulk(manager):
    from django.core.exceptions import ValidationError

    from referrals.services.bulk import referral_bulk_apply
    from referrals.services.workflow import referral_log, referral_transition

    invisible = "\u200b\u200b\u2060 "
    first, second = (
        referral_log(referral=ReferralFactory.build(provider=ProviderFactory()), actor=None)
        for _ in range(2)
    )
    with pytest.raises(ValidationError) as refused:
        referral_transition(
            referral=first, to_status="cancelled", actor=manager, cancel_reason=invisible
        )
    assert "cancel_reason" in refused.value.message_dict
    with pytest.raises(ValidationError) as refused:
        referral_bulk_apply(
            queryset=type(second).objects.all(),
            versions={second.pk: second.updated_at},
            actor=manager,
            to_status="declined",
            reason=invisible,
        )
    assert "reason" in refused.value.message_dict
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.status, second.status) == ("received", "received")
