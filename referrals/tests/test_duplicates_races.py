"""A delete racing a mark: one coordinator deletes a referral while another marks it, or
marks a copy of it. Either order ends in a clear refusal, and nothing is lost."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import date
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.db import connection, transaction

from partners.factories import ProviderFactory
from referrals.factories import ReferralFactory
from referrals.models import Inquiry, Referral, Status
from referrals.services.deletion import referrals_delete
from referrals.services.duplicates import referral_mark_duplicate
from referrals.services.workflow import referral_log
from tests.concurrency import in_a_thread

# serialized_rollback, like every transactional test before the browser tests.
pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def _pair() -> tuple[Referral, Referral]:
    """A referral and the same one entered again."""
    provider = ProviderFactory()
    made = [
        referral_log(
            referral=ReferralFactory.build(
                provider=provider, patient_last_name="Olsen", patient_dob=date(1950, 4, 2)
            ),
            actor=None,
        )
        for _ in range(2)
    ]
    return made[0], made[1]


def _while_saving(first: Callable[[], Any], second: Callable[[], Any]) -> dict[str, Any]:
    """Run `second` in another connection while `first` is saved but not yet committed;
    return how `second` ended."""
    outcome: dict[str, Any] = {}
    with transaction.atomic():
        first()
        other = in_a_thread(second, outcome)
        time.sleep(1)  # the second reaches the rows the first still holds
    other.join()
    return outcome


def _delete(referral: Referral) -> Callable[[], int]:
    return lambda: referrals_delete(referrals=[Referral.objects.get(pk=referral.pk)], actor=None)


def _mark(copy: Referral, kept: Referral) -> Callable[[], Referral]:
    return lambda: referral_mark_duplicate(
        referral=Referral.objects.get(pk=copy.pk),
        original=Referral.objects.get(pk=kept.pk),
        actor=None,
    )


def test_deleting_the_kept_referral_while_a_copy_of_it_is_being_marked_is_refused():
    kept, copy = _pair()

    outcome = _while_saving(_mark(copy, kept), _delete(kept))

    error = outcome.get("error")
    assert isinstance(error, ValidationError), error
    assert error.messages == [
        f"Referral #{kept.pk} cannot be deleted: #{copy.pk} is marked as a duplicate of "
        "it. Delete the copies first, or put them back (Not a copy) if they are referrals "
        "of their own."
    ]
    copy.refresh_from_db()
    assert copy.duplicate_of_id == kept.pk and copy.status == Status.CANCELLED
    assert Referral.objects.filter(pk=kept.pk).exists()


def test_marking_a_copy_of_a_referral_being_deleted_says_it_was_deleted():
    kept, copy = _pair()

    outcome = _while_saving(_delete(kept), _mark(copy, kept))

    error = outcome.get("error")
    assert isinstance(error, ValidationError), error
    assert error.messages == [
        f"Referral #{kept.pk} was deleted meanwhile, so #{copy.pk} was not marked as its duplicate."
    ]
    assert not Referral.objects.filter(pk=kept.pk).exists()
    copy.refresh_from_db()
    assert copy.duplicate_of_id is None and copy.status == Status.RECEIVED
    assert Inquiry.objects.filter(referral=copy).exists()


def test_marking_a_referral_being_deleted_says_it_was_deleted():
    kept, copy = _pair()

    outcome = _while_saving(_delete(copy), _mark(copy, kept))

    error = outcome.get("error")
    assert isinstance(error, ValidationError), error
    assert error.messages == [f"Referral #{copy.pk} was deleted meanwhile: nothing was marked."]
    assert not Referral.objects.filter(pk=copy.pk).exists()
    assert Referral.objects.filter(pk=kept.pk, duplicate_of=None).exists()


def test_deleting_a_copy_while_it_is_being_marked_deletes_it_after_the_mark():
    kept, copy = _pair()

    outcome = _while_saving(_mark(copy, kept), _delete(copy))

    assert "error" not in outcome, outcome.get("error")
    assert outcome["result"] == 1
    assert not Referral.objects.filter(pk=copy.pk).exists()
    assert Referral.objects.filter(pk=kept.pk).exists()


def test_deleting_in_the_admin_while_a_copy_is_being_marked_says_why_not_a_server_error(
    client_for, administrator
):
    from django.urls import reverse

    kept, copy = _pair()
    client = client_for(administrator)
    url = reverse("admin:referrals_referral_delete", args=[kept.pk])

    outcome = _while_saving(_mark(copy, kept), lambda: client.post(url, {"post": "yes"}))

    response = outcome.get("result")
    assert response is not None, outcome.get("error")
    if connection.vendor == "sqlite":
        # SQLite's shared-cache test database lets the admin read the mark before it is
        # committed: its own confirmation page refuses, naming the copy that protects it.
        assert response.status_code == 200
        page = response.content.decode()
        assert "Cannot delete referral" in page
        assert f"Referral #{copy.pk}" in page
    else:
        # Postgres: the admin's page found nothing protecting it; referrals_delete, waiting
        # on the mark's locks, refuses, and the admin says why.
        assert response.status_code == 302
        page = client.get(response["Location"]).content.decode()
        assert f"Referral #{kept.pk} cannot be deleted: #{copy.pk} is marked as a duplicate" in page
    assert Referral.objects.filter(pk=kept.pk).exists()
