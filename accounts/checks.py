from typing import Any

from django.conf import settings
from django.core.checks import Tags, Warning, register


@register(Tags.security, deploy=True)
def two_factor_required(**kwargs: Any) -> list[Warning]:
    """`check --deploy` says so when managers and administrators may sign in with a
    password alone (the demo runs that way; production should not)."""
    if settings.TWO_FACTOR_REQUIRED:
        return []
    return [
        Warning(
            "TWO_FACTOR_REQUIRED is off: managers and administrators can sign in with a "
            "password alone.",
            hint="Unset TWO_FACTOR_REQUIRED (it defaults to on) or set it to true.",
            id="accounts.W001",
        )
    ]
