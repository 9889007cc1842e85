"""Shared pieces of the Django admin."""

from __future__ import annotations

from django.http import HttpRequest


def deleting_parent(request: HttpRequest, parent: str) -> bool:
    """Whether this request is the admin deleting a `parent` ("app_model"), from its own
    delete page or its list's delete action. Django asks every related row's admin whether
    it may be deleted along with it; history rows answer yes only then."""
    match = request.resolver_match
    return match is not None and match.url_name in (f"{parent}_delete", f"{parent}_changelist")
