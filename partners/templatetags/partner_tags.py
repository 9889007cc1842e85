"""Template filters for partner pages."""

from __future__ import annotations

from datetime import date

from django import template
from django.utils import timezone

register = template.Library()


@register.filter
def days_ago(value: str) -> int | str:
    """Days from an ISO date (as stored in health reasons) to today; '' if unreadable."""
    try:
        return (timezone.localdate() - date.fromisoformat(value)).days
    except (TypeError, ValueError):
        return ""
