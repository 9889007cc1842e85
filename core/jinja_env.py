"""The Jinja2 environment for the busiest pages and for the page layout.

The work queue, partner list, partner 360 and referral detail are read far more than any
other page, and rendering them in the Django template language was a large share of their
time. Those pages are Jinja2 templates (in each app's `jinja2/` folder), which cut their
CPU by 10 to 20 % (docs/benchmarks.md, "Scale: findings"); every other page stays a Django
template. Both kinds share one layout (head, navigation, messages, scripts), written once
in core/jinja2/layout.html: Jinja2 pages extend it, Django template pages reach it through
`{% layout %}` in templates/base.html (core/templatetags/chrome.py).

The filters and globals here are the same functions the Django template tags use, so a
value reads the same on either kind of page.
"""

from __future__ import annotations

import functools
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.template import defaultfilters
from django.templatetags.static import static
from django.urls import get_script_prefix, reverse
from django.utils import timezone
from django_htmx.jinja import htmx_script
from jinja2 import Environment, pass_context

from core.dateformat import format_date, near_date
from core.phones import dial_link
from core.templatetags.elapsed import elapsed
from core.templatetags.people import person
from partners.templatetags.partner_tags import days_ago
from referrals.templatetags.referral_tags import (
    patient_display,
    sla_colour,
    sla_label,
    status_colour,
)


def url(name: str, *args: Any, **kwargs: Any) -> str:
    if not args and not kwargs:
        # The navigation alone names twenty pages; their addresses only change with the
        # prefix the site is mounted under.
        return _fixed_url(name, get_script_prefix())
    if not kwargs and len(args) == 1 and type(args[0]) is int and args[0] >= 0:
        # A row's link (a referral, a partner) on a list of many: the address around the
        # number is the same for every row.
        around = _url_around_number(name, get_script_prefix())
        if around is not None:
            return f"{around[0]}{args[0]}{around[1]}"
    return reverse(name, args=args or None, kwargs=kwargs or None)


@functools.lru_cache(maxsize=512)
def _fixed_url(name: str, prefix: str) -> str:
    return reverse(name)


_PLACEHOLDER = 987654321987


@functools.lru_cache(maxsize=512)
def _url_around_number(name: str, prefix: str) -> tuple[str, str] | None:
    """The address of `name` before and after its one number argument, or None if the
    number does not show in it exactly once as written."""
    address = reverse(name, args=[_PLACEHOLDER])
    before, found, after = address.partition(str(_PLACEHOLDER))
    if not found or str(_PLACEHOLDER) in after:
        return None
    return before, after


def date(value: Any, format_string: str | None = None) -> str:
    """Django's `date` filter, in the current time zone as Django templates show it."""
    if value in (None, ""):
        return ""
    if isinstance(value, datetime) and timezone.is_aware(value):
        value = timezone.localtime(value)
    return format_date(value, format_string)


def query_with(request: Any, **changes: Any) -> str:
    """This page's query string with `changes` applied (a value of None drops the key):
    pagination keeps the filters."""
    params = [(key, value) for key, value in request.GET.lists() if key not in changes]
    pairs = [(key, item) for key, values in params for item in values]
    pairs += [(key, value) for key, value in changes.items() if value is not None]
    return urlencode(pairs)


@pass_context
def patient_name(context: Any, referral: Any) -> str:
    return patient_display(referral, context.get("perms"))


def environment(**options: Any) -> Environment:
    options.pop("autoescape", None)  # always on: these pages show what users typed
    env = Environment(autoescape=True, **options)
    env.globals.update(
        url=url,
        static=static,
        htmx_script=htmx_script,
        patient_name=patient_name,
        query_with=query_with,
        practice_name=settings.PRACTICE_NAME,
    )
    env.filters.update(
        date=date,
        near_date=near_date,
        elapsed=elapsed,
        person=person,
        status_colour=status_colour,
        sla_colour=sla_colour,
        sla_label=sla_label,
        days_ago=days_ago,
        dial_link=dial_link,
        linebreaksbr=defaultfilters.linebreaksbr,
        truncatewords=defaultfilters.truncatewords,
        filesizeformat=defaultfilters.filesizeformat,
        pluralize=defaultfilters.pluralize,
    )
    return env
