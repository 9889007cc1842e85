"""Signing in, and two-factor sign-in: set up an authenticator app, give a code after the
password, and manage backup codes. Handing a user's work over to colleagues."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import segno
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import update_session_auth_hash
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.contrib.auth.views import LoginView
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.text import get_text_list
from django.views.decorators.http import require_POST
from django_otp.plugins.otp_static.models import StaticDevice

from accounts import services, twofactor
from accounts.forms import CodeForm, HandoverForm, PasswordChangeForm, SetupForm
from core.pagination import paginate
from core.roles import can_hand_over_work, prefetched_role
from core.templatetags.people import person
from core.types import AuthedRequest

BACKUP_CODES_SESSION_KEY = "_backup_codes_to_show"
# Where the backup codes page goes on to: the page a user was on the way to when sent to
# set up, else the security page.
AFTER_CODES_SESSION_KEY = "_after_backup_codes"
# The authenticator this browser's set-up page shows, until it is confirmed.
PENDING_SESSION_KEY = "_authenticator_pending"


class SignInView(LoginView):
    """Django's sign-in page, saying how long an idle session lasts here
    (SESSION_IDLE_SECONDS), as the page does after an automatic logoff."""

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        idle_minutes = settings.SESSION_COOKIE_AGE // 60
        return {**super().get_context_data(**kwargs), "idle_minutes": idle_minutes}


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
    device = services.authenticator_pending(
        user=user, shown=request.session.get(PENDING_SESSION_KEY)
    )
    request.session[PENDING_SESSION_KEY] = device.pk
    form = SetupForm(request.POST or None, device=device)
    if request.method == "POST" and form.is_valid():
        codes = services.authenticator_confirm(
            device=device, keep_session=request.session.session_key
        )
        del request.session[PENDING_SESSION_KEY]
        twofactor.mark_verified(request.session, user)
        request.session[BACKUP_CODES_SESSION_KEY] = codes
        if request.POST.get("next"):
            request.session[AFTER_CODES_SESSION_KEY] = _next(request)
        messages.success(
            request,
            "Two-factor sign-in is on. Keep your backup codes safe. Any other browser "
            "signed in as you has been signed out.",
        )
        return redirect("accounts:backup_codes")
    context = {
        "form": form,
        "qr": segno.make(device.config_url, error="m").svg_data_uri(scale=5),
        # The same otpauth:// address as a link: a phone cannot scan a code on its own screen.
        "app_link": device.config_url,
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
    after = request.session.pop(AFTER_CODES_SESSION_KEY, None) or reverse("accounts:security")
    if not codes:
        return redirect("accounts:security")
    return render(request, "accounts/backup_codes.html", {"codes": codes, "after": after})


@login_required
def security(request: AuthedRequest) -> HttpResponse:
    """The user's own sign-in security: their authenticator and backup codes."""
    return _security_page(request)


@login_required
def password_change(request: AuthedRequest) -> HttpResponse:
    """The user's own new password, the old one asked first. Every other browser signed in
    as them is signed out (their sessions carry the old password's hash); this one stays
    in, with its second factor. Their API tokens are revoked."""
    form = PasswordChangeForm(request.user, request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = form.save()
        update_session_auth_hash(request, user)
        revoked = form.api_tokens_revoked
        tokens = (
            f", and your {revoked} API token{'s were' if revoked != 1 else ' was'} revoked: "
            f"ask an administrator for {'new ones' if revoked != 1 else 'a new one'}"
            if revoked
            else ""
        )
        messages.success(
            request,
            "Your password was changed. Any other browser signed in as you was signed out"
            f"{tokens}.",
        )
        return redirect("accounts:security")
    return render(request, "accounts/password_change.html", {"form": form})


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
    services.two_factor_remove(user=user, keep_session=request.session.session_key)
    request.session[twofactor.SESSION_KEY] = f"{twofactor.NOT_NEEDED}:{user.pk}"
    messages.success(
        request,
        "Two-factor sign-in is off for your account. Any other browser signed in as you "
        "has been signed out.",
    )
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


def _user_to_hand_over(request: AuthedRequest, pk: int) -> User:
    """The user whose work is handed over, active or not; only for those who may."""
    if not can_hand_over_work(request.user):
        raise PermissionDenied
    return get_object_or_404(User, pk=pk)


def _held_by(user: User) -> list[int]:
    """The counts of work `users_with_work` annotated a user with, in Work's order."""
    return [getattr(user, f"work_{kind}") for kind in services.HANDOVER_KINDS]


@login_required
def team(request: AuthedRequest) -> HttpResponse:
    """Everyone, with the work each holds now: where a manager starts a hand-over."""
    if not can_hand_over_work(request.user):
        raise PermissionDenied
    page = paginate(request, services.users_with_work().prefetch_related("groups"))
    people = [
        (user, prefetched_role(user), services.Work(*_held_by(user)).in_words()) for user in page
    ]
    return render(request, "accounts/user_list.html", {"people": people, "page": page})


@login_required
def user_handover(request: AuthedRequest, pk: int) -> HttpResponse:
    """What a user holds now, and handing it to colleagues: choose, see what will move,
    confirm."""
    from_user = _user_to_hand_over(request, pk)
    form = HandoverForm(request.POST or None, from_user=from_user)
    if request.method == "POST" and form.is_valid() and form.cleaned_data["confirmed"]:
        recipients = form.recipients()
        result = services.user_work_handover(
            from_user=from_user,
            to_user=form.cleaned_data["to_user"],
            actor=request.user,
            **{f"{kind}_to": user for kind, user in recipients.items()},
        )
        _report(request, from_user=from_user, recipients=recipients, result=result)
        return redirect("accounts:user_handover", pk=from_user.pk)
    work = services.user_current_work(user=from_user)
    # A valid choice not yet confirmed: what will move to whom, and a button to confirm.
    recipients = form.recipients() if form.is_bound and form.is_valid() else {}
    summary = [
        (services.work_amount(kind, getattr(work, kind)), person(user))
        for kind, user in recipients.items()
        if getattr(work, kind)
    ]
    # The partners' own tasks go with them (user_work_handover), not with the other tasks.
    split = recipients and recipients["partners"] != recipients["tasks"]
    tasks_follow_partners = (
        person(recipients["partners"]) if split and work.partners and work.tasks else ""
    )
    context = {
        "from_user": from_user,
        "work": [
            (services.work_amount(kind, getattr(work, kind)), getattr(work, kind))
            for kind in services.HANDOVER_KINDS
        ],
        "total": work.total,
        "form": form,
        "summary": summary,
        "tasks_follow_partners": tasks_follow_partners,
    }
    return render(request, "accounts/user_handover.html", context)


def _report(
    request: AuthedRequest,
    *,
    from_user: User,
    recipients: dict[str, User],
    result: services.HandoverResult,
) -> None:
    counts: dict[User, dict[str, int]] = defaultdict(dict)
    for kind, user in recipients.items():
        counts[user][kind] = getattr(result.moved, kind)
    if with_partners := result.tasks_with_partners:
        # These went with their partners to the partners' new owner.
        counts[recipients["tasks"]]["tasks"] -= with_partners
        owner = counts[recipients["partners"]]
        owner["tasks"] = owner.get("tasks", 0) + with_partners
    moved_to: dict[User, list[str]] = defaultdict(list)
    for user, by_kind in counts.items():
        for kind in services.HANDOVER_KINDS:
            if count := by_kind.get(kind):
                moved_to[user].append(services.work_amount(kind, count))
    if not moved_to:
        messages.info(request, f"Nothing moved: {person(from_user)} held no current work.")
    else:
        parts = [
            f"{get_text_list(amounts, 'and')} to {person(user)}"
            for user, amounts in moved_to.items()
        ]
        messages.success(request, f"Handed over {person(from_user)}'s work: {'; '.join(parts)}.")
    if result.visits_kept:
        messages.warning(
            request,
            f"{services.work_amount('visits', result.visits_kept)} stayed with {person(from_user)}: "
            f"{person(recipients['visits'])} already plans the same office that day.",
        )
