from typing import Any

from django.http import HttpRequest

from core.roles import user_role


def navigation(request: HttpRequest) -> dict[str, Any]:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {"current_role": user_role(user)}
