from collections.abc import Callable
from functools import cache
from urllib.parse import urlencode

from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django_htmx.http import HttpResponseClientRedirect

from accounts.twofactor import second_factor_due


@cache
def _open_paths() -> frozenset[str]:
    """What a signed-in user may open before giving the second factor: only the way in
    and the way out (and where the browser reports what the page's policy refused)."""
    return frozenset(
        reverse(name)
        for name in ("accounts:verify", "accounts:setup", "login", "logout", "core:csp_report")
    ) | {reverse("admin:logout")}


@cache
def _token_only_prefixes() -> tuple[str, ...]:
    """The API and the FHIR facade accept only tokens, never the session, so a browser's
    half-signed-in session cookie sent along must not turn their answers into redirects."""
    return (
        reverse("fhir:metadata").removesuffix("metadata"),
        reverse("api:schema").rsplit("schema", 1)[0],
    )


class TwoFactorMiddleware:
    """A signed-in user who owes a second factor (accounts.twofactor) reaches nothing but
    the page that asks for it, whatever page they asked for, the admin's included."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = request.user
        if (
            user.is_authenticated
            and request.path not in _open_paths()
            and not request.path.startswith(_token_only_prefixes())
        ):
            due = second_factor_due(request.session, user)
            if due is not None:
                return self._ask(request, due)
        return self.get_response(request)

    @staticmethod
    def _ask(request: HttpRequest, due: str) -> HttpResponse:
        target = reverse(f"accounts:{due}")
        if request.method == "GET" and not getattr(request, "htmx", False):
            target += "?" + urlencode({"next": request.get_full_path()})
        if getattr(request, "htmx", False):
            return HttpResponseClientRedirect(target)
        return HttpResponseRedirect(target)
