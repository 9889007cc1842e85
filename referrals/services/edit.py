"""In-place edits of a referral's details, written to its history and its inquiry."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import dateformat, timezone
from django.utils.text import capfirst

from audit.services import PATIENT_FIELDS
from core.meta import own_field
from referrals.models import Inquiry, Referral, Status
from referrals.services.history import _record_assignments, _record_edit


def _shown(referral: Referral, name: str) -> str | None:
    """A field's value as the history shows it (labels, not codes; local times)."""
    value = getattr(referral, name)
    if value is None or value == "":
        return None
    if name == "provider":
        return str(referral.provider.display_name)
    if isinstance(value, datetime):
        return dateformat.format(timezone.localtime(value), "M j, Y g:i a")
    display = getattr(referral, f"get_{name}_display", None)
    return str(display()) if display else str(value)


def _inquiry_stage(referral: Referral) -> tuple[str, dict[str, Any]]:
    """Where an inbound referral stands in the new-patient funnel, from its own dates, as
    its moves would have put it (workflow._inquiry_follow)."""
    if referral.seen_at is not None:
        return Inquiry.Status.SEEN_NEW_PATIENT, {"seen_at": referral.seen_at}
    # Booked once, it reached scheduling even if lost after.
    booked = {"scheduled_at": referral.appointment_at} if referral.appointment_at else {}
    if referral.status in (Status.DECLINED, Status.CANCELLED):
        return Inquiry.Status.LOST, {**booked, "lost_at": referral.updated_at}
    if referral.status == Status.CLOSED:
        # Closed without the patient seen: declined, cancelled or missed the visit first.
        missed = referral.events.filter(
            from_status=Status.NO_SHOW, to_status=Status.CLOSED
        ).exists()
        lost_at = referral.closed_at or referral.updated_at
        return Inquiry.Status.LOST, {**booked, "lost_at": lost_at, "missed_visit": missed}
    if referral.appointment_at is not None:
        return Inquiry.Status.SCHEDULED, {"scheduled_at": referral.appointment_at}
    return Inquiry.Status.INQUIRY, {}


# What a possible duplicate is matched on (referrals.selectors.possible_duplicates).
MATCHED_ON = frozenset({"direction", "provider", "patient_last_name", "patient_dob"})

STALE_EDIT = (
    "Someone changed this referral after you opened it (see its history), so nothing was "
    "saved. Your values are below: check them and save again to keep them."
)


@transaction.atomic
def referral_edit(
    *,
    referral: Referral,
    fields: Sequence[str],
    actor: User | None,
    version: datetime | None = None,
) -> list[str]:
    """Save in-place edits of a referral's details (an unsaved instance carrying the new
    values of `fields`) and write them to its history: a change of coordinator as an
    assignment event, anything else as one edit event listing old and new values (patient
    fields by name only). The conversion data follow: an inbound referral's inquiry moves
    with its received date, and a change of direction adds or removes the inquiry.
    Returns the names of the fields that changed. With `version` (the updated_at the user
    saw) nothing is saved if the referral changed since: ValidationError(code="stale").
    Only the changed fields are written, so a status move made meanwhile stands."""
    before = Referral.objects.select_for_update().select_related("provider").get(pk=referral.pk)
    if version is not None and before.updated_at != version:
        raise ValidationError(STALE_EDIT, code="stale")
    changed = [
        name
        for name in fields
        if getattr(before, own_field(Referral, name).attname)
        != getattr(referral, own_field(Referral, name).attname)
    ]
    if not changed:
        return []
    at = timezone.now()
    if {"direction", "provider"} & set(changed):
        # The in-network snapshot is taken when a patient is sent; a new recipient is a new
        # sending.
        if referral.direction == Referral.Direction.OUTBOUND:
            referral.in_network = referral.provider.in_network
        else:
            referral.in_network = None
            referral.out_of_network_reason = ""
    referral.full_clean()
    written = {*changed, "updated_at"}
    if {"direction", "provider"} & set(changed):
        written |= {"in_network", "out_of_network_reason"}
    if before.not_duplicate_at is not None and MATCHED_ON & set(changed):
        # Found a referral of its own with other details: checked for copies again.
        referral.not_duplicate_at = None
        written.add("not_duplicate_at")
    referral.save(update_fields=sorted(written))
    if "provider" in changed and referral.direction == Referral.Direction.INBOUND:
        from outreach.services.loop import loop_messages_readdress

        # Logged under the wrong partner: what has not left goes to the right one.
        loop_messages_readdress(referral_id=referral.pk)
    if (
        referral.direction == Referral.Direction.INBOUND
        and referral.patient_initials != before.patient_initials
    ):
        from outreach.services.loop import loop_messages_rename

        # A name mistyped, now corrected: what has not left names the patient rightly.
        loop_messages_rename(
            referral_id=referral.pk, was=before.patient_initials, now=referral.patient_initials
        )
    if "direction" in changed and referral.direction == Referral.Direction.OUTBOUND:
        from outreach.services.loop import loop_messages_withdraw

        # Logged as received by mistake: nothing more goes to the partner about a
        # referral they never made.
        loop_messages_withdraw(referral_id=referral.pk)
    if "direction" in changed and referral.direction == Referral.Direction.INBOUND:
        from referrals.services.consult_reports import consult_report_reminders_withdraw

        # Logged as sent out by mistake: there is no specialist's report to chase.
        consult_report_reminders_withdraw(referral_id=referral.pk)
    if "assigned_to" in changed:
        _record_assignments(
            moves=[(referral.pk, before.assigned_to_id)],
            to_assignee=referral.assigned_to,
            actor=actor,
            at=at,
        )
        from referrals.services.consult_reports import consult_report_reminders_follow

        consult_report_reminders_follow(
            referral_ids=[referral.pk], assignee_id=referral.assigned_to_id
        )
    edits: list[dict[str, str | None]] = []
    for name in changed:
        if name == "assigned_to":
            continue
        label = capfirst(str(own_field(Referral, name).verbose_name))
        if name in PATIENT_FIELDS:
            edits.append({"field": label})
        else:
            edits.append(
                {"field": label, "old": _shown(before, name), "new": _shown(referral, name)}
            )
    edits.extend(_inquiry_follow_edit(referral=referral, before=before, changed=changed))
    if edits:
        _record_edit(referral_id=referral.pk, changes=edits, actor=actor, at=at)
    return changed


def _inquiry_follow_edit(
    *, referral: Referral, before: Referral, changed: list[str]
) -> list[dict[str, str | None]]:
    """Keep the conversion report true after an edit; returns what changed in it."""
    inbound = referral.direction == Referral.Direction.INBOUND
    if "direction" in changed and not inbound:
        if Inquiry.objects.filter(referral=referral).delete()[0]:
            return [
                {
                    "field": "Conversion",
                    "old": "Counted as a partner-referral inquiry",
                    "new": "Not counted (outbound)",
                }
            ]
        return []
    if "direction" in changed and inbound:
        status, dates = _inquiry_stage(referral)
        Inquiry.objects.get_or_create(
            referral=referral,
            defaults={
                "source": Inquiry.Source.PARTNER_REFERRAL,
                "received_at": referral.received_at,
                "status": status,
                **dates,
            },
        )
        return [
            {
                "field": "Conversion",
                "old": "Not counted (outbound)",
                "new": f"Counted as a partner-referral inquiry ({Inquiry.Status(status).label.lower()})",
            }
        ]
    if "received_at" in changed and inbound:
        moved = Inquiry.objects.filter(referral=referral).update(received_at=referral.received_at)
        if moved:
            return [
                {
                    "field": "Inquiry received (conversion)",
                    "old": _shown(before, "received_at"),
                    "new": _shown(referral, "received_at"),
                }
            ]
    return []
