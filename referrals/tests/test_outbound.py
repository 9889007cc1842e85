"""Referring patients out: in-network specialists first, a reason for leaving the network,
and the consult report chased until it comes back."""

import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from outreach.models import Task
from partners.factories import ProviderFactory
from referrals.factories import ReferralFactory, referral_form_data
from referrals.models import Referral, Status
from referrals.services.consult_reports import (
    consult_report_reminders_create,
    referral_record_consult_report,
)
from referrals.services.workflow import referral_log, referral_transition

pytestmark = pytest.mark.django_db


def _form_data(specialist, **overrides):
    # The refer-out form has no direction: everything it sends is outbound.
    return referral_form_data(
        specialist,
        **{"direction": None, "reason": "Cardiology consult for new murmur", **overrides},
    )


def _sent(specialist, *, days_ago=0, **kwargs):
    referral = ReferralFactory.build(
        provider=specialist,
        direction="outbound",
        received_at=timezone.now() - timedelta(days=days_ago),
        out_of_network_reason="" if specialist.in_network else "Patient's insurance",
        **kwargs,
    )
    return referral_log(referral=referral, actor=None)


def test_in_network_specialists_come_first_in_the_picker(client_for, coordinator):
    ProviderFactory(last_name="Aardvark", specialty="Cardiology", in_network=False)
    ProviderFactory(last_name="Zimmer", specialty="Cardiology", in_network=True)
    page = (
        client_for(coordinator)
        .get(reverse("partners:provider_typeahead"), {"q": "Cardiology"})
        .content.decode()
    )
    assert page.index("Zimmer") < page.index("Aardvark")
    assert page.count("In network") == 1


def test_referring_out_to_an_in_network_specialist_needs_no_reason(client_for, coordinator):
    specialist = ProviderFactory(in_network=True)
    response = client_for(coordinator).post(reverse("referrals:refer_out"), _form_data(specialist))
    referral = Referral.objects.get()
    assert response.url == referral.get_absolute_url()
    assert referral.direction == Referral.Direction.OUTBOUND
    assert referral.in_network is True
    assert referral.events.get().to_status == Status.RECEIVED


def test_an_out_of_network_specialist_asks_why_and_keeps_what_was_typed(client_for, coordinator):
    specialist = ProviderFactory(in_network=False, last_name="Faraway")
    client = client_for(coordinator)
    response = client.post(reverse("referrals:refer_out"), _form_data(specialist))
    page = response.content.decode()
    assert response.status_code == 200
    assert "is out of network: say why" in page
    assert "Cardiology consult for new murmur" in page
    assert not Referral.objects.exists()
    client.post(
        reverse("referrals:refer_out"),
        _form_data(specialist, out_of_network_reason="Only sub-specialist in the state"),
    )
    referral = Referral.objects.get()
    assert referral.in_network is False
    assert referral.out_of_network_reason == "Only sub-specialist in the state"


def test_every_way_of_sending_a_patient_out_of_network_asks_why(client_for, coordinator):
    """Not only the refer-out form: the general entry form with Direction "outbound", and
    an edit that moves a referral to an out-of-network specialist, ask for the reason the
    leakage report shows; an edit that keeps the specialist keeps the sent-day snapshot."""
    faraway = ProviderFactory(in_network=False, last_name="Faraway")
    nearby = ProviderFactory(in_network=True)
    client = client_for(coordinator)
    entry = referral_form_data(faraway, direction="outbound")
    refused = client.post(reverse("referrals:create"), entry)
    assert "is out of network: say why" in refused.content.decode()
    assert not Referral.objects.exists()
    referral = _sent(nearby)
    edit = referral_form_data(
        faraway, direction="outbound", version=referral.updated_at.isoformat()
    )
    refused = client.post(reverse("referrals:update", args=[referral.pk]), edit)
    assert "is out of network: say why" in refused.content.decode()
    referral.refresh_from_db()
    assert (referral.provider, referral.in_network) == (nearby, True)
    client.post(
        reverse("referrals:update", args=[referral.pk]),
        {**edit, "out_of_network_reason": "Patient's insurance"},
    )
    referral.refresh_from_db()
    assert (referral.provider, referral.in_network) == (faraway, False)
    assert referral.out_of_network_reason == "Patient's insurance"
    # The partner joins the network later: the referral was still sent out of it, so its
    # reason cannot be cleared (the page says when it was out), while other edits go on.
    faraway.in_network = True
    faraway.save()
    again = {**edit, "version": referral.updated_at.isoformat()}
    refused = client.post(
        reverse("referrals:update", args=[referral.pk]), {**again, "out_of_network_reason": ""}
    )
    assert "was out of network when they were sent: say why" in refused.content.decode()
    client.post(
        reverse("referrals:update", args=[referral.pk]),
        {**again, "out_of_network_reason": "Patient's insurance", "reason": "Follow-up visit"},
    )
    referral.refresh_from_db()
    assert (referral.reason, referral.in_network) == ("Follow-up visit", False)


def test_the_network_snapshot_does_not_change_when_the_partner_joins_later():
    specialist = ProviderFactory(in_network=False)
    referral = _sent(specialist)
    specialist.in_network = True
    specialist.save()
    referral.refresh_from_db()
    assert referral.in_network is False


def _seen(referral, *, days_ago=0):
    """Walked to seen by the specialist `days_ago` days ago."""
    seen_at = timezone.now() - timedelta(days=days_ago)
    for status in (Status.ACCEPTED, Status.SCHEDULED, Status.SEEN):
        referral = referral_transition(
            referral=referral,
            to_status=status,
            actor=None,
            appointment_at=max(seen_at, referral.received_at),
            at=seen_at if status == Status.SEEN else None,
        )
    return referral


def test_a_reminder_is_created_once_when_the_consult_report_is_late(settings, coordinator):
    settings.CONSULT_REPORT_REMINDER_DAYS = 14
    specialist = ProviderFactory(in_network=True)
    late = _seen(_sent(specialist, days_ago=40, assigned_to=coordinator), days_ago=20)
    _seen(_sent(specialist, days_ago=40), days_ago=3)  # not due yet
    # Sent long ago but not seen yet: there is no report to chase.
    not_seen = _sent(specialist, days_ago=60)
    not_seen = referral_transition(referral=not_seen, to_status=Status.ACCEPTED, actor=None)
    back = _seen(_sent(specialist, days_ago=40), days_ago=30)
    referral_record_consult_report(referral=back, actor=coordinator)
    cancelled = _sent(specialist, days_ago=30)
    referral_transition(
        referral=cancelled, to_status="cancelled", actor=None, cancel_reason="Duplicate"
    )
    inbound = referral_log(
        referral=ReferralFactory.build(
            provider=specialist, received_at=timezone.now() - timedelta(days=40)
        ),
        actor=None,
    )

    assert consult_report_reminders_create() == 1
    assert consult_report_reminders_create() == 0  # the nightly run is idempotent
    task = Task.objects.get()
    assert (task.referral, task.kind, task.assignee) == (
        late,
        Task.Kind.CONSULT_REPORT,
        coordinator,
    )
    assert not Task.objects.filter(referral__in=[back, cancelled, inbound, not_seen]).exists()


def test_a_reminder_goes_to_someone_still_here(settings, coordinator, manager):
    from core.factories import UserFactory
    from core.roles import Role

    settings.CONSULT_REPORT_REMINDER_DAYS = 14
    specialist = ProviderFactory(in_network=True)
    gone = UserFactory(role=Role.COORDINATOR, is_active=False)
    to_creator = _seen(_sent(specialist, days_ago=40, assigned_to=gone), days_ago=20)
    to_nobody = _seen(_sent(specialist, days_ago=40, assigned_to=gone), days_ago=20)
    # Logged by a coordinator still here, and by the one who left.
    Referral.objects.filter(pk=to_creator.pk).update(created_by=coordinator)
    Referral.objects.filter(pk=to_nobody.pk).update(created_by=gone)
    kept = _seen(_sent(specialist, days_ago=40, assigned_to=manager), days_ago=20)

    assert consult_report_reminders_create() == 3
    assignees = dict(Task.objects.values_list("referral", "assignee"))
    assert assignees == {to_creator.pk: coordinator.pk, to_nobody.pk: None, kept.pk: manager.pk}


def test_recording_the_consult_report_closes_its_reminder(settings, client_for, coordinator):
    settings.CONSULT_REPORT_REMINDER_DAYS = 14
    referral = _seen(_sent(ProviderFactory(in_network=True), days_ago=30), days_ago=20)
    consult_report_reminders_create()
    client = client_for(coordinator)
    page = client.get(referral.get_absolute_url()).content.decode()
    assert "Not back yet" in page and "Mark received" in page
    response = client.post(reverse("referrals:consult_report", args=[referral.pk]))
    assert response.url == referral.get_absolute_url()
    referral.refresh_from_db()
    assert referral.report_received_at is not None
    assert Task.objects.get().status == Task.Status.DONE
    # It is in the referral's history, once: a second click changes nothing.
    first = referral.report_received_at
    client.post(reverse("referrals:consult_report", args=[referral.pk]))
    referral.refresh_from_db()
    assert referral.report_received_at == first
    recorded = referral.events.filter(kind="edit").get()
    assert recorded.changes == [
        {"field": "Consult report", "old": "Not back yet", "new": "Received"}
    ]


def test_an_inbound_referral_has_no_consult_report_to_record(client_for, coordinator):
    referral = referral_log(referral=ReferralFactory.build(provider=ProviderFactory()), actor=None)
    response = client_for(coordinator).post(
        reverse("referrals:consult_report", args=[referral.pk]), follow=True
    )
    assert "Only a referral we sent out" in response.content.decode()
    referral.refresh_from_db()
    assert referral.report_received_at is None


def test_the_nightly_task_runs_the_reminders(settings):
    from referrals.tasks import remind_missing_consult_reports

    settings.CONSULT_REPORT_REMINDER_DAYS = 1
    referral = _seen(_sent(ProviderFactory(in_network=False), days_ago=9), days_ago=5)
    remind_missing_consult_reports.apply()
    assert Task.objects.get().referral == referral
    assert "remind-missing-consult-reports" in settings.CELERY_BEAT_SCHEDULE


def test_a_referral_sent_out_reads_as_one_we_sent_and_its_report_step_records_the_report(
    settings, client_for, coordinator
):
    settings.CONSULT_REPORT_REMINDER_DAYS = 14
    referral = _sent(ProviderFactory(in_network=True), days_ago=20)
    client = client_for(coordinator)
    page = client.get(referral.get_absolute_url()).content.decode()
    assert '<dt class="col-5">Sent</dt>' in page
    assert "Specialist accepted" in page and "Specialist declined" in page
    assert "thank-you to the referrer" not in page
    assert "consult report comes back" in page
    appointment = timezone.now()
    for status in (Status.ACCEPTED, Status.SCHEDULED, Status.SEEN):
        referral = referral_transition(
            referral=referral, to_status=status, actor=coordinator, appointment_at=appointment
        )
    # Two weeks after the visit the report is chased.
    assert consult_report_reminders_create(now=appointment + timedelta(days=15)) == 1
    page = client.get(referral.get_absolute_url()).content.decode()
    assert "Consult report received" in page  # the next step's button
    referral = referral_transition(
        referral=referral, to_status=Status.REPORT_SENT, actor=coordinator
    )
    assert referral.report_received_at is not None
    assert Task.objects.get(kind=Task.Kind.CONSULT_REPORT).status == Task.Status.DONE
    page = client.get(referral.get_absolute_url()).content.decode()
    assert ">Report received</span>" in page


def test_a_referral_sent_out_reads_as_sent_everywhere_with_no_clock_of_ours(
    client_for, coordinator
):
    specialist = ProviderFactory(in_network=True, last_name="Zimmer")
    referral = _sent(specialist, days_ago=3, urgency="stat")
    client = client_for(coordinator)

    detail = client.get(referral.get_absolute_url()).content.decode()
    queue = client.get(reverse("referrals:list")).content.decode()
    dashboard = client.get(reverse("core:dashboard")).content.decode()
    partner = client.get(reverse("partners:provider_detail", args=[specialist.pk]))

    assert referral.status_label == "Sent"
    assert 'data-testid="status">Sent</span>' in detail
    # The history's first entry, the queue's badge, the dashboard, the partner's timeline.
    assert "<strong>Sent</strong>" in detail and "<strong>Received</strong>" not in detail
    row = queue.split(f'data-queue-row="{referral.pk}"')[1].split("</tr>")[0]
    assert ">Sent</span>" in row
    assert "sent 3\xa0days ago" in row
    assert "waiting" not in row
    assert ">Sent</span>" in dashboard
    assert ">Sent</span>" in partner.content.decode()
    # Three days unanswered at STAT would be overdue for a referral to us: the targets are
    # ours to meet, not the specialist's.
    assert 'data-testid="sla"' not in detail and "First contact" not in detail
    assert "data-sla=" not in row and "due " not in row
    assert Referral.objects.with_sla().get().sla_state == "on_track"
    assert not Referral.objects.overdue().exists()


def test_a_step_taken_on_the_page_redraws_the_consult_report_cell_too(client_for, coordinator):
    referral = _sent(ProviderFactory(in_network=True), days_ago=10)
    for status in (Status.ACCEPTED, Status.SCHEDULED):
        referral = referral_transition(
            referral=referral, to_status=status, actor=None, appointment_at=timezone.now()
        )
    client = client_for(coordinator)
    page = client.get(referral.get_absolute_url()).content.decode()
    version = re.search(r'name="version" value="([^"]+)"', page)[1]
    assert page.count(' id="consult-report"') == 1 and "hx-swap-oob" not in page
    # "Seen by the specialist", taken with htmx: only the workflow is swapped, and the
    # consult report's cell comes along out of band, now offering "Mark received".
    response = client.post(
        reverse("referrals:transition", args=[referral.pk]),
        {"to_status": Status.SEEN, "version": version},
        HTTP_HX_REQUEST="true",
    )
    partial = response.content.decode()
    assert "<html" not in partial
    cell = re.search(r'<dd[^>]* id="consult-report"[^>]*>.*?</dd>', partial, re.S)
    assert cell is not None and 'hx-swap-oob="true"' in cell.group(0)
    assert reverse("referrals:consult_report", args=[referral.pk]) in cell.group(0)
    assert "Mark received" in cell.group(0)


def test_a_consult_report_cannot_be_marked_received_before_the_specialist_has_seen_the_patient(
    settings, client_for, coordinator
):
    settings.CONSULT_REPORT_REMINDER_DAYS = 14
    referral = _sent(ProviderFactory(in_network=True), days_ago=30)
    client = client_for(coordinator)
    mark = reverse("referrals:consult_report", args=[referral.pk])
    for status in (None, Status.ACCEPTED, Status.SCHEDULED):
        if status:
            referral = referral_transition(
                referral=referral, to_status=status, actor=None, appointment_at=timezone.now()
            )
        page = client.get(referral.get_absolute_url()).content.decode()
        assert "Not back yet" in page and "comes after the specialist sees the patient" in page
        assert mark not in page
        refused = client.post(mark, follow=True).content.decode()
        assert "only after the specialist has seen the patient" in refused
        referral.refresh_from_db()
        assert referral.report_received_at is None
    # Nor is it chased before then.
    assert consult_report_reminders_create() == 0

    referral = referral_transition(referral=referral, to_status=Status.SEEN, actor=None)
    page = client.get(referral.get_absolute_url()).content.decode()
    assert mark in page
    client.post(mark)
    referral.refresh_from_db()
    assert referral.report_received_at is not None


def test_a_reason_of_invisible_characters_only_is_no_reason_for_leaving_the_network(
    client_for, coordinator
):
    """The reason is stored without invisible characters (Referral.clean): one made of
    nothing else would be stored empty, and the leakage report would say "No reason
    given" for a referral the form accepted."""
    faraway = ProviderFactory(in_network=False, last_name="Faraway")
    response = client_for(coordinator).post(
        reverse("referrals:refer_out"),
        _form_data(faraway, out_of_network_reason="\u200b\u2060\ufeff"),
    )
    assert response.status_code == 200
    assert "is out of network: say why" in response.content.decode()
    assert not Referral.objects.exists()


def test_a_referral_corrected_to_one_received_drops_its_consult_report_reminder(
    settings, client_for, coordinator
):
    """Logged as sent out by mistake: the partner referred the patient to us, so there is
    no specialist's consult report to chase, and the reminder to chase it goes."""
    settings.CONSULT_REPORT_REMINDER_DAYS = 14
    referral = _seen(_sent(ProviderFactory(in_network=True), days_ago=40), days_ago=20)
    assert consult_report_reminders_create() == 1
    referral.refresh_from_db()
    edit = referral_form_data(
        referral.provider,
        received_at=f"{timezone.localtime(referral.received_at):%Y-%m-%dT%H:%M}",
        version=referral.updated_at.isoformat(),
    )
    response = client_for(coordinator).post(reverse("referrals:update", args=[referral.pk]), edit)
    assert response.status_code == 302
    referral.refresh_from_db()
    assert referral.direction == Referral.Direction.INBOUND
    assert Task.objects.get(referral=referral).status == Task.Status.CANCELLED
    assert not Task.objects.open().filter(kind=Task.Kind.CONSULT_REPORT).exists()


def test_a_consult_report_reminder_follows_its_referral_to_the_new_coordinator(
    settings, client_for, coordinator, manager
):
    """A coordinator's referrals handed to a colleague (in bulk from the queue, or one by
    one): the open reminders to chase their consult reports go with them, or they stay on
    the list of someone who no longer works those referrals and nobody chases."""
    from core.factories import UserFactory
    from core.roles import Role

    settings.CONSULT_REPORT_REMINDER_DAYS = 14
    colleague = UserFactory(username="colleague", role=Role.COORDINATOR)
    specialist = ProviderFactory(in_network=True)
    in_bulk = _seen(_sent(specialist, days_ago=40, assigned_to=coordinator), days_ago=20)
    one_by_one = _seen(_sent(specialist, days_ago=40, assigned_to=coordinator), days_ago=20)
    assert consult_report_reminders_create() == 2
    client = client_for(manager)
    in_bulk.refresh_from_db()
    client.post(
        reverse("referrals:bulk"),
        {"rows": [f"{in_bulk.pk}:{in_bulk.updated_at.isoformat()}"], "assign_to": colleague.pk},
    )
    one_by_one.refresh_from_db()
    client.post(
        reverse("referrals:assign", args=[one_by_one.pk]),
        {"assignee": colleague.pk, "version": one_by_one.updated_at.isoformat()},
    )
    assert set(Referral.objects.values_list("assigned_to", flat=True)) == {colleague.pk}
    reminders = Task.objects.filter(kind=Task.Kind.CONSULT_REPORT)
    assert set(reminders.values_list("assignee", flat=True)) == {colleague.pk}
    listed = client_for(colleague).get(reverse("outreach:task_list")).content.decode()
    assert f"Chase the consult report for referral #{in_bulk.pk}" in listed
    assert f"Chase the consult report for referral #{one_by_one.pk}" in listed


def test_a_reminder_nobody_holds_is_on_every_coordinator_s_list(settings, client_for, coordinator):
    """The referral's coordinator and whoever logged it have both left: the reminder is
    left unassigned so that every coordinator sees it, opens it and can mark it done."""
    from core.factories import UserFactory
    from core.roles import Role

    settings.CONSULT_REPORT_REMINDER_DAYS = 14
    gone = UserFactory(role=Role.COORDINATOR, is_active=False)
    referral = _seen(
        _sent(ProviderFactory(in_network=True), days_ago=40, assigned_to=gone), days_ago=20
    )
    Referral.objects.filter(pk=referral.pk).update(created_by=gone)
    assert consult_report_reminders_create() == 1
    reminder = Task.objects.get()
    assert reminder.assignee is None
    client = client_for(coordinator)
    listed = client.get(reverse("outreach:task_list")).content.decode()
    assert f"Chase the consult report for referral #{referral.pk}" in listed
    assert client.get(reminder.get_absolute_url()).status_code == 200
    client.post(reverse("outreach:task_complete", args=[reminder.pk]))
    reminder.refresh_from_db()
    assert reminder.status == Task.Status.DONE


def test_a_referral_given_back_to_nobody_gives_back_its_consult_report_reminder(
    settings, client_for, coordinator, manager
):
    """Unassigned (in bulk, one by one, or by an edit), a referral is nobody's to work
    until someone takes it: its reminder to chase the consult report is nobody's either,
    so it is on every coordinator's list rather than left with the one who let it go."""
    from core.factories import UserFactory
    from core.roles import Role

    settings.CONSULT_REPORT_REMINDER_DAYS = 14
    colleague = UserFactory(username="colleague", role=Role.COORDINATOR)
    specialist = ProviderFactory(in_network=True)
    in_bulk = _seen(_sent(specialist, days_ago=40, assigned_to=coordinator), days_ago=20)
    one_by_one = _seen(_sent(specialist, days_ago=40, assigned_to=coordinator), days_ago=20)
    assert consult_report_reminders_create() == 2
    client = client_for(manager)
    in_bulk.refresh_from_db()
    client.post(
        reverse("referrals:bulk"),
        {"rows": [f"{in_bulk.pk}:{in_bulk.updated_at.isoformat()}"], "unassign": "on"},
    )
    one_by_one.refresh_from_db()
    client.post(
        reverse("referrals:assign", args=[one_by_one.pk]),
        {"assignee": "", "version": one_by_one.updated_at.isoformat()},
    )
    assert set(Referral.objects.values_list("assigned_to", flat=True)) == {None}
    reminders = Task.objects.filter(kind=Task.Kind.CONSULT_REPORT)
    assert set(reminders.values_list("assignee", flat=True)) == {None}
    listed = client_for(colleague).get(reverse("outreach:task_list")).content.decode()
    assert f"Chase the consult report for referral #{in_bulk.pk}" in listed
    assert f"Chase the consult report for referral #{one_by_one.pk}" in listed


def test_referrals_entered_as_history_get_no_flood_of_reminders_on_the_first_night(settings):
    """Outbound referrals entered after the fact (sent and seen months ago, the report never
    recorded) are history, not work: each got a reminder the first night. Only a patient
    seen within the window (CONSULT_REPORT_REMINDER_WINDOW_DAYS) and long enough ago to be
    late has a report worth chasing."""
    settings.CONSULT_REPORT_REMINDER_DAYS = 21
    settings.CONSULT_REPORT_REMINDER_WINDOW_DAYS = 90
    specialist = ProviderFactory(in_network=True)
    history = [
        _seen(_sent(specialist, days_ago=days + 20), days_ago=days) for days in (91, 200, 700)
    ]
    edge_in = _seen(_sent(specialist, days_ago=109), days_ago=89)
    late = _seen(_sent(specialist, days_ago=40), days_ago=22)
    _seen(_sent(specialist, days_ago=25), days_ago=20)  # not due yet

    assert consult_report_reminders_create() == 2
    assert set(Task.objects.values_list("referral", flat=True)) == {edge_in.pk, late.pk}
    assert not Task.objects.filter(referral__in=history).exists()


def test_the_reminder_window_is_a_setting(settings):
    settings.CONSULT_REPORT_REMINDER_DAYS = 14
    settings.CONSULT_REPORT_REMINDER_WINDOW_DAYS = 30
    specialist = ProviderFactory(in_network=True)
    recent = _seen(_sent(specialist, days_ago=40), days_ago=20)
    _seen(_sent(specialist, days_ago=60), days_ago=40)

    assert consult_report_reminders_create() == 1
    assert Task.objects.get().referral == recent


@pytest.mark.parametrize(("delay", "window"), [("21", "21"), ("21", "10")])
def test_a_window_that_would_never_remind_stops_the_start(monkeypatch, delay, window):
    from django.core.exceptions import ImproperlyConfigured

    from referral_crm.settings import _consult_report_window_days

    monkeypatch.setenv("CONSULT_REPORT_REMINDER_WINDOW_DAYS", window)
    with pytest.raises(ImproperlyConfigured, match="CONSULT_REPORT_REMINDER_WINDOW_DAYS"):
        _consult_report_window_days(reminder_days=int(delay))


def test_the_default_window_leaves_a_late_report_over_two_months_to_be_chased(monkeypatch):
    from referral_crm.settings import _consult_report_window_days

    monkeypatch.delenv("CONSULT_REPORT_REMINDER_WINDOW_DAYS", raising=False)
    assert _consult_report_window_days(reminder_days=21) == 90
