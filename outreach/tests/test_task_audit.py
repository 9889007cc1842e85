"""A task about a referral is titled with its patient's initials ("Thank Dr. Wiebe for
referring R.O."). Every page that shows such a title is a read of the patient's name for
the roles allowed to see patient details, written to the audit trail as a list of referrals
is: the task list, a task's page, the row redrawn when one is done, the dashboard, the
partner 360 page and the day plan. Roles that see initials only (liaisons) see the same
initials on referral lists unrecorded, so their task pages write nothing either."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from audit.models import PatientDataAccess
from outreach.factories import PlannedVisitFactory, TaskFactory
from outreach.models import Task
from partners.factories import ProviderFactory
from referrals.factories import ReferralFactory

pytestmark = pytest.mark.django_db

Action = PatientDataAccess.Action
NAMES = ["patient_first_name", "patient_last_name"]


def _thank_you(assignee, *, provider=None, **kwargs):
    referral = ReferralFactory(patient_first_name="Rosa", patient_last_name="Ortiz")
    return TaskFactory(
        kind=Task.Kind.THANK_YOU,
        title=f"Thank {referral.provider.display_name} for referring R.O.",
        referral=referral,
        provider=provider or referral.provider,
        assignee=assignee,
        **kwargs,
    )


def _trail():
    return list(
        PatientDataAccess.objects.order_by("pk").values_list(
            "action", "referral_id", "user_id", "fields"
        )
    )


@pytest.mark.parametrize("role", ["manager", "coordinator"])
def test_the_task_list_records_the_patients_its_titles_name(client_for, request, role):
    user = request.getfixturevalue(role)
    task = _thank_you(user)
    TaskFactory(assignee=user, title="Drop off the new brochures")  # about no patient
    page = client_for(user).get(reverse("outreach:task_list")).content.decode()
    assert "for referring R.O." in page and "Drop off the new brochures" in page
    assert _trail() == [(Action.LIST, task.referral_id, user.pk, NAMES)]


def test_paging_the_task_list_with_htmx_records_the_tasks_it_redraws(client_for, manager):
    task = _thank_you(manager)
    response = client_for(manager).get(reverse("outreach:task_list"), HTTP_HX_REQUEST="true")
    assert "for referring R.O." in response.content.decode()
    assert _trail() == [(Action.LIST, task.referral_id, manager.pk, NAMES)]


def test_a_liaison_sees_the_initials_in_their_task_list_as_on_referral_lists_unrecorded(
    client_for, liaison
):
    _thank_you(liaison)
    page = client_for(liaison).get(reverse("outreach:task_list")).content.decode()
    assert "for referring R.O." in page
    assert _trail() == []


def test_the_task_list_audits_in_the_same_queries_however_many_tasks_it_shows(
    client_for, manager, django_assert_num_queries
):
    client = client_for(manager)
    url = reverse("outreach:task_list")
    _thank_you(manager)
    client.get(url)  # warm the session and permission caches
    with django_assert_num_queries(6) as few:
        client.get(url)
    assert sum("INSERT" in q["sql"] for q in few.captured_queries) == 1
    for _ in range(30):
        _thank_you(manager)
    before = PatientDataAccess.objects.count()
    with django_assert_num_queries(len(few.captured_queries)):
        response = client.get(url)
    # A page of 25 tasks, one row each, in the one INSERT.
    assert PatientDataAccess.objects.count() - before == 25
    assert response.content.decode().count("for referring R.O.") == 25


def test_a_tasks_page_records_a_view_of_the_patient_its_title_names(client_for, manager):
    task = _thank_you(manager)
    other = TaskFactory(assignee=manager, title="Call the office manager")
    client = client_for(manager)
    page = client.get(task.get_absolute_url()).content.decode()
    assert "for referring R.O." in page
    assert client.get(other.get_absolute_url()).status_code == 200
    assert _trail() == [(Action.VIEW, task.referral_id, manager.pk, NAMES)]


def test_a_tasks_page_records_nothing_for_a_liaison(client_for, liaison):
    task = _thank_you(liaison)
    assert client_for(liaison).get(task.get_absolute_url()).status_code == 200
    assert _trail() == []


@pytest.mark.parametrize("htmx", [True, False])
def test_marking_a_task_done_records_its_title_shown_again(client_for, coordinator, htmx):
    task = _thank_you(coordinator)
    client = client_for(coordinator)
    headers = {"HTTP_HX_REQUEST": "true"} if htmx else {}
    response = client.post(reverse("outreach:task_complete", args=[task.pk]), **headers)
    if htmx:
        assert "for referring R.O." in response.content.decode()
    else:
        # The message on the next page names it.
        assert response.status_code == 302
    assert _trail() == [(Action.LIST, task.referral_id, coordinator.pk, NAMES)]


def test_the_dashboard_records_the_patients_named_by_its_due_tasks(client_for, coordinator):
    task = _thank_you(coordinator)
    page = client_for(coordinator).get(reverse("core:dashboard")).content.decode()
    assert "for referring R.O." in page
    listed = PatientDataAccess.objects.filter(action=Action.LIST, user=coordinator)
    # The task's referral is also among the recent ones: recorded once.
    assert list(listed.values_list("referral_id", flat=True)) == [task.referral_id]


def test_the_dashboard_records_a_task_whose_referral_is_not_among_the_recent_ones(
    client_for, manager
):
    task = _thank_you(manager)
    for _ in range(8):
        ReferralFactory()  # newer: the task's referral drops off the recent list
    response = client_for(manager).get(reverse("core:dashboard"))
    assert task.referral not in response.context["recent_referrals"]
    listed = set(
        PatientDataAccess.objects.filter(action=Action.LIST).values_list("referral_id", flat=True)
    )
    assert task.referral_id in listed


def test_partner_360_records_the_patients_named_by_its_tasks(client_for, manager, liaison):
    # The task is on this partner's page, its referral (another partner's) is not.
    task = _thank_you(liaison, provider=ProviderFactory())
    page = client_for(manager).get(task.provider.get_absolute_url()).content.decode()
    assert "for referring R.O." in page
    listed = PatientDataAccess.objects.filter(action=Action.LIST, user=manager)
    assert list(listed.values_list("referral_id", flat=True)) == [task.referral_id]


def test_the_day_plan_records_the_patients_named_on_its_cards_and_suggestions(client_for, manager):
    on_card = _thank_you(manager)
    PlannedVisitFactory(liaison=manager, organization=on_card.provider.organization)
    suggested = _thank_you(manager, due_on=timezone.localdate() - timedelta(days=3))
    page = client_for(manager).get(reverse("outreach:day_plan")).content.decode()
    assert page.count("for referring R.O.") == 2
    listed = PatientDataAccess.objects.filter(action=Action.LIST, user=manager)
    assert sorted(listed.values_list("referral_id", flat=True)) == sorted(
        [on_card.referral_id, suggested.referral_id]
    )


def test_the_task_admin_records_the_patients_its_titles_name(client_for, administrator):
    task = _thank_you(administrator)
    TaskFactory(assignee=administrator, title="Restock the brochures")
    client = client_for(administrator)
    listed = client.get(reverse("admin:outreach_task_changelist"))
    assert "for referring R.O." in listed.content.decode()
    opened = client.get(reverse("admin:outreach_task_change", args=[task.pk]))
    assert opened.status_code == 200
    assert _trail() == [
        (Action.LIST, task.referral_id, administrator.pk, NAMES),
        (Action.VIEW, task.referral_id, administrator.pk, NAMES),
    ]
