"""Letters' building blocks: the default template text, merge values, routing by the partner's
preferences, and message IDs."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

from django.conf import settings
from django.http import HttpRequest
from django.utils import timezone

from audit.services import audit_record
from outreach import direct
from outreach.models import Letter, LetterTemplate
from outreach.models.letters import opted_out_of
from partners.models import Provider

K = LetterTemplate.Kind

# The text each kind of letter starts with, until someone edits it on the templates page.
DEFAULT_TEMPLATES: dict[str, dict[str, object]] = {
    K.ACKNOWLEDGMENT: {
        "subject": "We received your referral for {{ patient_initials }}",
        "body": (
            "Dear {{ provider_name }},\n\n"
            "Thank you for your referral of {{ patient_initials }}, which {{ practice_name }} "
            "received on {{ referral_date }}. We will contact the patient to schedule and "
            "keep you informed.\n\n"
            "Sincerely,\n{{ sender_name }}\n{{ practice_name }}"
        ),
        "delay_business_days": 0,
    },
    K.SCHEDULED: {
        "subject": "Your patient {{ patient_initials }} is scheduled",
        "body": (
            "Dear {{ provider_name }},\n\n"
            "Your patient {{ patient_initials }} is scheduled with {{ practice_name }} on "
            "{{ appointment_date }}. We will let you know how the visit went.\n\n"
            "Sincerely,\n{{ sender_name }}\n{{ practice_name }}"
        ),
        "delay_business_days": 0,
    },
    K.THANK_YOU: {
        "subject": "Thank you for referring {{ patient_initials }}",
        "body": (
            "Dear {{ provider_name }},\n\n"
            "Thank you for referring your patient {{ patient_initials }} to {{ practice_name }}. "
            "We saw them on {{ seen_date }} and will send our consult report shortly.\n\n"
            "We appreciate your trust and are always glad to help your patients.\n\n"
            "With thanks,\n{{ sender_name }}\n{{ practice_name }}"
        ),
        "delay_business_days": 2,
    },
    K.OUTCOME: {
        "subject": "Consult report for {{ patient_initials }}",
        "body": (
            "Dear {{ provider_name }},\n\n"
            "Please find our consult report for your patient {{ patient_initials }}, seen on "
            "{{ seen_date }}, sent separately through your preferred secure channel. Call us "
            "with any question about the plan of care.\n\n"
            "Sincerely,\n{{ sender_name }}\n{{ practice_name }}"
        ),
        "delay_business_days": 0,
    },
    K.DECLINED: {
        "subject": "About your referral of {{ patient_initials }}",
        "body": (
            "Dear {{ provider_name }},\n\n"
            "Thank you for your referral of {{ patient_initials }}, received on "
            "{{ referral_date }}. We are sorry that {{ practice_name }} cannot accept it: "
            "{{ decline_reason }}\n\n"
            "Please call us if we can help you find the right place for your patient; we "
            "would be glad to see your patients again.\n\n"
            "Sincerely,\n{{ sender_name }}\n{{ practice_name }}"
        ),
        "delay_business_days": 0,
    },
    K.NO_SHOW: {
        "subject": "Your patient {{ patient_initials }} missed the appointment",
        "body": (
            "Dear {{ provider_name }},\n\n"
            "Your patient {{ patient_initials }} did not come to the appointment with "
            "{{ practice_name }} on {{ appointment_date }}. We are reaching out to the "
            "patient to reschedule and will let you know; you may wish to follow up as "
            "well.\n\n"
            "Sincerely,\n{{ sender_name }}\n{{ practice_name }}"
        ),
        "delay_business_days": 0,
    },
    K.CANCELLED: {
        "subject": "Your referral of {{ patient_initials }} was cancelled",
        "body": (
            "Dear {{ provider_name }},\n\n"
            "Your referral of {{ patient_initials }}, received on {{ referral_date }}, has "
            "been cancelled and closed without a visit to {{ practice_name }}. The reason: "
            "{{ cancel_reason }}\n\n"
            "If your patient still needs to be seen, please call us or send a new referral "
            "and we will schedule promptly.\n\n"
            "Sincerely,\n{{ sender_name }}\n{{ practice_name }}"
        ),
        "delay_business_days": 0,
    },
    K.ON_HOLD: {
        "subject": "We need more information about {{ patient_initials }}",
        "body": (
            "Dear {{ provider_name }},\n\n"
            "Your referral of {{ patient_initials }}, received on {{ referral_date }}, is on "
            "hold at {{ practice_name }} until we have this: {{ hold_reason }}\n\n"
            "Please send it through your usual secure channel or call us, and we will go on "
            "with scheduling your patient right away.\n\n"
            "Sincerely,\n{{ sender_name }}\n{{ practice_name }}"
        ),
        "delay_business_days": 0,
    },
    K.REKINDLE: {
        "subject": "Checking in from {{ practice_name }}",
        "body": (
            "Dear {{ provider_name }},\n\n"
            "It has been a while since we last worked together. We would be glad to see your "
            "patients again and to hear how we can make referring to us easier.\n\n"
            "Warm regards,\n{{ sender_name }}\n{{ practice_name }}"
        ),
        "delay_business_days": 0,
    },
    K.NEWSLETTER: {
        "subject": "News from {{ practice_name }}",
        "body": (
            "Dear {{ provider_name }},\n\n"
            "Here is what is new at {{ practice_name }} this season.\n\n"
            "{{ sender_name }}\n{{ practice_name }}"
        ),
        "delay_business_days": 0,
    },  # Also created by migration 0008 (which keeps its own frozen copy of this text).
    K.EVENT_REMINDER: {
        "subject": "Reminder: {{ event_name }} on {{ event_date }}",
        "body": (
            "Dear {{ provider_name }},\n\n"
            "A reminder that {{ practice_name }} looks forward to seeing you at {{ event_name }} "
            "on {{ event_date }}, at {{ event_place }}.\n\n"
            "If your plans have changed, a quick reply or call lets us know.\n\n"
            "With best regards,\n{{ sender_name }}\n{{ practice_name }}"
        ),
        "delay_business_days": 0,
    },
    K.EVENT_CANCELLED: {
        "subject": "Cancelled: {{ event_name }} on {{ event_date }}",
        "body": (
            "Dear {{ provider_name }},\n\n"
            "We are sorry to let you know that {{ event_name }}, planned for {{ event_date }} "
            "at {{ event_place }}, is cancelled. We hope to see you at a future event and "
            "will let you know when one is planned.\n\n"
            "With best regards,\n{{ sender_name }}\n{{ practice_name }}"
        ),
        "delay_business_days": 0,
    },
    K.REPORT_SUMMARY: {
        "subject": "Consult reports for {{ period }}",
        "body": (
            "Dear {{ provider_name }},\n\n"
            "Here are the {{ report_count }} patients you referred to {{ practice_name }} "
            "whose consult reports we sent in {{ period }}:\n\n"
            "{{ report_list }}\n\n"
            "Each report went to you through your preferred secure channel. Call us with "
            "any question about a plan of care.\n\n"
            "Sincerely,\n{{ sender_name }}\n{{ practice_name }}"
        ),
        "delay_business_days": 0,
    },  # Also created by migration 0010 (which keeps its own frozen copy of this text).
}


def letter_template_for(kind: str) -> LetterTemplate:
    template, _ = LetterTemplate.objects.get_or_create(
        kind=kind, defaults=DEFAULT_TEMPLATES.get(kind, {"subject": "", "body": ""})
    )
    return template


def provider_merge_values(provider: Provider) -> dict[str, str]:
    owner = provider.owner
    return {
        "provider_name": provider.display_name,
        "provider_last_name": provider.last_name,
        "organization_name": provider.organization.name if provider.organization else "",
        "practice_name": settings.PRACTICE_NAME,
        "sender_name": (owner.get_full_name() or owner.get_username()) if owner else "",
        "today": f"{timezone.localdate():%B %-d, %Y}",
    }


# Shown in the template editor's live preview: an invented referral, never a real patient.
SAMPLE_MERGE_VALUES: dict[str, str] = {
    "provider_name": "Dana Whitfield, MD",
    "provider_last_name": "Whitfield",
    "organization_name": "Lakeside Family Medicine",
    "patient_initials": "J.D.",
    "referral_date": "March 3, 2026",
    "seen_date": "March 12, 2026",
    "appointment_date": "March 12, 2026 at 9:30 AM",
    "decline_reason": "we are not in network with the patient's insurance plan.",
    "hold_reason": "the office notes of the last visit and the recent X-rays.",
    "cancel_reason": "we could not reach the patient after three calls and a letter.",
    "practice_name": settings.PRACTICE_NAME,
    "sender_name": "Jamie Carter",
    "today": "March 14, 2026",
    "event_name": "Annual referral-partner dinner",
    "event_date": "December 10, 2026 at 6:30 PM",
    "event_place": "Riverside Country Club",
    "period": "the week of March 9, 2026",
    "report_count": "2",
    "report_list": "- J.D., seen March 12, 2026, report sent March 13, 2026\n"
    "- A.K., seen March 10, 2026, report sent March 11, 2026",
}


def new_message_id() -> str:
    return f"<{uuid.uuid4().hex}@{settings.MESSAGE_ID_DOMAIN}>"


def letter_to(
    provider: Provider,
    kind: str,
    *,
    subject: str,
    body: str,
    due_on: date,
    direct_address: str | None = None,
    **about: Any,
) -> Letter:
    """An unsaved letter of `kind` to `provider`, routed by their preferences as it is
    written (letter_route: the channel, status and recipient; delivery routes it again
    when it leaves), with its own message id; `about` links it to what it is about (the
    invitation, newsletter issue or summary period). Made in bulk: the caller saves."""
    channel, status, recipient = letter_route(provider, kind, direct_address=direct_address)
    return Letter(
        kind=kind,
        provider=provider,
        subject=subject[:200],
        body=body,
        due_on=due_on,
        channel=channel,
        status=status,
        recipient=recipient,
        message_id=new_message_id(),
        **about,
    )


def letter_route(
    provider: Provider, kind: str, *, direct_address: str | None = None
) -> tuple[str, str, str]:
    """(channel, status, recipient) for a message of `kind` to `provider`, from the
    partner's preferences, falling back to paper when the preferred address is missing.
    "Portal" is Direct secure messaging to the partner's Direct address in the NPPES
    registry, when the practice has a Direct relay; else email, then fax, then mail.
    Callers routing many partners pass `direct_address` (from direct.direct_addresses,
    "" for none) so the registry is read once, not per partner, and load the partners
    with their organization, whose opt-out covers them too."""
    if opted_out_of(provider, kind):
        return "", Letter.Status.SKIPPED, ""
    if kind == K.THANK_YOU and provider.thank_you_by == Provider.ThankYouBy.CALL:
        return Letter.Channel.CALL, Letter.Status.SKIPPED, ""
    preferred = provider.preferred_channel
    if preferred == Provider.PreferredChannel.PORTAL:
        if direct.relay_configured():
            if direct_address is None:
                direct_address = direct.direct_address(provider.npi)
            if direct_address:
                return Letter.Channel.DIRECT, Letter.Status.PENDING, direct_address
        preferred = Provider.PreferredChannel.EMAIL
    if preferred == Provider.PreferredChannel.EMAIL:
        if provider.contact_email:
            return Letter.Channel.EMAIL, Letter.Status.PENDING, provider.contact_email
        preferred = Provider.PreferredChannel.FAX
    if preferred == Provider.PreferredChannel.FAX and provider.fax:
        return Letter.Channel.FAX, Letter.Status.PENDING, provider.fax
    return Letter.Channel.MAIL, Letter.Status.PENDING, ""


def letter_keys_release_for_merge(*, survivor_id: int, duplicate_id: int) -> None:
    """Two records of one partner are being merged: where both got the same newsletter
    issue or a summary for the same period, the duplicate's letter stays (it was sent) but
    gives up the key, so moving it to the survivor breaks no one-per-partner constraint."""
    both_got = Letter.objects.filter(provider_id=survivor_id, newsletter__isnull=False)
    Letter.objects.filter(
        provider_id=duplicate_id, newsletter__in=both_got.values("newsletter")
    ).update(newsletter=None)
    summarised = Letter.objects.filter(provider_id=survivor_id, kind=K.REPORT_SUMMARY)
    Letter.objects.filter(
        provider_id=duplicate_id, kind=K.REPORT_SUMMARY, period__in=summarised.values("period")
    ).update(period="")


def letter_audit_read(*, letter: Letter, action: str, request: HttpRequest) -> int:
    """Someone opened or downloaded a letter: one audit row for each referral whose patient
    it names (`Letter.patient_referral_ids`), with who and from where, whatever their role
    (the letter reads the same to all). A letter about no patient writes nothing; nor does
    a HEAD request (see audit_record). Returns how many rows were written."""
    return audit_record(
        action=action,
        referral_ids=letter.patient_referral_ids(),
        user=request.user,
        fields=["letter"],
        request=request,
    )
