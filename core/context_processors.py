from typing import Any

from django.contrib.auth.context_processors import PermLookupDict, PermWrapper
from django.http import HttpRequest

from core.roles import can_hand_over_work, user_role


class _AppPerms(PermLookupDict):
    def __init__(self, perms: "RememberedPerms", app_label: str) -> None:
        super().__init__(perms.user, app_label)
        self._perms = perms

    def __getitem__(self, perm_name: str) -> bool:
        return self._perms.has_perm(f"{self.app_label}.{perm_name}")


class RememberedPerms(PermWrapper):
    """Django's `perms` for templates, answering each permission once per page. A page asks
    the same ones many times (the navigation, then every row of a list for the patient's
    name), and each `user.has_perm` goes through every authentication backend again."""

    def __init__(self, user: Any) -> None:
        super().__init__(user)
        self._answers: dict[str, bool] = {}

    def __getitem__(self, app_label: str) -> PermLookupDict:
        return _AppPerms(self, app_label)

    def has_perm(self, perm: str) -> bool:
        try:
            return self._answers[perm]
        except KeyError:
            answer = self._answers[perm] = self.user.has_perm(perm)
            return answer


def remembered_perms(request: HttpRequest) -> dict[str, Any]:
    """Replaces the `perms` of Django's auth context processor, which runs before it (the
    admin checks that one is there)."""
    user = getattr(request, "user", None)
    return {} if user is None else {"perms": RememberedPerms(user)}


def navigation(request: HttpRequest) -> dict[str, Any]:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {"current_role": user_role(user), "can_hand_over_work": can_hand_over_work(user)}
