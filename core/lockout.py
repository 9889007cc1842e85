"""The username django-axes records for a login attempt."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

# axes stores attempts in a 255-character column; a longer "username" typed into the
# login form made Postgres refuse the row and the login page answer with a server error.
AXES_USERNAME_MAX = 255


def lockout_username(request: HttpRequest, credentials: dict[str, Any] | None = None) -> str:
    source = credentials if credentials else getattr(request, "POST", {})
    return str(source.get("username") or "")[:AXES_USERNAME_MAX]
