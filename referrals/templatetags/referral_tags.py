from typing import Any

from django import template

from referrals.models import Referral, SlaState

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


def patient_display(referral: Referral, perms: Any) -> str:
    """The patient's name for roles allowed to see it, initials for everyone else."""
    if perms is not None and perms["referrals"]["view_patient_details"]:
        return f"{referral.patient_last_name}, {referral.patient_first_name}"
    return referral.patient_initials


@register.simple_tag(takes_context=True)
def patient_name(context: Any, referral: Referral) -> str:
    return patient_display(referral, context.get("perms"))


@register.filter
def status_colour(status: str) -> str:
    return STATUS_COLOURS.get(status, "secondary")


SLA_COLOURS: dict[str, str] = {
    SlaState.CONTACT_OVERDUE: "danger",
    SlaState.APPOINTMENT_OVERDUE: "danger",
    SlaState.OUTCOME_DUE: "danger",
    SlaState.APPOINTMENT_LATE: "warning",
    SlaState.ON_TRACK: "success",
    SlaState.ENDED: "secondary",
}


@register.filter
def sla_colour(state: str) -> str:
    return SLA_COLOURS.get(state, "secondary")


SLA_LABELS: dict[str, str] = {state.value: str(state.label) for state in SlaState}


@register.filter
def sla_label(state: str) -> str:
    return SLA_LABELS.get(state, "")
