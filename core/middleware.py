from collections.abc import Callable
from urllib.parse import urlencode, urlsplit

from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import render, resolve_url
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme

TOUCHED_KEY = "_touched_at"
# Sent by a page's progress poll (hx-headers on the polling element): a page left open on
# a running import polls every second, which is no sign that anyone is at the screen.
POLL_HEADER = "X-Progress-Poll"


# Where referral_crm/urls.py mounts the admin.
ADMIN_PREFIX = "/admin/"


class AdminNulMiddleware:
    """The admin passes its list filters to the database unread, and Postgres refuses a
    NUL byte in text: a NUL in an admin address's query (a hand-edited address, a scanner)
    answers 400 saying why, never a server error. The app's own pages read their filters
    through forms, which handle it."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path_info.startswith(ADMIN_PREFIX) and "%00" in request.META.get(
            "QUERY_STRING", ""
        ):
            return HttpResponseBadRequest(
                "Bad request: the address holds a NUL byte (%00) in its query. Remove it and "
                "try again.",
                content_type="text/plain; charset=utf-8",
            )
        return self.get_response(request)


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


class MethodNotAllowedPageMiddleware:
    """A page address that only takes a form's post (a step, a bulk action, a delete),
    opened directly, answers 405 with no body, which a browser shows as a blank error:
    give it a page that says what happened. API answers already say it in JSON."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if response.status_code != 405 or response.get("Content-Type", "").find("html") < 0:
            return response
        if getattr(response, "streaming", False) or response.content:
            return response
        page = render(request, "405.html", status=405)
        page["Allow"] = response.get("Allow", "")
        return page


class IdleLogoffMiddleware:
    """Ends a session after SESSION_COOKIE_AGE seconds without a request (automatic logoff).

    Django can do this by saving the session on every request, but that is a database
    write on every page view. Instead the session is re-saved (pushing its expiry forward)
    only when the last save is more than SESSION_TOUCH_SECONDS old, so the idle limit holds
    to within that margin (a session ends after between AGE - TOUCH and AGE idle seconds,
    never later) and a busy user causes one write a minute, not one per click. A progress
    poll (POLL_HEADER) is not activity: an unattended screen showing a running job is
    signed off like any other."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        session = getattr(request, "session", None)
        if request.headers.get(POLL_HEADER):
            return response
        if session is not None and session.session_key and not session.is_empty():
            now = int(timezone.now().timestamp())
            if now - session.get(TOUCHED_KEY, 0) >= settings.SESSION_TOUCH_SECONDS:
                session[TOUCHED_KEY] = now  # modified → SessionMiddleware saves it
        return response


class SignedOutMiddleware:
    """What a user whose session ended (idle logoff) meets on their next request: the
    sign-in page says why, and a request sent by htmx (a form posted in place, such as the
    day plan's visit log) takes the whole page to sign in instead of drawing the sign-in
    page inside the form. Its answer is not a success, so the form's draft on the phone
    (static/js/app.js) is kept and comes back after signing in."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if response.status_code != 302 or request.user.is_authenticated:
            return response
        login_path = resolve_url(settings.LOGIN_URL)
        if urlsplit(response.get("Location", "")).path != login_path:
            return response
        match = request.resolver_match
        if match is not None and match.view_name == "logout":
            # Signing out on purpose ends the session too: said plainly, not as a timeout.
            messages.info(request, "You are signed out.")
            return response
        # A session cookie whose session is gone: it ended while the user was away.
        if settings.SESSION_COOKIE_NAME in request.COOKIES and request.session.is_empty():
            messages.info(
                request,
                # The session is gone, and with it why: idle time is the usual reason, but a
                # second factor set up elsewhere or an administrator's change end it too.
                f"You were signed out: {settings.SESSION_COOKIE_AGE // 60} minutes passed "
                "without activity, or your account's sign-in changed (two-factor set up in "
                "another browser, or an administrator's change). Sign in again to go on; "
                "nothing of what you last sent was saved.",
            )
        if not getattr(request, "htmx", False):
            return response
        # Back to the page the user was on (its drafts come back), not the address posted to.
        try:
            current = urlsplit(request.headers.get("HX-Current-URL", ""))
        except ValueError:  # not an address (an unclosed IPv6 bracket): back to the start
            current = urlsplit("/")
        back = current.path + (f"?{current.query}" if current.query else "")
        if not back.startswith("/") or not url_has_allowed_host_and_scheme(
            back, allowed_hosts={request.get_host()}
        ):
            back = "/"
        signed_out = HttpResponse(status=401)
        signed_out["HX-Redirect"] = f"{login_path}?{urlencode({'next': back})}"
        return signed_out
