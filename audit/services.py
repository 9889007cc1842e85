"""The single writer of the patient-data audit trail."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.http import HttpRequest

from audit.models import PatientDataAccess

# The Referral fields that hold patient data (PHI).
PATIENT_FIELDS = (
    "patient_first_name",
    "patient_last_name",
    "patient_dob",
    "patient_phone",
    "reason",
)


def _client_ip(request: HttpRequest | None) -> str | None:
    if request is None:
        return None
    # REMOTE_ADDR only: X-Forwarded-For is whatever the client says unless a proxy we
    # trust rewrites it, and an audit trail must not record a forged address.
    return request.META.get("REMOTE_ADDR") or None


def _request_id(request: HttpRequest | None) -> str:
    if request is None:
        return ""
    return str(request.META.get("HTTP_X_REQUEST_ID", ""))[:64]


def audit_record(
    *,
    action: str,
    referral_ids: Iterable[int],
    user: Any = None,
    fields: Iterable[str] = PATIENT_FIELDS,
    source: str = PatientDataAccess.Source.APP,
    request: HttpRequest | None = None,
) -> int:
    """Write one audit row per referral, in one query. Returns how many were written.

    Not atomic on its own: it joins the caller's transaction, so a rolled-back change
    leaves no claim that it happened, while a plain read is recorded at once."""
    field_names = [name for name in fields if name in PATIENT_FIELDS]
    authenticated = user is not None and getattr(user, "is_authenticated", False)
    rows = [
        PatientDataAccess(
            user=user if authenticated else None,
            source=source,
            action=action,
            referral_id=referral_id,
            fields=field_names,
            ip_address=_client_ip(request),
            request_id=_request_id(request),
        )
        for referral_id in referral_ids
    ]
    if len(rows) == 1:
        # One INSERT; bulk_create would wrap even a single row in BEGIN … COMMIT.
        rows[0].save(force_insert=True)
    else:
        PatientDataAccess.objects.bulk_create(rows)
    return len(rows)


NAME_FIELDS = ("patient_first_name", "patient_last_name")


def audit_names_listed(request: HttpRequest, referral_ids: Iterable[int]) -> int:
    """A page that lists referrals shows patients' names to roles allowed to see them (and
    initials to everyone else): for those roles, that is a read of patient data, written to
    the trail like any other. Returns how many rows were written."""
    ids = list(referral_ids)
    if not ids or not request.user.has_perm("referrals.view_patient_details"):
        return 0
    return audit_record(
        action=PatientDataAccess.Action.LIST,
        referral_ids=ids,
        user=request.user,
        fields=NAME_FIELDS,
        request=request,
    )
