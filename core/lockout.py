"""The username django-axes records for a login attempt."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

# AccessAttempt.username is a varchar(255); Postgres refuses longer values (SQLite keeps
# them), so a hostile 20,000-character username would turn a failed login into a 500.
USERNAME_LIMIT = 255


def lockout_username(request: HttpRequest, credentials: dict[str, Any] | None) -> str | None:
    if credentials:
        username = credentials.get("username")
    else:
        username = getattr(request, "data", request.POST).get("username")
    return str(username)[:USERNAME_LIMIT] if username else None
