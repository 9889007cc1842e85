from __future__ import annotations

import csv
from collections.abc import Iterator
from datetime import datetime
from itertools import chain
from typing import Any, cast
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Count, F, Q
from django.http import (
    HttpRequest,
    HttpResponse,
    HttpResponseRedirect,
    QueryDict,
    StreamingHttpResponse,
)
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from audit.models import PatientDataAccess
from audit.services import PATIENT_FIELDS, audit_names_listed, audit_record
from core.forms import share_choices
from core.htmx import render_page
from core.pagination import paginate, paginate_capped
from core.types import AuthedRequest
from intake.services import attachments_save
from intake.uploads import bounded_uploads
from outreach.models import Task
from partners.models import Provider
from referrals.bulk import bulk_summary
from referrals.charts import bar_chart
from referrals.forms import (
    AssignForm,
    BulkActionForm,
    InquiryForm,
    OutboundReferralForm,
    PeriodForm,
    ReciprocityForm,
    ReferralEntryForm,
    ReferralFilter,
    ReferralForm,
    TransitionForm,
)
from referrals.models import ACTION_LABELS, REASON_SUGGESTIONS, Inquiry, Referral, Status
from referrals.selectors import (
    get_referral_for_user,
    possible_duplicates,
    reciprocity_over_time,
)
from referrals.services.assignment import referral_assign, referral_claim
from referrals.services.bulk import referral_bulk_apply
from referrals.services.consult_reports import referral_record_consult_report
from referrals.services.edit import referral_edit
from referrals.services.workflow import referral_log, referral_transition

# Actions that need more than a click, and the field each one asks for.
ACTION_FIELDS: dict[str, str] = {
    Status.DECLINED: "decline_reason",
    Status.SCHEDULED: "appointment_at",
    Status.ON_HOLD: "hold_reason",
    Status.CANCELLED: "cancel_reason",
}


@login_required
@permission_required("referrals.view_referral", raise_exception=True)
def referral_list(request: AuthedRequest) -> HttpResponse:
    """The work queue: every referral the user may see, filtered and paginated."""
    filterset = ReferralFilter(
        request.GET or {"open": True},
        queryset=Referral.objects.for_user(request.user).for_queue().with_sla(),
        request=request,
    )
    page = paginate_capped(request, filterset.qs)
    bulk_form = None
    if request.user.has_perm("referrals.change_referral"):
        bulk_form = BulkActionForm()
        share_choices(filterset.form.fields["assigned_to"], bulk_form.fields["assign_to"])
    audit_names_listed(request, [referral.pk for referral in page])
    return render_page(
        request,
        "referrals/referral_list.html",
        {
            "filter": filterset,
            "page": page,
            "bulk_form": bulk_form,
            "back": request.get_full_path(),
        },
        partial="referrals/queue_results.html",
    )


def _queue_return_url(request: HttpRequest) -> str:
    """The queue page the action came from (its filters and page), never an address
    outside this site."""
    target = request.POST.get("next", "")
    # A path on this site only; `redirect()` would take anything else for a URL name.
    if target.startswith("/") and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return reverse("referrals:list")


def _back_to_queue(request: HttpRequest) -> HttpResponse:
    return HttpResponseRedirect(_queue_return_url(request))


@login_required
@require_POST
@permission_required("referrals.change_referral", raise_exception=True)
def referral_bulk(request: AuthedRequest) -> HttpResponse:
    """Assign or move the selected rows together; rows changed since the page loaded are
    skipped and listed, so nobody's change is overwritten silently."""
    form = BulkActionForm(request.POST)
    if not form.is_valid():
        return _bulk_refused(
            request, [" ".join(map(str, errors)) for errors in form.errors.values()]
        )
    try:
        result = referral_bulk_apply(
            queryset=Referral.objects.for_user(request.user, write=True),
            versions=form.cleaned_data["rows"],
            actor=request.user,
            assign_to=form.cleaned_data["assign_to"],
            unassign=form.cleaned_data["unassign"],
            to_status=form.cleaned_data["to_status"],
            reason=form.cleaned_data["reason"],
        )
    except ValidationError as error:
        return _bulk_refused(request, [" ".join(error.messages)])
    done, skipped = bulk_summary(result, form.cleaned_data)
    if done:
        messages.success(request, done)
    for line in skipped:
        messages.warning(request, line)
    if request.htmx:
        # The rows changed: the whole queue page again, with the messages.
        return HttpResponse(status=204, headers={"HX-Redirect": _queue_return_url(request)})
    return _back_to_queue(request)


def _bulk_refused(request: AuthedRequest, problems: list[str]) -> HttpResponse:
    """Nothing was applied. Sent by htmx, only the message is drawn, above the bulk form,
    so the selected rows and the chosen action stay as they were; without JavaScript, back
    to the queue with the message."""
    if request.htmx:
        return render(request, "referrals/bulk_refused.html", {"problems": problems})
    for problem in problems:
        messages.error(request, problem)
    return _back_to_queue(request)


@login_required
@require_POST
def referral_claim_view(request: AuthedRequest, pk: int) -> HttpResponse:
    referral = get_referral_for_user(request.user, pk, write=True)
    if referral_claim(referral_id=referral.pk, user=request.user):
        messages.success(request, f"Referral #{referral.pk} is yours.")
    else:
        messages.warning(request, f"Referral #{referral.pk} was already taken by someone else.")
    return _back_to_queue(request)


@login_required
@require_POST
def referral_assign_view(request: AuthedRequest, pk: int) -> HttpResponse:
    referral = get_referral_for_user(request.user, pk, write=True)
    form = AssignForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose a coordinator from the list.")
    elif referral_assign(
        referral=referral,
        assignee=form.cleaned_data["assignee"],
        actor=request.user,
        version=form.cleaned_data["version"],
    ):
        who = form.cleaned_data["assignee"]
        messages.success(
            request,
            f"Referral #{referral.pk} is now with {who.get_full_name() or who}."
            if who
            else f"Referral #{referral.pk} is unassigned.",
        )
    else:
        messages.warning(
            request,
            f"Referral #{referral.pk} was changed by someone else meanwhile; "
            "nothing was overwritten. Check it and try again.",
        )
    return _back_to_queue(request) if request.POST.get("next") else redirect(referral)


@bounded_uploads
@login_required
@permission_required("referrals.add_referral", raise_exception=True)
def referral_create(request: AuthedRequest) -> HttpResponse:
    """Log a referral from a fax, a phone call or a walk-in (?channel= preselects it)."""
    initial = {
        "provider": request.GET.get("provider"),
        "assigned_to": request.user.pk,
        "channel": request.GET.get("channel", Referral.Channel.FAX),
    }
    form = ReferralEntryForm(request.POST or None, request.FILES or None, initial=initial)
    duplicates: list[Referral] = []
    if request.method == "POST" and form.is_valid():
        # Check, then do: a likely duplicate is shown first and saved only when the
        # coordinator confirms it is a new referral.
        if not form.cleaned_data["confirm_duplicate"]:
            duplicates = list(
                possible_duplicates(
                    provider=form.cleaned_data["provider"],
                    patient_last_name=form.cleaned_data["patient_last_name"],
                    patient_dob=form.cleaned_data["patient_dob"],
                )[:10]
            )
        if duplicates:
            form.ask_to_confirm_duplicate()
        else:
            try:
                referral = _log_with_documents(request, form)
            except ValidationError as error:
                form.add_error(None, error)
            else:
                messages.success(request, f"Referral #{referral.pk} was logged.")
                return redirect(referral)
    if request.method == "POST":
        form.ask_to_attach_again()
    return render(request, "referrals/referral_form.html", {"form": form, "duplicates": duplicates})


@transaction.atomic
def _log_with_documents(request: AuthedRequest, form: ReferralEntryForm) -> Referral:
    referral = referral_log(referral=form.instance, actor=request.user)
    audit_record(
        action=PatientDataAccess.Action.CREATE,
        referral_ids=[referral.pk],
        user=request.user,
        request=request,
    )
    attachments_save(
        referral=referral, documents=form.cleaned_data["documents"], actor=request.user
    )
    return referral


@login_required
@permission_required("referrals.add_referral", raise_exception=True)
def referral_refer_out(request: AuthedRequest) -> HttpResponse:
    """Send a patient to a specialist in the network (or, with a reason, outside it)."""
    initial = {"provider": request.GET.get("provider"), "assigned_to": request.user.pk}
    form = OutboundReferralForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            referral = referral_log(referral=form.instance, actor=request.user)
        except ValidationError as error:
            form.add_error(None, error)
        else:
            messages.success(request, f"Referral #{referral.pk} to the specialist was logged.")
            return redirect(referral)
    return render(request, "referrals/referral_form.html", {"form": form, "outbound": True})


@login_required
@require_POST
def referral_consult_report(request: AuthedRequest, pk: int) -> HttpResponse:
    referral = get_referral_for_user(request.user, pk, write=True)
    try:
        recorded = referral_record_consult_report(referral=referral, actor=request.user)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        if recorded:
            messages.success(request, "The consult report is recorded as received.")
        else:
            messages.info(request, "The consult report was already recorded.")
    return redirect(referral)


@login_required
def referral_update(request: AuthedRequest, pk: int) -> HttpResponse:
    referral = get_referral_for_user(request.user, pk, write=True)
    form = ReferralForm(request.POST or None, instance=referral)
    if request.method == "POST" and form.is_valid():
        try:
            with transaction.atomic():
                referral_edit(
                    referral=form.save(commit=False),
                    fields=form.Meta.fields,
                    actor=request.user,
                    version=form.cleaned_data["version"],
                )
                changed = [name for name in form.changed_data if name in PATIENT_FIELDS]
                if changed:
                    audit_record(
                        action=PatientDataAccess.Action.CHANGE,
                        referral_ids=[referral.pk],
                        user=request.user,
                        fields=changed,
                        request=request,
                    )
        except ValidationError as error:
            if error.code != "stale":
                raise
            # The user's values stay; the next save is measured against the current row.
            form.data = data = cast(QueryDict, form.data).copy()  # bound to request.POST
            data["version"] = (
                Referral.objects.filter(pk=referral.pk).values_list("updated_at", flat=True).get()
            ).isoformat()
            form.add_error(None, error)
        else:
            messages.success(request, "Changes saved.")
            return redirect(referral)
    if request.method == "GET" and request.user.has_perm("referrals.view_patient_details"):
        # The edit form shows every patient field.
        audit_record(
            action=PatientDataAccess.Action.VIEW,
            referral_ids=[referral.pk],
            user=request.user,
            request=request,
        )
    return render(request, "referrals/referral_form.html", {"form": form, "referral": referral})


def _workflow_context(request: AuthedRequest, referral: Referral, **extra: Any) -> dict[str, Any]:
    can_change = request.user.has_perm("referrals.change_referral")
    actions = (
        [
            {
                "status": status,
                "label": ACTION_LABELS[status],
                "field": ACTION_FIELDS.get(status),
                "suggestions": REASON_SUGGESTIONS.get(status, ()),
            }
            for status in referral.allowed_transitions()
        ]
        if can_change
        else []
    )
    return {
        "referral": referral,
        "actions": actions,
        "events": referral.events.for_timeline(),
        "assign_form": AssignForm(
            initial={
                "assignee": referral.assigned_to_id,
                "version": referral.updated_at.isoformat(),
            }
        )
        if can_change
        else None,
        **extra,
    }


@login_required
def referral_detail(request: AuthedRequest, pk: int) -> HttpResponse:
    # The office-link submission it came from, if any, in the same query.
    referral = get_referral_for_user(request.user, pk, related=("intake_submission",))
    context = _workflow_context(request, referral)
    context["tasks"] = referral.tasks.select_related("assignee")
    context["letters"] = referral.letters.all()
    # Listed for everyone who sees the referral; linked for those who may open them.
    context["can_open_task"] = Task.objects.openable_by(request.user)
    context["can_open_letter"] = referral.letters.openable_by(request.user)
    context["submission"] = getattr(referral, "intake_submission", None)
    if request.user.has_perm("referrals.view_patient_details"):
        audit_record(
            action=PatientDataAccess.Action.VIEW,
            referral_ids=[referral.pk],
            user=request.user,
            request=request,
        )
        context["attachments"] = referral.attachments.all()
        context["duplicate_window_days"] = settings.DUPLICATE_WINDOW_DAYS
        context["duplicates"] = possible_duplicates(
            provider=referral.provider,
            patient_last_name=referral.patient_last_name,
            patient_dob=referral.patient_dob,
            exclude_pk=referral.pk,
        )[:10]
    return render(request, "referrals/referral_detail.html", context)


@login_required
@require_POST
def referral_transition_view(request: AuthedRequest, pk: int) -> HttpResponse:
    referral = get_referral_for_user(request.user, pk, write=True)
    form = TransitionForm(request.POST)
    error = None
    if form.is_valid():
        try:
            referral = referral_transition(
                referral=referral,
                to_status=form.cleaned_data["to_status"],
                actor=request.user,
                note=form.cleaned_data["note"],
                decline_reason=form.cleaned_data["decline_reason"],
                appointment_at=form.cleaned_data["appointment_at"],
                hold_reason=form.cleaned_data["hold_reason"],
                cancel_reason=form.cleaned_data["cancel_reason"],
            )
        except ValidationError as exc:
            error = " ".join(exc.messages)
        else:
            if not request.htmx:
                messages.success(request, f"Referral is now {referral.get_status_display()}.")
                return redirect(referral)
    else:
        error = " ".join(", ".join(map(str, errors)) for errors in form.errors.values())
    if error and not request.htmx:
        messages.error(request, error)
        return redirect(referral)
    referral.refresh_from_db()
    return render_page(
        request,
        "referrals/referral_detail.html",
        _workflow_context(request, referral, error=error),
        # 200 even for a refused move: htmx swaps only successful responses, and the
        # partial itself shows the message.
        partial="referrals/referral_workflow.html",
    )


@login_required
@require_POST
@permission_required("referrals.delete_referral", raise_exception=True)
def referral_delete(request: AuthedRequest, pk: int) -> HttpResponse:
    referral = get_referral_for_user(request.user, pk, write=True)
    number = referral.pk
    referral.delete()
    messages.success(request, f"Referral #{number} was deleted.")
    return redirect("referrals:list")


@login_required
@permission_required("referrals.view_referral_reports", raise_exception=True)
def leakage_report(request: AuthedRequest) -> HttpResponse:
    """Outbound referrals in a period: how many left the preferred network, to whom and
    why, each figure linking to the rows behind it."""
    period = PeriodForm(request.GET)
    if not period.is_valid():
        return render(request, "referrals/leakage_report.html", {"period": period})
    start, end = period.bounds()
    sent = Referral.objects.outbound().filter(received_at__gte=start, received_at__lt=end)
    totals = sent.aggregate(
        total=Count("pk"),
        sent_in=Count("pk", filter=Q(in_network=True)),
        sent_out=Count("pk", filter=Q(in_network=False)),
    )
    # Referrals sent before the network was recorded count in neither share.
    known = totals["sent_in"] + totals["sent_out"]
    totals["unknown"] = totals["total"] - known
    totals["known"] = known
    totals["leakage"] = totals["sent_out"] / known * 100 if known else None
    leaked = sent.filter(in_network=False)
    by_specialist = paginate(
        request,
        leaked.values("provider", "provider__first_name", "provider__last_name")
        .annotate(n=Count("pk"))
        .order_by("-n", "provider"),
    )
    reasons = leaked.values("out_of_network_reason").annotate(n=Count("pk")).order_by("-n")[:10]
    drill = urlencode(
        {
            "direction": "outbound",
            "network": "false",
            "received_after": period.cleaned_data["since"].isoformat(),
            "received_before": period.cleaned_data["until"].isoformat(),
            "open": "",
        }
    )
    return render(
        request,
        "referrals/leakage_report.html",
        {
            "period": period,
            "totals": totals,
            "page": by_specialist,
            "reasons": reasons,
            "drill": drill,
        },
    )


@login_required
@permission_required("referrals.view_referral_reports", raise_exception=True)
def reciprocity_report(request: AuthedRequest) -> HttpResponseBase:
    """Referrals received from and sent to each partner over a period, busiest first;
    ?format=csv downloads every row."""
    period = ReciprocityForm(request.GET)
    if not period.is_valid():
        return render(request, "referrals/reciprocity_report.html", {"period": period})
    start, end = period.bounds()
    partners = (
        Provider.objects.with_reciprocity(since=start, until=end)
        .annotate(volume=F("sent") + F("received"))
        .order_by("-volume", "last_name", "pk")
        .only("pk", "first_name", "last_name", "credential", "npi")
    )
    if request.GET.get("format") == "csv":
        return _reciprocity_csv(partners, period)
    totals = Referral.objects.filter(received_at__gte=start, received_at__lt=end).aggregate(
        received=Count("received_at", filter=Q(direction=Referral.Direction.INBOUND)),
        sent=Count("received_at", filter=Q(direction=Referral.Direction.OUTBOUND)),
    )
    query = request.GET.copy()
    query.pop("page", None)
    query["format"] = "csv"
    return render(
        request,
        "referrals/reciprocity_report.html",
        {
            "period": period,
            "page": paginate(request, partners),
            "totals": totals,
            "csv_query": query.urlencode(),
            **_reciprocity_over_time(period),
        },
    )


def _reciprocity_over_time(period: ReciprocityForm) -> dict[str, Any]:
    """Received vs sent per month (or year), overall or for the chosen partner, as a chart
    and the table beside it."""
    partner = period.cleaned_data["provider"]
    kind, rows = reciprocity_over_time(
        since=period.cleaned_data["since"], until=period.cleaned_data["until"], provider=partner
    )
    who = "this partner" if partner else "all partners"
    chart = bar_chart(
        title=f"Received vs sent per {kind}",
        description=(
            f"Referrals received from and sent to {who}, per {kind}: "
            + "; ".join(f"{r['label']}: {r['received']} received, {r['sent']} sent" for r in rows)
        ),
        labels=[row["label"] for row in rows],
        series=[
            ("Received", [row["received"] for row in rows]),
            ("Sent", [row["sent"] for row in rows]),
        ],
    )
    query = cast(QueryDict, period.data).copy()  # bound to request.GET
    query.pop("page", None)
    query.pop("provider", None)
    return {
        "flow_kind": kind,
        "flow": rows,
        "flow_chart": chart,
        "flow_partner": partner,
        "period_query": query.urlencode(),
    }


# Spreadsheet programs run a cell that starts with one of these as a formula.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
EXPORT_COLUMNS = [
    ("pk", "Referral #"),
    ("received_at", "Received"),
    ("direction", "Direction"),
    ("status", "Status"),
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


def _csv_cell(value: Any) -> str:
    text = "" if value is None else str(value)
    # A leading apostrophe keeps hostile text ("=HYPERLINK(...)") from running as a formula.
    return "'" + text if text.startswith(FORMULA_STARTS) else text


class _Echo:
    """A file-like object whose write returns the line, for streaming csv.writer output."""

    def write(self, value: str) -> str:
        return value


def _reciprocity_csv(partners: Any, period: PeriodForm) -> StreamingHttpResponse:
    writer = csv.writer(_Echo())
    header = ["npi", "partner", "received", "sent", "balance (sent - received)"]
    rows = (
        [p.npi, _csv_cell(p.display_name), p.received, p.sent, p.balance]
        for p in partners.iterator()
    )
    since, until = period.cleaned_data["since"], period.cleaned_data["until"]
    response = StreamingHttpResponse(
        (writer.writerow(row) for row in chain([header], rows)), content_type="text/csv"
    )
    response["Content-Disposition"] = f'attachment; filename="reciprocity-{since}-{until}.csv"'
    return response


@login_required
@permission_required("referrals.view_referral_reports", raise_exception=True)
def conversion_report(request: AuthedRequest) -> HttpResponse:
    """Conversion by source from the practice's own inquiries, with the denominators."""
    period = PeriodForm(request.GET)
    if not period.is_valid():
        return render(request, "referrals/conversion_report.html", {"period": period})
    start, end = period.bounds()
    rows = Inquiry.objects.conversion_by_source(since=start, until=end)
    return render(
        request,
        "referrals/conversion_report.html",
        {
            "period": period,
            "rows": rows,
            "funnel_chart": _conversion_chart(rows),
            "lost_reasons": Referral.objects.lost_reasons(since=start, until=end),
            "open_inquiries": paginate(
                request,
                Inquiry.objects.filter(
                    referral__isnull=True,
                    status__in=[Inquiry.Status.INQUIRY, Inquiry.Status.SCHEDULED],
                ),
            ),
        },
    )


def _conversion_chart(rows: list[dict[str, Any]]) -> str:
    """The funnel of each source as shares of its inquiries, so sources of very different
    size compare; the counts behind each share are in the table beside it."""
    return bar_chart(
        title="Funnel by source (% of inquiries)",
        description="Share of each source's inquiries that were scheduled and seen as new "
        "patients: "
        + "; ".join(
            f"{row['label']}: "
            + (
                f"{row['scheduled_rate']:.0f}% scheduled, {row['conversion_rate']:.0f}% seen "
                f"of {row['inquiries']} inquiries"
                if row["inquiries"]
                else "no inquiries"
            )
            for row in rows
        ),
        labels=[f"{row['label'].split(' (')[0]} (n={row['inquiries']})" for row in rows],
        series=[
            ("Scheduled", [row["scheduled_rate"] for row in rows]),
            ("Seen as new patient", [row["conversion_rate"] for row in rows]),
        ],
        horizontal=True,
        percent=True,
        height=420,
    )


@login_required
def inquiry_edit(request: AuthedRequest, pk: int | None = None) -> HttpResponse:
    """Log an inquiry from web, advertising, a directory or the patient, or move one on."""
    perm = "referrals.change_inquiry" if pk else "referrals.add_inquiry"
    if not request.user.has_perm(perm):
        raise PermissionDenied
    inquiry = get_object_or_404(Inquiry, pk=pk, referral__isnull=True) if pk is not None else None
    form = InquiryForm(request.POST or None, instance=inquiry)
    if request.method == "POST" and form.is_valid():
        saved = form.save(commit=False)
        if inquiry is None:
            saved.created_by = request.user
        saved.save()
        messages.success(request, "Inquiry saved.")
        return redirect("referrals:conversion")
    return render(request, "referrals/inquiry_form.html", {"form": form, "inquiry": inquiry})


@login_required
@permission_required("referrals.view_patient_details", raise_exception=True)
def referral_export(request: AuthedRequest) -> StreamingHttpResponse:
    """The work queue, as filtered, as CSV with patient details. Streamed in chunks, and
    each chunk is written to the audit trail as it is sent, so the trail names exactly
    the referrals that left the building."""
    filterset = ReferralFilter(
        request.GET or {"open": True},
        queryset=Referral.objects.for_user(request.user),
        request=request,
    )
    rows = filterset.qs.values_list(*(name for name, _ in EXPORT_COLUMNS))
    writer = csv.writer(_Echo())
    user = request.user

    def lines() -> Iterator[str]:
        yield writer.writerow([label for _, label in EXPORT_COLUMNS])
        chunk: list[tuple[Any, ...]] = []
        for row in rows.iterator(chunk_size=EXPORT_CHUNK):
            chunk.append(row)
            if len(chunk) == EXPORT_CHUNK:
                yield from _sent(chunk)
                chunk = []
        yield from _sent(chunk)

    def _sent(chunk: list[tuple[Any, ...]]) -> Iterator[str]:
        if not chunk:
            return
        audit_record(
            action=PatientDataAccess.Action.EXPORT,
            referral_ids=[row[0] for row in chunk],
            user=user,
            request=request,
        )
        for row in chunk:
            yield writer.writerow(
                [
                    _csv_cell(_export_value(name, value))
                    for (name, _), value in zip(EXPORT_COLUMNS, row, strict=True)
                ]
            )

    filename = f"referrals-{timezone.localdate():%Y-%m-%d}.csv"
    return StreamingHttpResponse(
        lines(),
        content_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
