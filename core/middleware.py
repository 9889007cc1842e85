from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

TOUCHED_KEY = "_touched_at"


class NoStoreMiddleware:
    """Pages of a signed-in user may hold patient data: never let a browser or proxy cache
    them (a shared clinic workstation's back button must not show them after logoff)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if getattr(request, "user", None) is not None and request.user.is_authenticated:
            response.headers.setdefault("Cache-Control", "no-store, private")
        return response


class IdleLogoffMiddleware:
    """Ends a session after SESSION_COOKIE_AGE seconds without a request (automatic logoff).

    Django can do this by saving the session on every request, but that is a database
    write on every page view. Instead the session is re-saved (pushing its expiry forward)
    only when the last save is more than SESSION_TOUCH_SECONDS old, so the idle limit holds
    to within that margin (a session ends after between AGE - TOUCH and AGE idle seconds,
    never later) and a busy user causes one write a minute, not one per click."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        session = getattr(request, "session", None)
        if session is not None and session.session_key and not session.is_empty():
            now = int(timezone.now().timestamp())
            if now - session.get(TOUCHED_KEY, 0) >= settings.SESSION_TOUCH_SECONDS:
                session[TOUCHED_KEY] = now  # modified → SessionMiddleware saves it
        return response
