"""The single writer of the patient-data audit trail."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db import connection
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
    _insert(rows)
    return len(rows)


# Rows per INSERT statement: 8 parameters each keeps a statement far below the parameter
# limits of both SQLite and Postgres.
_INSERT_BATCH = 500


def _insert(rows: list[PatientDataAccess]) -> None:
    """Write the rows with one INSERT statement per 500, in the caller's transaction if it
    has one. Every list page writes one of these on every view, and `bulk_create` cost a
    tenth of the work queue's time: it builds the statement through the ORM each time and
    wraps it in BEGIN … COMMIT, two more round trips to the database."""
    fields = [
        field
        for field in PatientDataAccess._meta.concrete_fields
        if not field.primary_key  # the id comes from the database
    ]
    quote = connection.ops.quote_name
    columns = ", ".join(quote(field.column) for field in fields)
    placeholders = "(" + ", ".join(["%s"] * len(fields)) + ")"
    with connection.cursor() as cursor:
        for start in range(0, len(rows), _INSERT_BATCH):
            batch = rows[start : start + _INSERT_BATCH]
            params = [
                field.get_db_prep_save(field.pre_save(row, add=True), connection)
                for row in batch
                for field in fields
            ]
            cursor.execute(
                f"INSERT INTO {quote(PatientDataAccess._meta.db_table)} ({columns}) "  # noqa: S608
                f"VALUES {', '.join([placeholders] * len(batch))}",
                params,
            )


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
