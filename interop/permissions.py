"""May this token's user do this? Their role's Django permission for the view and method."""

from __future__ import annotations

from typing import Any

from rest_framework.permissions import BasePermission
from rest_framework.request import Request


class HasPermission(BasePermission):
    """The view's `required_permissions[method]` (a Django permission; GET's for any other
    method), held by the token's user through their role."""

    def has_permission(self, request: Request, view: Any) -> bool:
        needed = view.required_permissions.get(request.method, view.required_permissions["GET"])
        return bool(request.user.has_perm(needed))
