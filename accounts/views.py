"""Two-factor sign-in: set up an authenticator app, give a code after the password, and
manage backup codes."""

from __future__ import annotations

import segno
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST
from django_otp.plugins.otp_static.models import StaticDevice

from accounts import services, twofactor
from accounts.forms import CodeForm, SetupForm
from core.types import AuthedRequest

BACKUP_CODES_SESSION_KEY = "_backup_codes_to_show"


def _next(request: AuthedRequest) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return "/"


@login_required
def verify(request: AuthedRequest) -> HttpResponse:
    """After the password: the code from the app, or a backup code."""
    user = request.user
    if twofactor.second_factor_due(request.session, user) != "verify":
        return redirect(_next(request))
    form = CodeForm(request.POST or None, user=user)
    if request.method == "POST" and form.is_valid():
        twofactor.mark_verified(request.session, user)
        if isinstance(form.device, StaticDevice):
            left = twofactor.backup_codes_left(user)
            messages.warning(
                request,
                f"You signed in with a backup code; {left} left. Each works once: make new "
                "ones under Two-factor sign-in when you run low.",
            )
        return redirect(_next(request))
    return render(request, "accounts/verify.html", {"form": form, "next": _next(request)})


@login_required
def setup(request: AuthedRequest) -> HttpResponse:
    """Scan a QR code into an authenticator app and prove it with its first code. Also how
    a verified user moves to a new phone."""
    user = request.user
    has_app = twofactor.authenticator(user) is not None
    if has_app and not twofactor.is_verified(request.session, user):
        # Whoever has only the password must not be able to enrol a phone of their own.
        return redirect("accounts:verify")
    device = services.authenticator_pending(user=user)
    form = SetupForm(request.POST or None, device=device)
    if request.method == "POST" and form.is_valid():
        codes = services.authenticator_confirm(device=device)
        twofactor.mark_verified(request.session, user)
        request.session[BACKUP_CODES_SESSION_KEY] = codes
        messages.success(request, "Two-factor sign-in is on. Keep your backup codes safe.")
        return redirect("accounts:backup_codes")
    context = {
        "form": form,
        "qr": segno.make(device.config_url, error="m").svg_data_uri(scale=5),
        "secret": twofactor.secret_for_typing(device),
        "label": twofactor.app_label(user),
        "replacing": has_app,
        "required": twofactor.required_for(user),
        "next": _next(request),
    }
    return render(request, "accounts/setup.html", context)


@login_required
def backup_codes(request: AuthedRequest) -> HttpResponse:
    """New backup codes, shown once: they leave the session as they are shown."""
    codes = request.session.pop(BACKUP_CODES_SESSION_KEY, None)
    if not codes:
        return redirect("accounts:security")
    return render(request, "accounts/backup_codes.html", {"codes": codes})


@login_required
def security(request: AuthedRequest) -> HttpResponse:
    """The user's own sign-in security: their authenticator and backup codes."""
    return _security_page(request)


@login_required
@require_POST
def backup_codes_new(request: AuthedRequest) -> HttpResponse:
    user = request.user
    form = CodeForm(request.POST, user=user, backup_codes=False, prefix="new")
    if not form.is_valid():
        return _security_page(request, new_codes_form=form)
    request.session[BACKUP_CODES_SESSION_KEY] = services.backup_codes_replace(user=user)
    messages.success(request, "New backup codes made; the old ones no longer work.")
    return redirect("accounts:backup_codes")


@login_required
@require_POST
def two_factor_off(request: AuthedRequest) -> HttpResponse:
    user = request.user
    if twofactor.required_for(user):
        messages.error(request, "Your role requires two-factor sign-in, so it stays on.")
        return redirect("accounts:security")
    form = CodeForm(request.POST, user=user, backup_codes=False, prefix="off")
    if not form.is_valid():
        return _security_page(request, off_form=form)
    services.two_factor_remove(user=user)
    request.session[twofactor.SESSION_KEY] = f"{twofactor.NOT_NEEDED}:{user.pk}"
    messages.success(request, "Two-factor sign-in is off for your account.")
    return redirect("accounts:security")


def _security_page(
    request: AuthedRequest,
    *,
    new_codes_form: CodeForm | None = None,
    off_form: CodeForm | None = None,
) -> HttpResponse:
    user = request.user
    context = {
        "app": twofactor.authenticator(user),
        "codes_left": twofactor.backup_codes_left(user),
        "required": twofactor.required_for(user),
        "new_codes_form": new_codes_form or CodeForm(user=user, backup_codes=False, prefix="new"),
        "off_form": off_form or CodeForm(user=user, backup_codes=False, prefix="off"),
    }
    failed = new_codes_form is not None or off_form is not None
    return render(request, "accounts/security.html", context, status=400 if failed else 200)
