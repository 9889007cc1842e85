"""Fixtures for the accounts tests: an administrator signed in to the Django admin."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client

from core.factories import UserFactory


@pytest.fixture
def superuser(db: None) -> User:
    return UserFactory.create(username="root", is_staff=True, is_superuser=True)


@pytest.fixture
def back_office(superuser: User) -> Client:
    client = Client()
    client.force_login(superuser)
    return client
