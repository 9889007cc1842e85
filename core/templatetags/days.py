from typing import Any

from django import template

from core.dateformat import near_date as _near_date

register = template.Library()


@register.filter
def near_date(value: Any, format_string: str = "M j") -> str:
    return _near_date(value, format_string)
