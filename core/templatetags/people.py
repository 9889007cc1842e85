from typing import Any

from django import template

register = template.Library()


@register.filter
def person(user: Any) -> str:
    """A user's full name, else their login; empty for nobody."""
    if user is None:
        return ""
    return user.get_full_name() or user.get_username()
