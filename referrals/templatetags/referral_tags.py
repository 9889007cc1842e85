from typing import Any

from django import template

from referrals.models import Referral

register = template.Library()

STATUS_COLOURS = {
    "received": "primary",
    "accepted": "info",
    "scheduled": "info",
    "seen": "success",
    "report_sent": "success",
    "closed": "secondary",
    "declined": "dark",
    "no_show": "warning",
    "on_hold": "warning",
    "cancelled": "secondary",
}


@register.simple_tag(takes_context=True)
def patient_name(context: Any, referral: Referral) -> str:
    """The patient's name for roles allowed to see it, initials for everyone else."""
    perms = context.get("perms")
    if perms is not None and perms["referrals"]["view_patient_details"]:
        return f"{referral.patient_last_name}, {referral.patient_first_name}"
    return referral.patient_initials


@register.filter
def status_colour(status: str) -> str:
    return STATUS_COLOURS.get(status, "secondary")
