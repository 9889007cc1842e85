"""Bad input on the referral pages gets a clear answer, never a server error, and a stale
page never overwrites a colleague's change."""

import re

import pytest
from django.test import Client
from django.urls import reverse

from core.factories import UserFactory
from core.roles import Role
from partners.factories import ProviderFactory
from referrals.factories import ReferralFactory
from referrals.models import Referral, Status
from referrals.services.edit import STALE_EDIT, referral_edit
from referrals.services.workflow import referral_log, referral_transition

pytestmark = pytest.mark.django_db


def _logged(**kwargs):
    return referral_log(
        referral=ReferralFactory.build(provider=ProviderFactory(), **kwargs), actor=None
    )


@pytest.mark.parametrize("view", ["claim", "assign", "bulk"])
def test_a_next_address_that_is_not_a_path_returns_to_the_queue(client_for, coordinator, view):
    referral = _logged()
    url = (
        reverse("referrals:bulk")
        if view == "bulk"
        else reverse(f"referrals:{view}", args=[referral.pk])
    )
    response = client_for(coordinator).post(url, {"next": "queue"})
    assert (response.status_code, response["Location"]) == (302, reverse("referrals:list"))


def test_a_next_path_on_this_site_is_where_a_claim_returns(client_for, coordinator):
    referral = _logged()
    response = client_for(coordinator).post(
        reverse("referrals:claim", args=[referral.pk]), {"next": "/referrals/?page=2"}
    )
    assert response["Location"] == "/referrals/?page=2"
    assert Referral.objects.get(pk=referral.pk).assigned_to == coordinator


@pytest.mark.parametrize("value", ["²", "٣", "9" * 5000])
def test_a_partner_picker_given_a_non_ascii_digit_says_to_choose_from_the_list(
    client_for, coordinator, value
):
    client = client_for(coordinator)
    created = client.post(reverse("referrals:create"), {"provider": value})
    assert created.status_code == 200
    assert "Choose a partner from the list" in created.content.decode()
    assert client.get(reverse("referrals:list"), {"provider": value}).status_code == 200
    referral = _logged()
    edited = client.post(reverse("referrals:update", args=[referral.pk]), {"provider": value})
    assert edited.status_code == 200 and "Choose a partner from the list" in edited.content.decode()


@pytest.mark.parametrize("row", ["²", "9" * 5000, "-3"])
def test_bulk_rows_that_are_not_ids_are_refused_with_a_message(client_for, coordinator, row):
    response = client_for(coordinator).post(
        reverse("referrals:bulk"),
        {"rows": f"{row}:2026-01-01T00:00:00+00:00", "assign_to": coordinator.pk},
        follow=True,
    )
    assert response.status_code == 200
    assert "The selection was not understood; reload the page." in response.content.decode()


def _edit_page_values(client, referral):
    """What the edit page's form holds, as the browser posts it back."""
    form = client.get(reverse("referrals:update", args=[referral.pk])).context["form"]
    values = {}
    for name, field in form.fields.items():
        value = form[name].value()
        if name == "received_at":
            value = value.strftime("%Y-%m-%dT%H:%M")
        values[name] = "" if value is None else field.prepare_value(value)
    return values


def test_a_stale_edit_page_does_not_undo_a_colleague_s_reassignment(client_for):
    ann = UserFactory(first_name="Ann", role=Role.COORDINATOR)
    bea = UserFactory(first_name="Bea", role=Role.COORDINATOR)
    referral = _logged(assigned_to=ann)
    ann_client = client_for(ann)
    stale = _edit_page_values(ann_client, referral)

    version = Referral.objects.get(pk=referral.pk).updated_at.isoformat()
    client_for(bea).post(
        reverse("referrals:assign", args=[referral.pk]), {"assignee": bea.pk, "version": version}
    )
    response = ann_client.post(
        reverse("referrals:update", args=[referral.pk]),
        {**stale, "patient_phone": "(402) 555-0000"},
    )

    assert response.status_code == 200
    assert STALE_EDIT.split(" (")[0] in response.content.decode()
    after = Referral.objects.get(pk=referral.pk)
    assert (after.assigned_to, after.patient_phone) == (bea, referral.patient_phone)
    # The form keeps Ann's value and now carries the current version: saving again applies.
    form = response.context["form"]
    assert form["patient_phone"].value() == "(402) 555-0000"
    again = ann_client.post(
        reverse("referrals:update", args=[referral.pk]),
        {**stale, "patient_phone": "(402) 555-0000", "version": form.data["version"]},
    )
    assert again.status_code == 302
    assert Referral.objects.get(pk=referral.pk).patient_phone == "(402) 555-0000"


@pytest.mark.parametrize("version", ["yesterday", "2026-12-01T09:00:00"])
def test_an_edit_with_a_version_the_page_never_sends_keeps_what_was_typed(client_for, version):
    ann = UserFactory(first_name="Ann", role=Role.COORDINATOR)
    referral = _logged(assigned_to=ann)
    client = client_for(ann)
    values = _edit_page_values(client, referral)
    response = client.post(
        reverse("referrals:update", args=[referral.pk]),
        {**values, "patient_phone": "(402) 555-0000", "version": version},
    )
    assert response.status_code == 200
    assert "The page was not understood: reload it and try again." in response.content.decode()
    assert 'value="(402) 555-0000"' in response.content.decode()
    assert Referral.objects.get(pk=referral.pk).patient_phone == referral.patient_phone


def test_an_edit_saved_while_a_colleague_moved_the_status_keeps_their_move(coordinator):
    referral = _logged()
    in_view = Referral.objects.get(pk=referral.pk)  # what the edit view loaded
    in_view.patient_phone = "(402) 555-1111"
    referral_transition(referral=referral, to_status=Status.ACCEPTED, actor=coordinator)

    referral_edit(referral=in_view, fields=["patient_phone"], actor=coordinator)

    after = Referral.objects.get(pk=referral.pk)
    assert (after.status, after.patient_phone) == (Status.ACCEPTED, "(402) 555-1111")
    assert after.contacted_at is not None


def test_an_edit_from_a_page_that_is_still_current_is_saved(client_for, coordinator):
    referral = _logged()
    client = client_for(coordinator)
    values = _edit_page_values(client, referral)
    response = client.post(
        reverse("referrals:update", args=[referral.pk]), {**values, "reason": "Left knee pain"}
    )
    assert response.status_code == 302
    assert Referral.objects.get(pk=referral.pk).reason == "Left knee pain"


def test_an_anonymous_client_is_sent_to_sign_in_not_shown_an_error():
    assert Client().post(reverse("referrals:bulk"), {"next": "queue"}).status_code == 302


def test_a_partner_typed_but_not_picked_is_marked_and_what_was_typed_stays(client_for, coordinator):
    response = client_for(coordinator).post(
        reverse("referrals:create"), {"provider": "", "provider_search": "Donald Newman"}
    )
    page = response.content.decode()
    assert response.status_code == 200
    picker = re.search(
        r'<div class="position-relative[^"]*" data-picker>.*?</div>\s*</div>', page, re.S
    )[0]
    assert 'class="position-relative is-invalid"' in picker
    assert re.search(
        r'<input type="search" class="form-control is-invalid" value="Donald Newman"', picker
    )
    assert 'aria-invalid="true"' in picker
    # The message follows the marked wrapper, where Bootstrap shows it.
    after = page[page.index(picker) + len(picker) :]
    assert re.match(
        r"\s*<div[^>]*invalid-feedback[^>]*>\s*<p[^>]*><strong>Choose a partner from the list",
        after,
    ), after[:300]
