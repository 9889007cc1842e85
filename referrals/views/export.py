"""The work queue as a CSV file with patient details, each chunk audited as it is sent."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.http import HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import timezone

from audit.models import PatientDataAccess
from audit.services import audit_record
from core.csv_cells import csv_download, safe_cell
from core.types import AuthedRequest
from referrals.forms import ReferralFilter
from referrals.models import Referral, Status

EXPORT_COLUMNS = [
    ("pk", "Referral #"),
    ("received_at", "Received"),
    ("direction", "Direction"),
    ("status", "Status"),
    # A copy cancelled as a duplicate (counted in no figure): the referral it repeats.
    ("duplicate_of", "Duplicate of"),
    ("urgency", "Urgency"),
    ("channel", "Channel"),
    ("provider__npi", "Partner NPI"),
    ("provider__last_name", "Partner last name"),
    ("provider__first_name", "Partner first name"),
    ("patient_last_name", "Patient last name"),
    ("patient_first_name", "Patient first name"),
    ("patient_dob", "Patient date of birth"),
    ("patient_phone", "Patient phone"),
    ("reason", "Reason"),
]
EXPORT_CHUNK = 2000
# What a spreadsheet reader sees: labels rather than codes, local times to the minute.
EXPORT_LABELS = {
    "direction": dict(Referral.Direction.choices),
    "status": dict(Status.choices),
    "urgency": dict(Referral.Urgency.choices),
    "channel": dict(Referral.Channel.choices),
}


def _export_value(name: str, value: Any) -> Any:
    if name in EXPORT_LABELS:
        return EXPORT_LABELS[name].get(value, value)
    if isinstance(value, datetime):
        return f"{timezone.localtime(value):%Y-%m-%d %H:%M}"
    return value


@login_required
@permission_required("referrals.view_patient_details", raise_exception=True)
def referral_export(request: AuthedRequest) -> HttpResponse | StreamingHttpResponse:
    """The work queue, as filtered, as CSV with patient details. Streamed in chunks, and
    each chunk is written to the audit trail as it is sent, so the trail names exactly
    the referrals that left the building."""
    filterset = ReferralFilter.for_queue(
        request.GET, queryset=Referral.objects.for_user(request.user), request=request
    )
    if not filterset.is_valid():
        # The queue shows such a list with a warning; a file of patient details cannot
        # carry one, so it is not made: more patients than asked would leave the building.
        problems = "; ".join(
            f"{filterset.form.fields[field].label if field in filterset.form.fields else 'Filters'}: "
            + " ".join(errors)
            for field, errors in filterset.errors.items()
        )
        messages.error(
            request, f"Nothing was exported: these filters could not be read. {problems}"
        )
        return redirect(f"{reverse('referrals:list')}?{request.GET.urlencode()}")
    rows = filterset.qs.values_list(*(name for name, _ in EXPORT_COLUMNS))
    user = request.user

    def lines() -> Iterator[list[Any]]:
        yield [label for _, label in EXPORT_COLUMNS]
        chunk: list[tuple[Any, ...]] = []
        for row in rows.iterator(chunk_size=EXPORT_CHUNK):
            chunk.append(row)
            if len(chunk) == EXPORT_CHUNK:
                yield from _sent(chunk)
                chunk = []
        yield from _sent(chunk)

    def _sent(chunk: list[tuple[Any, ...]]) -> Iterator[list[Any]]:
        if not chunk:
            return
        audit_record(
            action=PatientDataAccess.Action.EXPORT,
            referral_ids=[row[0] for row in chunk],
            user=user,
            request=request,
        )
        for row in chunk:
            yield [
                safe_cell(_export_value(name, value))
                for (name, _), value in zip(EXPORT_COLUMNS, row, strict=True)
            ]

    return csv_download(f"referrals-{timezone.localdate():%Y-%m-%d}.csv", lines())
