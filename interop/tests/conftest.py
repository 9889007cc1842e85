"""Fixtures for the API tests: a token for a user and a client that sends it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client

from interop.services import api_token_create


@pytest.fixture
def token_for(db: None) -> Callable[[Any], str]:
    def make(user: Any) -> str:
        return api_token_create(user=user, days=30)[1]

    return make


@pytest.fixture
def api_client_for(token_for: Callable[[Any], str]) -> Callable[[Any], Client]:
    """A client that authenticates as `user` by a token, with no session."""

    def make(user: Any) -> Client:
        return Client(headers={"Authorization": f"Bearer {token_for(user)}"})

    return make
