from __future__ import annotations

from typing import Any

import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, User

from core.roles import Role, sync_roles_after_migrate

DEMO_PASSWORD = "demo-pass-2026"  # noqa: S105 - demo data only, printed by `make run`


def _give_role(user: User, create: bool, extracted: str | None, **kwargs: Any) -> None:
    """UserFactory(role=...): the user joins that role's group."""
    if not create or not extracted:
        return
    if not Group.objects.filter(name=extracted).exists():
        # A flush that skipped post_migrate (a serialized_rollback test) leaves no roles.
        sync_roles_after_migrate()
    group = Group.objects.get(name=extracted)
    user.groups.add(group)
    if extracted == Role.ADMINISTRATOR:
        user.is_staff = True
        user.save(update_fields=["is_staff"])


class UserFactory(factory.django.DjangoModelFactory[User]):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    first_name = factory.Faker("first_name")
    last_name = factory.Faker("last_name")
    email = factory.LazyAttribute(lambda user: f"{user.username}@example.org")
    password = factory.django.Password(DEMO_PASSWORD)

    role = factory.PostGeneration(_give_role)
