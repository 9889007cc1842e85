"""How django-axes names the account a failed sign-in was for."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

# auth_user.username holds 150 characters and axes' record 255: anything longer is not a
# username anybody has, and storing it whole made a hostile sign-in attempt a server error.
MAX_USERNAME = 150


def client_username(request: HttpRequest, credentials: dict[str, Any] | None) -> str | None:
    source = credentials if credentials is not None else request.POST
    username = source.get("username")
    return str(username)[:MAX_USERNAME] if username is not None else None
