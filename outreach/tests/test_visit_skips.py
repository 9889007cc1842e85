"""Skipping a planned visit says who, when and why, as a history row."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.urls import reverse

from outreach.factories import PlannedVisitFactory
from outreach.models import Activity, PlannedVisit, PlannedVisitEvent
from outreach.services.day_plan import planned_visit_log, planned_visit_skip
from partners.factories import OrganizationFactory, ProviderFactory

pytestmark = pytest.mark.django_db


def test_a_skip_records_who_when_and_why_on_the_plan_and_the_partner_timeline(client_for, liaison):
    liaison.first_name = "Jamie"
    liaison.save()
    office = OrganizationFactory(name="Dundee Family Practice")
    partner = ProviderFactory(organization=office, owner=liaison)
    visit = PlannedVisitFactory(liaison=liaison, organization=office)
    client = client_for(liaison)

    response = client.post(
        reverse("outreach:planned_visit_skip", args=[visit.pk]),
        {"reason": "  Office closed for staff training  "},
        follow=True,
    )

    visit.refresh_from_db()
    assert visit.status == PlannedVisit.Status.SKIPPED
    change = PlannedVisitEvent.objects.get()
    assert (change.visit, change.actor, change.from_status, change.to_status) == (
        visit,
        liaison,
        "planned",
        "skipped",
    )
    assert change.reason == "Office closed for staff training"
    assert change.at is not None
    plan = response.content.decode()
    history = plan.split('data-testid="visit-history"')[1].split("</ul>")[0]
    assert "Skipped</span> by Jamie" in history
    assert "Office closed for staff training" in history
    timeline = client.get(partner.get_absolute_url()).content.decode().split("Timeline")[1]
    assert "skipped by Jamie" in timeline
    assert "Office closed for staff training" in timeline


def test_a_skip_without_a_reason_re_renders_the_form_and_skips_nothing(client_for, liaison):
    visit = PlannedVisitFactory(liaison=liaison)
    url = reverse("outreach:planned_visit_skip", args=[visit.pk])
    response = client_for(liaison).post(url, {"reason": "   "})
    assert response.status_code == 200
    assert "This field is required." in response.content.decode()
    assert client_for(liaison).get(url).status_code == 200
    visit.refresh_from_db()
    assert visit.status == PlannedVisit.Status.PLANNED
    assert not PlannedVisitEvent.objects.exists()


def test_only_the_visits_liaison_may_skip_it(client_for, liaison, other_liaison, manager):
    visit = PlannedVisitFactory(liaison=liaison)
    url = reverse("outreach:planned_visit_skip", args=[visit.pk])
    for user in (other_liaison, manager):
        assert client_for(user).get(url).status_code == 404
        assert client_for(user).post(url, {"reason": "not mine"}).status_code == 404
    assert not PlannedVisitEvent.objects.exists()


def test_a_second_skip_or_a_skip_after_logging_changes_nothing(liaison):
    skipped = PlannedVisitFactory(liaison=liaison)
    planned_visit_skip(visit=skipped, actor=liaison, reason="Doctor out")
    planned_visit_skip(visit=skipped, actor=liaison, reason="Tapped twice")
    assert list(PlannedVisitEvent.objects.values_list("reason", flat=True)) == ["Doctor out"]

    logged = PlannedVisitFactory(liaison=liaison)
    planned_visit_log(
        visit=logged,
        activity=Activity(kind=Activity.Kind.VISIT),
        providers=[],
        staff=[],
        actor=liaison,
    )
    planned_visit_skip(visit=logged, actor=liaison, reason="Too late")
    logged.refresh_from_db()
    assert logged.status == PlannedVisit.Status.DONE
    assert list(logged.events.values_list("to_status", "actor")) == [("done", liaison.pk)]
    with pytest.raises(ValidationError):
        planned_visit_skip(visit=PlannedVisitFactory(liaison=liaison), actor=liaison, reason=" ")


def test_the_database_refuses_a_skip_without_a_reason(liaison):
    visit = PlannedVisitFactory(liaison=liaison)
    with pytest.raises(IntegrityError), transaction.atomic():
        PlannedVisitEvent.objects.create(
            visit=visit, from_status="planned", to_status="skipped", actor=liaison
        )
