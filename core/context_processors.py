from typing import Any

from django.http import HttpRequest

from core.roles import can_hand_over_work, user_role


def navigation(request: HttpRequest) -> dict[str, Any]:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {"current_role": user_role(user), "can_hand_over_work": can_hand_over_work(user)}
