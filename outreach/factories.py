from __future__ import annotations

import factory
from django.utils import timezone

from core.factories import UserFactory
from outreach.models import Activity, Task


class ActivityFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Activity

    kind = Activity.Kind.VISIT
    occurred_at = factory.LazyFunction(timezone.now)
    logged_by = factory.SubFactory(UserFactory)
    notes = factory.Faker("sentence", nb_words=14)


class TaskFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Task

    kind = Task.Kind.FOLLOW_UP
    title = factory.Faker("sentence", nb_words=5)
    due_on = factory.LazyFunction(timezone.localdate)
    assignee = factory.SubFactory(UserFactory)
