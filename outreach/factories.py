from __future__ import annotations

from datetime import timedelta

import factory
from django.utils import timezone

from core.factories import UserFactory
from outreach.models import Activity, Event, PlannedVisit, Task
from partners.factories import OrganizationFactory


class ActivityFactory(factory.django.DjangoModelFactory[Activity]):
    class Meta:
        model = Activity

    kind = Activity.Kind.VISIT
    occurred_at = factory.LazyFunction(timezone.now)
    logged_by = factory.SubFactory(UserFactory)
    notes = factory.Faker("sentence", nb_words=14)


class TaskFactory(factory.django.DjangoModelFactory[Task]):
    class Meta:
        model = Task

    kind = Task.Kind.FOLLOW_UP
    title = factory.Faker("sentence", nb_words=5)
    due_on = factory.LazyFunction(timezone.localdate)
    assignee = factory.SubFactory(UserFactory)


class PlannedVisitFactory(factory.django.DjangoModelFactory[PlannedVisit]):
    class Meta:
        model = PlannedVisit

    liaison = factory.SubFactory(UserFactory)
    organization = factory.SubFactory(OrganizationFactory)
    planned_on = factory.LazyFunction(timezone.localdate)
    position = factory.Sequence(lambda n: n)


class EventFactory(factory.django.DjangoModelFactory[Event]):
    class Meta:
        model = Event

    name = "Annual referral-partner dinner"
    kind = Event.Kind.ANNUAL_MEETING
    starts_at = factory.LazyFunction(lambda: timezone.now() + timedelta(days=14))
    place = "Riverside Country Club"
