"""The merge fields a letter template may use, and the checks of a template's text."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    pass


MERGE_FIELD = re.compile(r"\{\{\s*(\w+)\s*\}\}")

# The merge fields a letter template may use. Patient data is limited to initials.
MERGE_FIELDS: dict[str, str] = {
    "appointment_date": "The date and time of the patient's appointment with us",
    "provider_name": "The referring provider's name with credential",
    "provider_last_name": "The referring provider's last name",
    "organization_name": "The referring office",
    "patient_initials": "The patient's initials (never the full name)",
    "referral_date": "The date we received the referral",
    "seen_date": "The date we saw the patient",
    "decline_reason": "Why we could not accept the referral (declined notices)",
    "hold_reason": "What we need before the referral can go on (on-hold notices)",
    "cancel_reason": "Why the referral was cancelled (cancelled notices)",
    "practice_name": "Our practice's name",
    "sender_name": "The relationship owner's name",
    "today": "Today's date",
    "event_name": "The event's name (event reminders and cancellations)",
    "event_date": "The event's date and time (event reminders and cancellations)",
    "event_place": "Where the event is (event reminders and cancellations)",
    "period": "The week or month a consult report summary covers (report summaries)",
    "report_count": "How many consult reports the summary lists (report summaries)",
    "report_list": "One line per referral in the summary: patient initials and dates "
    "(report summaries)",
}

# Merge fields that carry something of a patient, however little: never in a newsletter.
PATIENT_MERGE_FIELDS = frozenset(
    {
        "patient_initials",
        "appointment_date",
        "referral_date",
        "seen_date",
        "decline_reason",
        "hold_reason",
        "cancel_reason",
        "report_list",
    }
)


# What each kind of letter is written with: a merge field another kind fills would reach
# the partner as raw braces.
PARTNER_MERGE_FIELDS = frozenset(
    {
        "provider_name",
        "provider_last_name",
        "organization_name",
        "practice_name",
        "sender_name",
        "today",
    }
)
REFERRAL_MERGE_FIELDS = frozenset(
    {"patient_initials", "referral_date", "seen_date", "appointment_date"}
)
# Each reason belongs to its own notice; elsewhere it is empty.
REASON_MERGE_FIELD = {
    "declined": "decline_reason",
    "on_hold": "hold_reason",
    "cancelled": "cancel_reason",
}
EVENT_MERGE_FIELDS = frozenset({"event_name", "event_date", "event_place"})
SUMMARY_MERGE_FIELDS = frozenset({"period", "report_count", "report_list"})


# The kinds of letter about the relationship, not a patient: they carry no patient data,
# and a patient merge field typed into one is refused (see merge_text_error).
PATIENT_FREE_KINDS = frozenset({"newsletter", "rekindle"})


def merge_fields_for(kind: str) -> dict[str, str]:
    """The merge fields a letter of `kind` fills in, with what each says."""
    if kind in PATIENT_FREE_KINDS:
        names = PARTNER_MERGE_FIELDS
    elif kind in ("event_reminder", "event_cancelled"):
        names = PARTNER_MERGE_FIELDS | EVENT_MERGE_FIELDS
    elif kind == "report_summary":
        names = PARTNER_MERGE_FIELDS | SUMMARY_MERGE_FIELDS
    else:
        names = PARTNER_MERGE_FIELDS | REFERRAL_MERGE_FIELDS
        if kind in REASON_MERGE_FIELD:
            names = names | {REASON_MERGE_FIELD[kind]}
    return {name: help for name, help in MERGE_FIELDS.items() if name in names}


# Anything that looks like template syntax but is not a plain merge field.
STRAY_TEMPLATE_SYNTAX = re.compile(r"\{\{|\}\}|\{%|%\}")
STRAY_TEMPLATE_SYNTAX_ERROR = (
    "Only plain merge fields such as {{ provider_name }} are filled in; "
    "remove the other braces (no filters, no {% %} tags)."
)


def has_stray_template_syntax(text: str) -> bool:
    """Braces or tags left once the plain merge fields are taken out: the partner would
    see them as typed."""
    return bool(STRAY_TEMPLATE_SYNTAX.search(MERGE_FIELD.sub("", text)))


def render_merge_fields(text: str, values: dict[str, str]) -> str:
    return MERGE_FIELD.sub(lambda match: values.get(match.group(1), match.group(0)), text)


def unknown_merge_fields(text: str) -> list[str]:
    return sorted({name for name in MERGE_FIELD.findall(text) if name not in MERGE_FIELDS})


def merge_text_error(kind: str, label: str, text: str) -> str | None:
    """What is wrong with `text` as the subject or body of a letter of `kind` (called
    `label` in the message), or None: a merge field that does not exist, patient data in a
    letter about the relationship, a merge field this kind does not fill (the partner
    would see the braces), or template syntax other than plain merge fields."""
    available = merge_fields_for(kind)
    used = set(MERGE_FIELD.findall(text))
    unknown = unknown_merge_fields(text)
    if unknown:
        return f"Unknown merge field(s): {', '.join(unknown)}. Available: {', '.join(available)}."
    if kind in PATIENT_FREE_KINDS and (patient := sorted(used & PATIENT_MERGE_FIELDS)):
        return f"A {label} carries no patient data: remove {', '.join(patient)}."
    not_here = sorted(used - set(available))
    if not_here:
        return (
            f"A {label} letter has no {', '.join(not_here)} to fill in (the partner would "
            f"see the braces). Available: {', '.join(available)}."
        )
    if has_stray_template_syntax(text):
        return STRAY_TEMPLATE_SYNTAX_ERROR
    return None
