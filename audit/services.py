"""The single writer of the patient-data audit trail."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db import connection
from django.http import HttpRequest
from django.utils import timezone

from audit.models import PatientDataAccess
from core.client_ip import client_ip
from core.meta import own_field

# The Referral fields that hold patient data (PHI).
PATIENT_FIELDS = (
    "patient_first_name",
    "patient_last_name",
    "patient_dob",
    "patient_phone",
    "reason",
)
# What an audit row may name: the patient fields, a referral's documents as a whole, and a
# letter about it (to the referring office: patient initials and the dates of their care).
AUDITED_FIELDS = (*PATIENT_FIELDS, "attachments", "letter")

# The actions that only read. A HEAD request runs the page's view as a GET would, but its
# body (the patient data) goes to nobody, so it reads nothing and writes no row. The
# actions that change something are recorded whatever the method.
READ_ACTIONS = frozenset(
    {
        PatientDataAccess.Action.VIEW,
        PatientDataAccess.Action.LIST,
        PatientDataAccess.Action.DOWNLOAD,
        PatientDataAccess.Action.EXPORT,
    }
)


def _client_ip(request: HttpRequest | None) -> str | None:
    # X-Forwarded-For only as far as the practice's own proxies wrote it (TRUSTED_PROXIES):
    # an audit trail must not record an address the client made up.
    return client_ip(request) if request is not None else None


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
    leaves no claim that it happened, while a plain read is recorded at once. A read
    answering a HEAD request writes nothing (READ_ACTIONS)."""
    ids = [int(referral_id) for referral_id in referral_ids]
    if not ids:
        return 0
    if action in READ_ACTIONS and request is not None and request.method == "HEAD":
        return 0
    authenticated = user is not None and getattr(user, "is_authenticated", False)
    # Every row of one call shares everything but the referral.
    shared = {
        "at": timezone.now(),
        "user_id": user.pk if authenticated else None,
        "source": source,
        "action": action,
        "fields": [name for name in fields if name in AUDITED_FIELDS],
        "ip_address": _client_ip(request),
        "request_id": _request_id(request),
    }
    if connection.vendor == "postgresql":
        _insert_postgres(shared, ids)
    else:
        _insert_rows(shared, ids)
    return len(ids)


# The audit row's columns; the referral comes last.
_SHARED_COLUMNS = ("at", "user_id", "source", "action", "fields", "ip_address", "request_id")


def _db_values(shared: dict[str, Any]) -> list[Any]:
    return [
        own_field(PatientDataAccess, name).get_db_prep_save(shared[name], connection)
        for name in _SHARED_COLUMNS
    ]


def _insert_postgres(shared: dict[str, Any], ids: list[int]) -> None:
    """One statement whose text never changes (the referrals travel as one array), so
    Postgres prepares it once per connection. Every list page writes one on every view:
    `bulk_create` cost a tenth of the work queue's time (the ORM builds its statement
    each time and wraps it in BEGIN … COMMIT), and even a hand-made VALUES list cost
    several milliseconds of Python per page for fifty rows."""
    with connection.cursor() as cursor:
        cursor.execute(_POSTGRES_INSERT, [*_db_values(shared), ids])


_POSTGRES_INSERT = (
    f"INSERT INTO {PatientDataAccess._meta.db_table} "  # noqa: S608 (a constant)
    "(at, user_id, source, action, fields, ip_address, request_id, referral_id) "
    "SELECT %s::timestamptz, %s::bigint, %s::varchar, %s::varchar, %s::jsonb, %s::inet, "
    "%s::varchar, referral FROM unnest(%s::bigint[]) AS referral"
)


# Rows per INSERT statement elsewhere (SQLite): 8 parameters each keeps a statement far
# below its parameter limit.
_INSERT_BATCH = 500


def _insert_rows(shared: dict[str, Any], ids: list[int]) -> None:
    """The same rows as a plain VALUES list, 500 to a statement, for SQLite."""
    values = _db_values(shared)
    columns = ", ".join([*_SHARED_COLUMNS, "referral_id"])
    placeholders = "(" + ", ".join(["%s"] * (len(values) + 1)) + ")"
    with connection.cursor() as cursor:
        for start in range(0, len(ids), _INSERT_BATCH):
            batch = ids[start : start + _INSERT_BATCH]
            cursor.execute(
                f"INSERT INTO {PatientDataAccess._meta.db_table} ({columns}) "  # noqa: S608
                f"VALUES {', '.join([placeholders] * len(batch))}",
                [value for referral in batch for value in (*values, referral)],
            )


NAME_FIELDS = ("patient_first_name", "patient_last_name")


def audit_names_listed(
    request: HttpRequest,
    referral_ids: Iterable[int],
    *,
    action: str = PatientDataAccess.Action.LIST,
) -> int:
    """A page that lists referrals shows patients' names to roles allowed to see them (and
    initials to everyone else): for those roles, that is a read of patient data, written to
    the trail like any other. So is a page naming a patient by initials in a letter's
    subject or a task's title; one that names a single one (a task's page) passes VIEW.
    Returns how many rows were written."""
    ids = list(referral_ids)
    if not ids or not request.user.has_perm("referrals.view_patient_details"):
        return 0
    return audit_record(
        action=action,
        referral_ids=ids,
        user=request.user,
        fields=NAME_FIELDS,
        request=request,
    )
