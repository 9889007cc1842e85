"""The username django-axes records for a failed login."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest

# axes stores the username in a 255-character column.
AXES_USERNAME_LENGTH = 255


def lockout_username(request: HttpRequest, credentials: dict[str, Any] | None = None) -> str | None:
    """The submitted username, cut to the column's length and without NUL bytes: a longer
    one (real usernames have at most 150 characters) or a NUL would fail the insert on
    Postgres and turn a refused login into a server error."""
    field = settings.AXES_USERNAME_FORM_FIELD
    if credentials:
        username = credentials.get(field)
    else:
        username = getattr(request, "data", request.POST).get(field)
    if not isinstance(username, str):
        return username
    return username.replace("\x00", "")[:AXES_USERNAME_LENGTH]
