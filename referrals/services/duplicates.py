"""A referral entered twice: the copy is cancelled as a duplicate of the one kept."""

from __future__ import annotations

from datetime import datetime

from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from audit.models import PatientDataAccess
from audit.services import audit_record
from referrals.models import Inquiry, Referral, Status
from referrals.services.history import _record_edit, _record_event

# What a withdrawn letter of the copy says, in the letter lists.
DUPLICATE_WITHDRAWN = "Withdrawn: the referral was a duplicate of #{original}"


@transaction.atomic
def referral_mark_duplicate(
    *,
    referral: Referral,
    original: Referral,
    actor: User | None,
    version: datetime | None = None,
    request: HttpRequest | None = None,
) -> Referral:
    """`referral` is `original` entered again (an office that faxed it twice, a fax and
    then a phone call): it is cancelled as its duplicate and counted nowhere from then on
    (Referral.objects.counted()). Its documents move to the original (the fax with the
    records may have come second), as both histories say and, a change of both
    referrals' documents, the patient-data audit trail (`request` gives its address).

    Unlike a cancellation, the referring office is told nothing (it hears about the
    original) and the copy's letters still waiting are withdrawn; its inquiry is removed,
    so the conversion report counts the patient once. A referral sent out twice (a fax,
    then an e-referral, for the same patient to the same specialist) is marked the same
    way: the specialist is sent nothing (no letter is written for a referral sent out),
    and it counts in no figure (reciprocity, leakage, the partner's own). The history says which referral it
    repeats. With `version`, nothing changes if the referral changed since the user's page
    showed it (ValidationError code "stale"). Raises ValidationError when it cannot be a
    duplicate of that one."""
    from intake.models import ReferralAttachment
    from outreach.models import Letter

    # Both rows locked, lower id first, so two coordinators marking a pair each way at
    # once cannot deadlock or make each the duplicate of the other.
    locked = {
        row.pk: row
        for row in Referral.objects.select_for_update()
        .filter(pk__in=[referral.pk, original.pk])
        .order_by("pk")
    }
    copy, kept = locked.get(referral.pk), locked.get(original.pk)
    if original.pk == referral.pk:
        raise ValidationError({"original": "Choose another referral: the one this one repeats."})
    # A delete locks its rows too: one that came first has removed them by now.
    if copy is None:
        raise ValidationError(f"Referral #{referral.pk} was deleted meanwhile: nothing was marked.")
    if kept is None:
        raise ValidationError(
            {
                "original": f"Referral #{original.pk} was deleted meanwhile, so "
                f"#{referral.pk} was not marked as its duplicate."
            }
        )
    _check_unchanged(
        copy, version, "it was not marked as a duplicate", "mark it again if it still applies"
    )
    check_duplicate(referral=copy, original=kept)
    now = timezone.now()
    from_status = copy.status
    copy.status = Status.CANCELLED
    copy.duplicate_of = kept
    if (
        copy.direction == Referral.Direction.INBOUND
        and copy.contacted_at is None
        and from_status == Status.RECEIVED
    ):
        # Acted on, like any first answer (the SLA clock for contact stops). One sent out
        # runs no clock of ours.
        copy.contacted_at = now
    copy.save(update_fields=["status", "duplicate_of", "contacted_at", "updated_at"])
    moved = ReferralAttachment.objects.filter(referral_id=copy.pk).update(referral_id=kept.pk)
    details = [{"field": "Duplicate of", "new": f"Referral #{kept.pk}"}]
    if moved:
        audit_record(
            action=PatientDataAccess.Action.CHANGE,
            referral_ids=[kept.pk, copy.pk],
            user=actor,
            fields=["attachments"],
            request=request,
        )
        documents = f"{moved} document{'s' if moved > 1 else ''}"
        details.append({"field": "Documents", "new": f"{documents} moved to #{kept.pk}"})
        _record_edit(
            referral_id=kept.pk,
            changes=[{"field": "Documents", "new": f"{documents} from its duplicate #{copy.pk}"}],
            actor=actor,
            at=now,
        )
    _record_event(
        referral_id=copy.pk,
        from_status=from_status,
        to_status=Status.CANCELLED,
        actor=actor,
        at=now,
        details=details,
    )
    Letter.objects.filter(
        referral_id=copy.pk, status__in=[Letter.Status.PENDING, Letter.Status.PRINT_QUEUE]
    ).update(
        status=Letter.Status.CANCELLED, last_error=DUPLICATE_WITHDRAWN.format(original=kept.pk)
    )
    Inquiry.objects.filter(referral_id=copy.pk).delete()
    return copy


def _check_unchanged(
    locked: Referral,
    version: datetime | None,
    outcome: str = "nothing was changed",
    retry: str = "try again if it still applies",
) -> None:
    """The referral (locked) is as the user's page showed it (`version`, its updated_at;
    None asks nothing), else ValidationError code "stale" saying what it is now."""
    if version is not None and locked.updated_at != version:
        raise ValidationError(
            f"Someone changed this referral after you opened it (it is now "
            f"{locked.status_label}; see its history), so {outcome}. Check it below and "
            f"{retry}.",
            code="stale",
        )


def check_duplicate(*, referral: Referral, original: Referral) -> None:
    """May `referral` be marked as a duplicate of `original`? Raises ValidationError
    saying why not."""
    if referral.duplicate_of_id is not None:
        raise ValidationError(
            f"It is already marked as a duplicate of referral #{referral.duplicate_of_id}."
        )
    if referral.status == Status.SCHEDULED and referral.appointment_at is not None:
        # Cancelled quietly, its appointment would stay in the practice's book (and the
        # office may have been told its date): the booked one is the one to keep.
        booked = f"{timezone.localtime(referral.appointment_at):%b %-d, %Y at %-I:%M %p}"
        raise ValidationError(
            f"Referral #{referral.pk} has an appointment booked ({booked}): keep it, and "
            "mark the other referral as its copy instead."
        )
    if Status.CANCELLED not in referral.allowed_transitions():
        raise ValidationError(
            f"{referral.transition_refusal(Status.CANCELLED)[0].upper()}"
            f"{referral.transition_refusal(Status.CANCELLED)[1:]}, so it cannot be marked as "
            "a duplicate."
        )
    if original.direction != referral.direction:
        # A patient a partner sent us and one we sent that partner are two referrals.
        ways = (
            ("received", "sent out")
            if original.direction == Referral.Direction.INBOUND
            else ("sent out", "received")
        )
        raise ValidationError(
            {
                "original": f"Referral #{original.pk} was {ways[0]}, and this one {ways[1]}: "
                "choose the referral this one repeats."
            }
        )
    if not _same_patient_and_partner(referral, original):
        raise ValidationError(
            {
                "original": f"Referral #{original.pk} is not the same patient from the same "
                "partner (last name, birth date, and the partner or their office): if one "
                "was mistyped, correct it first."
            }
        )
    if original.duplicate_of_id is not None:
        raise ValidationError(
            {
                "original": f"Referral #{original.pk} is itself a duplicate of referral "
                f"#{original.duplicate_of_id}: mark this one as a duplicate of that one."
            }
        )
    if referral.duplicates.exists():
        raise ValidationError(
            "Other referrals are marked as duplicates of this one: it is the one kept."
        )


def _same_patient_and_partner(one: Referral, other: Referral) -> bool:
    """As possible_duplicates matches them (one query for the two partners' offices)."""
    if one.patient_dob != other.patient_dob:
        return False
    if one.patient_last_name.strip().lower() != other.patient_last_name.strip().lower():
        return False
    if one.provider_id == other.provider_id:
        return True
    from partners.models import Provider

    offices = dict(
        Provider.objects.filter(pk__in=[one.provider_id, other.provider_id]).values_list(
            "pk", "organization_id"
        )
    )
    office = offices.get(one.provider_id)
    return office is not None and office == offices.get(other.provider_id)


@transaction.atomic
def referral_unmark_duplicate(
    *, referral: Referral, actor: User | None, version: datetime | None = None
) -> Referral:
    """Undo referral_mark_duplicate (the wrong one was marked): the referral goes back to
    the status it was cancelled from, counts again, and gets its inquiry back at that
    stage. The letters the mark withdrew go out after all: not a copy, it is a referral
    the office hears about in its own right (a hold asks for what it waits for).
    Documents moved to the original stay there. One sent out gets no inquiry (it never
    had one). Raises ValidationError when it is not a duplicate, or has moved on since (closed)."""
    from outreach.models import Letter

    copy = Referral.objects.select_for_update().get(pk=referral.pk)
    _check_unchanged(copy, version)
    if copy.duplicate_of_id is None:
        raise ValidationError("It is not marked as a duplicate.")
    if copy.status != Status.CANCELLED:
        raise ValidationError(
            f"It has moved on since it was marked (it is now {copy.status_label.lower()}): "
            "it stays a duplicate."
        )
    marked = (
        copy.events.filter(to_status=Status.CANCELLED)
        .order_by("-at", "-pk")
        .only("from_status", "at")
    ).first()
    restored = marked.from_status if marked is not None and marked.from_status else Status.RECEIVED
    original = copy.duplicate_of_id
    now = timezone.now()
    copy.status = restored
    copy.duplicate_of = None
    # Found not to be a copy: no longer flagged as a possible one of the same referral.
    copy.not_duplicate_at = now
    if restored == Status.RECEIVED and (marked is None or copy.contacted_at == marked.at):
        # The marking was its first answer (referral_mark_duplicate stopped the contact
        # clock): back to received, it waits for its first contact again.
        copy.contacted_at = None
    copy.save(
        update_fields=["status", "duplicate_of", "contacted_at", "not_duplicate_at", "updated_at"]
    )
    _record_event(
        referral_id=copy.pk,
        from_status=Status.CANCELLED,
        to_status=restored,
        actor=actor,
        at=now,
        details=[{"field": "Duplicate of", "old": f"Referral #{original}", "new": "none"}],
    )
    # Back where the mark found them: waiting to be sent (the status it was put back to is
    # the one they were written for).
    Letter.objects.filter(
        referral_id=copy.pk,
        status=Letter.Status.CANCELLED,
        last_error=DUPLICATE_WITHDRAWN.format(original=original),
    ).update(status=Letter.Status.PENDING, last_error="")
    if copy.direction == Referral.Direction.OUTBOUND:
        # An inquiry is a patient coming to us: a referral sent out never had one.
        return copy
    scheduled_at = None
    if restored in (Status.SCHEDULED, Status.NO_SHOW):
        scheduled_at = (
            copy.events.filter(to_status=Status.SCHEDULED)
            .order_by("at")
            .values_list("at", flat=True)
            .first()
        ) or now
    Inquiry.objects.create(
        source=Inquiry.Source.PARTNER_REFERRAL,
        referral=copy,
        received_at=copy.received_at,
        status=Inquiry.Status.SCHEDULED if scheduled_at else Inquiry.Status.INQUIRY,
        scheduled_at=scheduled_at,
        created_by=actor,
    )
    return copy


def confirmed_distinct(referral: Referral, other: Referral) -> bool:
    """Has a coordinator found one of the two a referral of its own since the other was
    entered (referral_confirm_not_duplicate)? Then they are not a possible pair."""
    return (
        referral.not_duplicate_at is not None and referral.not_duplicate_at >= other.created_at
    ) or (other.not_duplicate_at is not None and other.not_duplicate_at >= referral.created_at)


def not_duplicate_note(others: list[Referral]) -> dict[str, str | None]:
    """The history's line for the decision that a referral is not a copy of `others`."""
    named = ", ".join(f"#{other.pk}" for other in others)
    return {"field": "Possible duplicate", "new": f"A referral of its own, not a copy of {named}"}


@transaction.atomic
def referral_confirm_not_duplicate(
    *, referral: Referral, actor: User | None, version: datetime | None = None
) -> Referral:
    """The coordinator compared `referral` with its possible duplicates and found it a
    referral of its own (a second referral for another problem, a patient seen again):
    it is no longer flagged as a copy of any of them, as its history says, naming them.
    A referral of the same patient entered later is a question again. Raises
    ValidationError when it changed since the user's page showed it (code "stale") or
    there is nothing to confirm."""
    from referrals.selectors import possible_duplicates

    locked = Referral.objects.select_for_update().select_related("provider").get(pk=referral.pk)
    _check_unchanged(locked, version)
    if locked.duplicate_of_id is not None:
        raise ValidationError(
            "It is marked as a duplicate: put it back to work first if it is not a copy."
        )
    others = [
        other
        for other in possible_duplicates(
            provider=locked.provider,
            patient_last_name=locked.patient_last_name,
            patient_dob=locked.patient_dob,
            direction=locked.direction,
            exclude_pk=locked.pk,
            around=locked.received_at,
        ).order_by("pk")
        if other.duplicate_of_id is None and not confirmed_distinct(locked, other)
    ]
    if not others:
        raise ValidationError("It has no possible duplicate left to look at.")
    now = timezone.now()
    locked.not_duplicate_at = now
    locked.save(update_fields=["not_duplicate_at", "updated_at"])
    _record_edit(referral_id=locked.pk, changes=[not_duplicate_note(others)], actor=actor, at=now)
    return locked
