"""API tokens (made for a user, shown once, stored only as a hash by django-rest-knox) and
referrals received through the FHIR facade."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone
from knox.models import AuthToken

from audit.models import PatientDataAccess
from intake.hl7 import Hl7Error, OrderAlreadyImported
from intake.services import referral_receive_order
from interop.fhir.http import FhirError
from interop.fhir.orders import read_service_request
from partners.models import Provider
from referrals.models import Referral

# Longer-lived credentials than a year are a risk nobody reviews; make a new one instead.
MAX_TOKEN_DAYS = 365


def check_api_token_create(*, user: User, days: int) -> None:
    if not user.is_active:
        raise ValidationError(f"{user.get_username()} is not active: activate them first.")
    if not 1 <= days <= MAX_TOKEN_DAYS:
        raise ValidationError(f"A token lasts from 1 to {MAX_TOKEN_DAYS} days, not {days}.")


@transaction.atomic
def api_token_create(*, user: User, days: int) -> tuple[AuthToken, str]:
    """A token acting as `user`, with that user's role and permissions, expiring after
    `days`. Returns the row and the raw token, which exists only in this return value:
    the database keeps its hash."""
    check_api_token_create(user=user, days=days)
    return AuthToken.objects.create(user=user, expiry=timedelta(days=days))


@transaction.atomic
def api_tokens_delete_expired(*, now: datetime | None = None) -> int:
    """Delete the tokens whose expiry has passed (knox refuses them already, and removes a
    user's expired tokens only when that user next signs in with one). Tokens without an
    expiry are kept. Returns how many were deleted."""
    expired = AuthToken.objects.filter(expiry__lt=now or timezone.now())
    deleted, _ = expired.delete()
    return deleted


def referral_receive_fhir(
    *, data: Any, actor: User, request: HttpRequest | None = None
) -> Referral:
    """An EHR's ServiceRequest as a received e-referral, through the same service as an
    HL7 v2 order (once-only key, history, funnel, audit). Raises FhirError (4xx) saying
    what is wrong with it: 409 for a repeat of an order already received."""
    fhir_order = read_service_request(data)
    provider = Provider.objects.filter(npi=fhir_order.requester_npi).first()
    if provider is None:
        raise FhirError(
            f"No partner in the directory has the requester's NPI {fhir_order.requester_npi}: "
            "add them as a partner first, then send the order again.",
            status=422,
            code="not-found",
        )
    try:
        return referral_receive_order(
            order=fhir_order.order,
            provider=provider,
            actor=actor,
            source=PatientDataAccess.Source.API,
            request=request,
        )
    except OrderAlreadyImported as error:
        # A repeat is a conflict with the resource the first post made, not an order that
        # cannot be processed: the sender learns its id (or sends If-None-Exist to get it
        # back as a 200). The poster may add referrals, so may read every one.
        made = f" as ServiceRequest/{error.referral_id}" if error.referral_id else ""
        raise FhirError(
            f"This ServiceRequest was received before{made} (the same identifier, or the "
            "same content when it has none): it is not created twice. Send the header "
            "If-None-Exist: identifier=system|value to get the existing one back instead.",
            status=409,
            code="duplicate",
        ) from error
    except Hl7Error as error:
        raise FhirError(str(error), status=422, code="business-rule") from error
