import io

import pytest
from django.core.management import call_command
from django.utils import timezone

from outreach.models import ComplianceLimit, Event, PlannedVisit

pytestmark = pytest.mark.django_db


def test_the_demo_data_gives_the_liaison_a_day_plan_a_limit_and_an_event():
    call_command("seed_demo", referrals=20, stdout=io.StringIO())
    today = timezone.localdate()
    visits = PlannedVisit.objects.filter(liaison__username="liaison", planned_on=today)
    assert visits.count() == 4
    assert ComplianceLimit.objects.filter(year=today.year).exists()
    assert Event.objects.get().invitations.exists()
