from typing import Any

from django.core.paginator import Page, Paginator
from django.http import HttpRequest

PAGE_SIZE = 25


def paginate(request: HttpRequest, queryset: Any, *, per_page: int = PAGE_SIZE) -> Page:
    """One page of `queryset`; a bad or out-of-range ?page= shows the nearest valid page."""
    return Paginator(queryset, per_page).get_page(request.GET.get("page"))
