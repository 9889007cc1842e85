import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from core.factories import UserFactory
from core.roles import Role
from partners.factories import ProviderFactory
from referrals.factories import ReferralFactory, referral_form_data
from referrals.models import Referral, Status
from referrals.services.workflow import referral_log

pytestmark = pytest.mark.django_db


def _logged(**kwargs):
    return referral_log(referral=ReferralFactory.build(**kwargs), actor=None)


def _form_data(partner, **overrides):
    return referral_form_data(
        partner,
        **{"patient_phone": "(402) 555-0101", "reason": "Chronic knee pain", **overrides},
    )


def test_a_coordinator_logs_a_referral(client_for, coordinator):
    provider = ProviderFactory()
    response = client_for(coordinator).post(reverse("referrals:create"), _form_data(provider))
    referral = Referral.objects.get()
    assert response.url == referral.get_absolute_url()
    assert referral.status == Status.RECEIVED
    assert referral.created_by == coordinator
    assert referral.events.get().to_status == Status.RECEIVED


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"patient_dob": "2999-01-01"}, "cannot be in the future"),
        ({"received_at": "2099-01-01T10:00"}, "Received cannot be in the future"),
        ({"patient_last_name": ""}, "This field is required"),
        ({"provider": "999999"}, "Choose a partner from the list"),
        ({"patient_dob": "not a date"}, "Enter a valid date"),
        ({"patient_phone": "abc"}, "Not a US phone number"),
    ],
)
def test_bad_referral_input_re_renders_with_the_reason_and_keeps_what_was_typed(
    client_for, coordinator, overrides, message
):
    provider = ProviderFactory()
    response = client_for(coordinator).post(
        reverse("referrals:create"), _form_data(provider, **overrides)
    )
    page = response.content.decode()
    assert response.status_code == 200
    assert message in page
    assert "Chronic knee pain" in page
    assert not Referral.objects.exists()


def test_a_phone_number_that_cannot_be_dialled_is_shown_as_text_not_as_a_call_link(
    client_for, coordinator
):
    # A row saved before phones were checked, or imported as the sender wrote it.
    bad = _logged(provider=ProviderFactory(), patient_phone="abc")
    good = _logged(provider=ProviderFactory(), patient_phone="(402) 555-0101 x7")
    client = client_for(coordinator)
    page = client.get(bad.get_absolute_url()).content.decode()
    assert "abc" in page
    assert "tel:" not in page
    page = client.get(good.get_absolute_url()).content.decode()
    assert '<a href="tel:+14025550101;ext=7">(402) 555-0101 x7</a>' in page


def test_the_htmx_transition_returns_only_the_workflow_region(client_for, coordinator):
    referral = _logged(provider=ProviderFactory())
    response = client_for(coordinator).post(
        reverse("referrals:transition", args=[referral.pk]),
        {"to_status": "accepted"},
        HTTP_HX_REQUEST="true",
    )
    page = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in page
    assert 'data-testid="status">Accepted<' in page
    referral.refresh_from_db()
    assert referral.status == Status.ACCEPTED


def test_an_illegal_transition_by_url_shows_a_message_not_an_error(client_for, coordinator):
    referral = _logged(provider=ProviderFactory())
    response = client_for(coordinator).post(
        reverse("referrals:transition", args=[referral.pk]),
        {"to_status": "closed"},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 200
    assert "cannot move to closed" in response.content.decode()
    referral.refresh_from_db()
    assert referral.status == Status.RECEIVED


def test_a_made_up_status_is_refused(client_for, coordinator):
    referral = _logged(provider=ProviderFactory())
    response = client_for(coordinator).post(
        reverse("referrals:transition", args=[referral.pk]), {"to_status": "teleported"}
    )
    assert response.status_code == 200
    assert "Select a valid choice" in response.content.decode()
    referral.refresh_from_db()
    assert referral.status == Status.RECEIVED


def test_a_liaison_sees_their_partners_referrals_with_initials_only(
    client_for, liaison, other_liaison
):
    referral = _logged(
        provider=ProviderFactory(owner=liaison),
        patient_first_name="Ruth",
        patient_last_name="Olsen",
    )
    page = client_for(liaison).get(referral.get_absolute_url()).content.decode()
    assert "R.O." in page
    assert "Olsen" not in page
    assert "Chronic" not in page  # the clinical reason is patient data too
    # A colleague's partner's referral is not found, by URL or in the queue.
    assert client_for(other_liaison).get(referral.get_absolute_url()).status_code == 404
    assert "R.O." not in client_for(other_liaison).get(reverse("referrals:list")).content.decode()


def test_a_liaison_can_neither_move_nor_delete_a_referral(client_for, liaison):
    referral = _logged(provider=ProviderFactory(owner=liaison))
    client = client_for(liaison)
    transition = client.post(
        reverse("referrals:transition", args=[referral.pk]), {"to_status": "accepted"}
    )
    delete = client.post(reverse("referrals:delete", args=[referral.pk]))
    assert transition.status_code == 403
    assert delete.status_code == 403
    referral.refresh_from_db()
    assert referral.status == Status.RECEIVED


def test_a_referral_a_role_cannot_read_is_not_found_even_to_change(client_for, other_liaison):
    """Only a record the user may read gets the 403 that says why: another liaison's
    referral stays a 404, so its number does not confirm it exists."""
    referral = ReferralFactory(provider=ProviderFactory(owner=UserFactory(role=Role.LIAISON)))
    client = client_for(other_liaison)
    assert client.post(reverse("referrals:transition", args=[referral.pk])).status_code == 404
    assert client.get(referral.get_absolute_url()).status_code == 404


def test_a_coordinator_sees_the_patient_and_a_manager_may_delete(client_for, coordinator, manager):
    referral = _logged(provider=ProviderFactory(), patient_last_name="Olsen")
    assert "Olsen" in client_for(coordinator).get(referral.get_absolute_url()).content.decode()
    assert (
        client_for(coordinator).post(reverse("referrals:delete", args=[referral.pk])).status_code
        == 403
    )
    response = client_for(manager).post(reverse("referrals:delete", args=[referral.pk]))
    assert response.status_code == 302
    assert not Referral.objects.exists()


def test_the_work_queue_filters_by_status_direction_and_partner(client_for, coordinator):
    wiebe = ProviderFactory(last_name="Wiebe")
    inbound = _logged(provider=wiebe, patient_last_name="Zebulon")
    _logged(provider=wiebe, patient_last_name="Quimby", direction="outbound")
    _logged(provider=ProviderFactory(), patient_last_name="Xanderson")
    client = client_for(coordinator)
    page = client.get(
        reverse("referrals:list"),
        {"direction": "inbound", "provider": wiebe.pk, "status": "received"},
    ).content.decode()
    assert "Zebulon" in page
    assert "Quimby" not in page and "Xanderson" not in page
    assert inbound.get_absolute_url() in page


def test_bad_filter_values_are_reported_not_crashed_on(client_for, coordinator):
    response = client_for(coordinator).get(
        reverse("referrals:list"), {"received_after": "yesterday", "page": "x"}
    )
    assert response.status_code == 200
    assert "These filters were left out" in response.content.decode()
    assert "Received from: Enter a valid date." in response.content.decode()


def test_the_work_queue_runs_the_same_queries_for_3_and_30_referrals(
    client_for, coordinator, django_assert_num_queries
):
    client = client_for(coordinator)
    url = reverse("referrals:list")
    for _ in range(3):
        _logged(provider=ProviderFactory(), assigned_to=coordinator)
    client.get(url)
    # 8: session, user, role and permissions; SLA targets; the count and the page; the
    # patient-data audit rows for the whole page (one INSERT); the coordinators, read once
    # for both the filter and the bulk form.
    with django_assert_num_queries(8) as small:
        client.get(url)
    for _ in range(27):
        _logged(provider=ProviderFactory(), assigned_to=coordinator)
    with django_assert_num_queries(len(small.captured_queries)):
        client.get(url)


def test_the_queue_offers_the_coordinators_in_its_filter_and_its_bulk_form(
    client_for, coordinator, manager
):
    coordinator.first_name, coordinator.last_name = "Ines", "Quarles"
    coordinator.save()
    page = client_for(manager).get(reverse("referrals:list")).content.decode()
    for name in ("assigned_to", "assign_to"):
        select = re.search(rf'<select name="{name}".*?</select>', page, re.S)
        assert select, name
        assert re.search(rf'<option value="{coordinator.pk}"[^>]*>Ines Quarles</option>', select[0])


def test_the_referral_detail_runs_the_same_queries_however_long_its_history(
    client_for, coordinator, django_assert_num_queries
):
    from referrals.services.workflow import referral_transition

    client = client_for(coordinator)
    referral = _logged(provider=ProviderFactory())
    client.get(referral.get_absolute_url())
    # 12: session, user, role and permissions; the SLA targets; the referral with its
    # partner, people, intake submission and SLA state; the audit row (one INSERT); its
    # documents, the duplicate check, tasks, letters, the coordinators for reassigning,
    # and its history.
    with django_assert_num_queries(12) as few:
        client.get(referral.get_absolute_url())
    for status in ("on_hold", "accepted", "on_hold", "accepted", "on_hold", "accepted"):
        referral = referral_transition(referral=referral, to_status=status, actor=coordinator)
    with django_assert_num_queries(len(few.captured_queries)):
        client.get(referral.get_absolute_url())


def test_the_queue_filter_built_once_still_offers_people_added_later(client_for, manager):
    client = client_for(manager)
    client.get(reverse("referrals:list"))
    newcomer = UserFactory(first_name="Zelda", last_name="Newcomb", role=Role.COORDINATOR)
    page = client.get(reverse("referrals:list")).content.decode()
    select = re.search(r'<select name="assigned_to".*?</select>', page, re.S)[0]
    assert 'class="form-select"' in select and 'aria-label="Coordinator"' in select
    assert f'<option value="{newcomer.pk}">Zelda Newcomb</option>' in select


def test_a_coordinator_puts_a_referral_on_hold_saying_what_is_needed(client_for, coordinator):
    referral = _logged(provider=ProviderFactory())
    client = client_for(coordinator)
    page = client.get(referral.get_absolute_url()).content.decode()
    assert 'name="hold_reason"' in page and "What is needed before it can go on?" in page
    client.post(
        reverse("referrals:transition", args=[referral.pk]),
        {"to_status": "on_hold", "hold_reason": "The <b>X-rays</b>, please."},
    )
    referral.refresh_from_db()
    assert (referral.status, referral.hold_reason) == ("on_hold", "The <b>X-rays</b>, please.")
    page = client.get(referral.get_absolute_url()).content.decode()
    assert "On hold for: The &lt;b&gt;X-rays&lt;/b&gt;, please." in page


def test_a_coordinator_cancels_a_referral_saying_why(client_for, coordinator):
    referral = _logged(provider=ProviderFactory())
    client = client_for(coordinator)
    page = client.get(referral.get_absolute_url()).content.decode()
    assert 'name="cancel_reason"' in page and "Why is it cancelled?" in page
    transition = reverse("referrals:transition", args=[referral.pk])

    refused = client.post(transition, {"to_status": "cancelled", "cancel_reason": " "}, follow=True)
    assert "Say why the referral is cancelled." in refused.content.decode()
    referral.refresh_from_db()
    assert referral.status == "received"

    client.post(
        transition,
        {"to_status": "cancelled", "cancel_reason": "We could not reach <i>the patient</i>."},
    )
    referral.refresh_from_db()
    assert (referral.status, referral.cancel_reason) == (
        "cancelled",
        "We could not reach <i>the patient</i>.",
    )
    page = client.get(referral.get_absolute_url()).content.decode()
    assert "Cancelled: We could not reach &lt;i&gt;the patient&lt;/i&gt;." in page


def test_the_reason_fields_suggest_words_written_for_the_referring_office(client_for, coordinator):
    from referrals.models import REASON_SUGGESTIONS

    referral = _logged(provider=ProviderFactory())
    client = client_for(coordinator)
    page = client.get(referral.get_absolute_url()).content.decode()
    for status, name in (("declined", "decline"), ("on_hold", "hold"), ("cancelled", "cancel")):
        field = re.search(rf'<input[^>]*name="{name}_reason"[^>]*>', page)[0]
        assert f'list="reasons-{status}-{referral.pk}"' in field
        datalist = re.search(
            rf'<datalist id="reasons-{status}-{referral.pk}">(.*?)</datalist>', page, re.S
        )[1]
        assert datalist.count("<option") == len(REASON_SUGGESTIONS[status])
    assert "We could not reach the patient after three calls and a letter." in page

    queue = client.get(reverse("referrals:list")).content.decode()
    assert re.search(r'<input[^>]*name="reason"[^>]*list="bulk-reasons"', queue)
    bulk = re.search(r'<datalist id="bulk-reasons">(.*?)</datalist>', queue, re.S)[1]
    assert "The patient chose to be seen at another practice." in bulk
    assert "The condition is outside our scope of practice." in bulk


@pytest.mark.parametrize(
    ("field", "question", "required"),
    [
        ("decline_reason", "Why is it declined?", True),
        ("hold_reason", "What is needed before it can go on? (optional)", False),
        ("cancel_reason", "Why is it cancelled?", True),
    ],
)
def test_each_reason_input_has_its_own_label_rule_and_help_for_an_inbound_referral(
    client_for, coordinator, field, question, required
):
    referral = _logged(provider=ProviderFactory())
    page = client_for(coordinator).get(referral.get_absolute_url()).content.decode()
    field_id = f"{field}-{referral.pk}"
    assert f'<label class="form-label small" for="{field_id}">{question}</label>' in page
    tag = re.search(rf'<input [^>]*id="{field_id}"[^>]*>', page)[0]
    assert f'name="{field}"' in tag
    assert (" required" in tag) is required
    assert f'aria-describedby="{field_id}-help"' in tag
    assert re.search(
        rf'<div class="form-text mb-2" id="{field_id}-help">[^<]*referring office', page
    )


def test_an_outbound_referral_s_reason_inputs_do_not_speak_of_the_referring_office(
    client_for, coordinator
):
    referral = _logged(provider=ProviderFactory(), direction="outbound")
    page = client_for(coordinator).get(referral.get_absolute_url()).content.decode()
    assert f'id="cancel_reason-{referral.pk}"' in page
    assert (
        "aria-describedby"
        not in re.search(rf'<input [^>]*id="cancel_reason-{referral.pk}"[^>]*>', page)[0]
    )
    assert "referring office is" not in page


def test_the_referral_shows_its_sla_clocks_and_a_move_redraws_them(client_for, coordinator):
    late = _logged(
        provider=ProviderFactory(), urgency="stat", received_at=timezone.now() - timedelta(hours=5)
    )
    client = client_for(coordinator)
    page = client.get(late.get_absolute_url()).content.decode()
    sla = re.search(r'data-testid="sla">(.*?)</ul>', page, re.S)[1]
    assert "First contact overdue" in sla
    assert "due by" in sla and "late)" in sla
    assert "Appointment target: by" in sla
    moved = client.post(
        reverse("referrals:transition", args=[late.pk]),
        {"to_status": "accepted"},
        HTTP_HX_REQUEST="true",
    ).content.decode()
    sla = re.search(r'data-testid="sla">(.*?)</ul>', moved, re.S)[1]
    assert "First contact overdue" not in sla
    assert "after it came in" in sla
    # The contact came after its target: that stays on the page.
    assert "past the target)" in sla and "data-late-contact" in sla
    # Cancelled: no clock runs any more, so no "On track" and no appointment target.
    ended = client.post(
        reverse("referrals:transition", args=[late.pk]),
        {"to_status": "cancelled", "cancel_reason": "Patient moved away"},
        HTTP_HX_REQUEST="true",
    ).content.decode()
    sla = re.search(r'data-testid="sla">(.*?)</ul>', ended, re.S)[1]
    assert ">Ended</span>" in sla and "On track" not in sla
    assert "Appointment target" not in sla and "past the target)" in sla


def test_patient_fields_stay_out_of_a_shared_workstations_autofill(client_for, coordinator):
    client = client_for(coordinator)
    for url in (reverse("referrals:create"), reverse("referrals:refer_out")):
        page = client.get(url).content.decode()
        for name in ("patient_first_name", "patient_last_name", "patient_dob", "patient_phone"):
            field = re.search(rf'<input[^>]*name="{name}"[^>]*>', page)
            assert field is not None and 'autocomplete="off"' in field.group(0), (url, name)
