"""The one place that decides between a full page and an htmx partial."""

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


def render_page(
    request: HttpRequest,
    template: str,
    context: dict[str, Any],
    *,
    partial: str,
    status: int = 200,
) -> HttpResponse:
    """Render `template`, or for an htmx request only the region it redraws: for a Django
    template, its `{% partialdef partial %}`; for a Jinja2 page, `partial` is the template
    the page includes for that region ("referrals/queue_results.html")."""
    if not renders_partial(request):
        name = template
    else:
        name = partial if partial.endswith(".html") else f"{template}#{partial}"
    return render(request, name, context, status=status)


def renders_partial(request: HttpRequest) -> bool:
    """Does `render_page` answer this request with the region only? A view whose whole page
    shows more than the region (and audits what it shows) asks first."""
    htmx = getattr(request, "htmx", None)
    # Back to a page htmx changed in place: the whole page (its filter form as the address
    # says), never a region swapped in for the whole body.
    return htmx is not None and bool(htmx) and not htmx.history_restore_request
