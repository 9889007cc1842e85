"""The FHIR R4 facade: thin views over the permission-aware querysets (interop.selectors),
the resource builders (interop.fhir.resources) and the intake service. Token auth only."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, ClassVar, NoReturn, TypeVar
from urllib.parse import urlencode

from django.core.exceptions import RequestDataTooBig
from django.db.models import Model, QuerySet
from django.http import Http404, QueryDict
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils import timezone
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from audit.models import PatientDataAccess
from audit.services import PATIENT_FIELDS, audit_record
from core.ids import parse_id
from interop import selectors
from interop.fhir import resources
from interop.fhir.forms import (
    OrganizationSearchForm,
    PractitionerRoleSearchForm,
    PractitionerSearchForm,
    SearchForm,
    ServiceRequestSearchForm,
)
from interop.fhir.http import (
    ACCEPTED_CONTENT_TYPES,
    FhirError,
    FhirJsonRenderer,
    FhirNegotiation,
    fhir_exception_handler,
    operation_outcome,
)
from interop.permissions import HasPermission
from interop.services import referral_receive_fhir
from partners.models import OrganizationRemoval, Provider, ProviderRemoval
from referrals.models import Referral


class FhirView(APIView):
    renderer_classes = [FhirJsonRenderer]
    parser_classes: ClassVar[list[Any]] = []
    content_negotiation_class = FhirNegotiation
    permission_classes = [IsAuthenticated, HasPermission]
    required_permissions: ClassVar[dict[str, str]] = {}
    # FHIR has its own description (metadata); the OpenAPI schema is the REST API's.
    schema = None
    throttle_scope = "fhir"
    # No OPTIONS: R4 has no such interaction, and DRF's answer to it describes the view in
    # its own JSON, not FHIR (GET metadata is how a client learns what is offered).
    http_method_names = ["get", "post", "head"]

    def get_exception_handler(self) -> Callable[..., Response | None]:
        return fhir_exception_handler


def _id(value: str) -> int:
    """A resource id from the path: the app's ids are numbers in ASCII digits; anything
    else ('²', '٣') names no resource."""
    pk = parse_id(value)
    if pk is None:
        raise FhirError("No such resource.", status=404, code="not-found")
    return pk


def _preference(request: Request, name: str) -> str | None:
    """The value of one preference in the Prefer header (RFC 7240), lower case."""
    for preference in request.headers.get("Prefer", "").split(","):
        key, _, value = preference.split(";")[0].partition("=")
        if key.strip().lower() == name:
            return value.strip().strip('"').lower()
    return None


def _handling_strict(request: Request) -> bool:
    """Whether the client asks for strict search handling: unsupported parameters are an
    error rather than ignored (http://hl7.org/fhir/R4/search.html#errors)."""
    return _preference(request, "handling") == "strict"


def _absolute(request: Request, name: str, pk: int | str) -> str:
    return request.build_absolute_uri(reverse(name, args=[pk]))


def _search(
    request: Request,
    *,
    form: SearchForm,
    queryset: QuerySet[Any],
    order: tuple[str, ...],
    to_resource: Callable[[Any], dict[str, Any]],
    detail_name: str,
    on_page: Callable[[list[Any]], None] | None = None,
) -> Response:
    """One page of a searchset Bundle: a count and one query for the page's rows."""
    if _handling_strict(request) and (ignored := form.unsupported()):
        raise FhirError(
            "Prefer: handling=strict, and this server does not support the search parameter "
            f"{', '.join(name[:40] for name in ignored[:10])}. Supported: "
            f"{', '.join(form.fields)}."
        )
    if not form.is_valid():
        raise FhirError(form.error_text())
    matches = queryset.filter(form.filters())
    total = matches.count()
    rows = list(matches.order_by(*order)[form.offset : form.offset + form.count])
    if on_page is not None:
        on_page(rows)
    base = request.build_absolute_uri(request.path)
    used = form.used()
    self_url = f"{base}?{urlencode({**used, '_offset': form.offset}, doseq=True)}"
    next_offset = form.next_offset(total)
    next_url = (
        f"{base}?{urlencode({**used, '_offset': next_offset}, doseq=True)}"
        if next_offset is not None
        else None
    )
    return Response(
        resources.bundle(
            resources=[to_resource(row) for row in rows],
            total=total,
            self_url=self_url,
            next_url=next_url,
            full_url=lambda resource: _absolute(request, detail_name, resource["id"]),
        )
    )


ModelT = TypeVar("ModelT", bound=Model)


def _read(queryset: QuerySet[ModelT], pk: str) -> ModelT:
    return get_object_or_404(queryset, pk=_id(pk))


def _read_partner(request: Request, pk: str, *, resource_type: str) -> Provider:
    """A partner by id for a resource made from it alone (Practitioner, PractitionerRole).
    One deleted or merged away is 410 Gone, as FHIR answers a deleted resource
    (http://hl7.org/fhir/R4/http.html#read), naming the survivor of a merge; an id never
    used stays a 404."""
    provider_id = _id(pk)
    provider = selectors.providers_for(request.user).filter(pk=provider_id).first()
    if provider is not None:
        return provider
    removals = selectors.provider_removals_for(request.user)
    _gone(removals.filter(provider_id=provider_id).first(), "partner", resource_type)


def _gone(
    removal: ProviderRemoval | OrganizationRemoval | None, noun: str, resource_type: str
) -> NoReturn:
    """410 Gone for a record deleted or merged away (naming the survivor), else 404."""
    if removal is None:
        raise Http404
    if removal.merged_into is None:
        raise FhirError(f"This {noun} was deleted.", status=410, code="deleted")
    raise FhirError(
        f"This {noun} was merged into another record: read "
        f"{resource_type}/{removal.merged_into} instead.",
        status=410,
        code="deleted",
    )


class CapabilityStatementView(FhirView):
    """What this server implements, for clients to discover before they ask. Open to
    anyone, as FHIR expects: it names no data."""

    permission_classes = [AllowAny]
    authentication_classes: ClassVar[list[Any]] = []
    # No token to count by, and no database to protect: behind a proxy every caller would
    # share one address's budget.
    throttle_classes: ClassVar[list[Any]] = []

    def get(self, request: Request) -> Response:
        base = request.build_absolute_uri(reverse("fhir:metadata")).removesuffix("metadata")
        return Response(resources.capability_statement(base_url=base, now=timezone.now()))


class PractitionerListView(FhirView):
    required_permissions: ClassVar[dict[str, str]] = {"GET": "partners.view_provider"}

    def get(self, request: Request) -> Response:
        return _search(
            request,
            form=PractitionerSearchForm(request.query_params),
            queryset=selectors.providers_for(request.user),
            order=("last_name", "first_name", "pk"),
            to_resource=resources.practitioner,
            detail_name="fhir:practitioner",
        )


class PractitionerView(FhirView):
    required_permissions: ClassVar[dict[str, str]] = {"GET": "partners.view_provider"}

    def get(self, request: Request, pk: str) -> Response:
        provider = _read_partner(request, pk, resource_type="Practitioner")
        return Response(resources.practitioner(provider))


class PractitionerRoleListView(FhirView):
    required_permissions: ClassVar[dict[str, str]] = {"GET": "partners.view_provider"}

    def get(self, request: Request) -> Response:
        return _search(
            request,
            form=PractitionerRoleSearchForm(request.query_params),
            queryset=selectors.providers_for(request.user),
            order=("last_name", "first_name", "pk"),
            to_resource=resources.practitioner_role,
            detail_name="fhir:practitionerrole",
        )


class PractitionerRoleView(FhirView):
    required_permissions: ClassVar[dict[str, str]] = {"GET": "partners.view_provider"}

    def get(self, request: Request, pk: str) -> Response:
        provider = _read_partner(request, pk, resource_type="PractitionerRole")
        return Response(resources.practitioner_role(provider))


class OrganizationListView(FhirView):
    required_permissions: ClassVar[dict[str, str]] = {"GET": "partners.view_organization"}

    def get(self, request: Request) -> Response:
        return _search(
            request,
            form=OrganizationSearchForm(request.query_params),
            queryset=selectors.organizations_for(request.user),
            order=("name", "pk"),
            to_resource=resources.organization_resource,
            detail_name="fhir:organization",
        )


class OrganizationView(FhirView):
    required_permissions: ClassVar[dict[str, str]] = {"GET": "partners.view_organization"}

    def get(self, request: Request, pk: str) -> Response:
        organization_id = _id(pk)
        organization = selectors.organizations_for(request.user).filter(pk=organization_id).first()
        if organization is None:
            removals = selectors.organization_removals_for(request.user)
            _gone(
                removals.filter(organization_id=organization_id).first(), "office", "Organization"
            )
        return Response(resources.organization_resource(organization))


def _sees_patients(request: Request) -> bool:
    return bool(request.user.has_perm("referrals.view_patient_details"))


def _service_request_read(request: Request, referral: Referral) -> dict[str, Any]:
    """One referral as a ServiceRequest for this caller: patient details only for roles
    that see them, and then the read is written to the audit trail."""
    sees_patients = _sees_patients(request)
    if sees_patients:
        audit_record(
            action=PatientDataAccess.Action.VIEW,
            referral_ids=[referral.pk],
            user=request.user,
            source=PatientDataAccess.Source.API,
            request=request,
        )
    return resources.service_request(referral, patient_details=sees_patients)


def _body(request: Request) -> Any:
    content_type = request.content_type.split(";")[0].strip().lower()
    if content_type not in ACCEPTED_CONTENT_TYPES:
        raise FhirError(
            f"Send the resource as {ACCEPTED_CONTENT_TYPES[0]} (Content-Type).",
            status=415,
            code="not-supported",
        )
    try:
        body = request.body
    except RequestDataTooBig:
        raise FhirError(
            "The resource is too large: send documents separately.",
            status=413,
            code="too-costly",
        ) from None
    try:
        data = json.loads(body)
        # Text Postgres and every reader can hold: a lone surrogate (\ud800) parses as
        # JSON but is not Unicode text.
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except (UnicodeError, ValueError, RecursionError):
        raise FhirError("The body is not valid JSON (UTF-8).", code="structure") from None
    return data


class ServiceRequestListView(FhirView):
    required_permissions: ClassVar[dict[str, str]] = {
        "GET": "referrals.view_referral",
        "POST": "referrals.add_referral",
    }

    def get(self, request: Request) -> Response:
        sees_patients = _sees_patients(request)

        def audit(rows: list[Any]) -> None:
            if sees_patients:
                audit_record(
                    action=PatientDataAccess.Action.LIST,
                    referral_ids=[row.pk for row in rows],
                    user=request.user,
                    fields=PATIENT_FIELDS,
                    source=PatientDataAccess.Source.API,
                    request=request,
                )

        return _search(
            request,
            form=ServiceRequestSearchForm(request.query_params),
            queryset=selectors.referrals_for(request.user),
            order=("-received_at", "-pk"),
            to_resource=lambda referral: resources.service_request(
                referral, patient_details=sees_patients
            ),
            detail_name="fhir:servicerequest",
            on_page=audit,
        )

    def post(self, request: Request) -> Response:
        data = _body(request)
        criteria = request.headers.get("If-None-Exist")
        if criteria is not None and (existing := _existing_order(request, criteria)):
            # Conditional create (http://hl7.org/fhir/R4/http.html#ccreate): nothing is made;
            # the match comes back as a read, audited as one. Two conditional creates racing
            # both find nothing; the once-only key then makes the second a 409.
            return _created_answer(
                request,
                existing,
                status=200,
                outcome=f"ServiceRequest/{existing.pk} matches If-None-Exist: nothing was created.",
                representation=lambda: _service_request_read(request, existing),
            )
        referral = referral_receive_fhir(data=data, actor=request.user, request=request)
        # The sender's own order coming back: the create is its audit row.
        return _created_answer(
            request,
            referral,
            status=201,
            outcome=f"ServiceRequest/{referral.pk} was created.",
            representation=lambda: resources.service_request(
                referral, patient_details=_sees_patients(request)
            ),
        )


def _created_answer(
    request: Request,
    referral: Referral,
    *,
    status: int,
    outcome: str,
    representation: Callable[[], dict[str, Any]],
) -> Response:
    """A create's answer as the client prefers (http://hl7.org/fhir/R4/http.html#ops):
    `return=minimal` no body, `return=OperationOutcome` an outcome saying what happened,
    else the resource. Only the resource carries patient details (and its read audit)."""
    headers = {"Location": _absolute(request, "fhir:servicerequest", referral.pk)}
    preferred = _preference(request, "return")
    if preferred == "minimal":
        return Response(status=status, headers=headers)
    if preferred == "operationoutcome":
        body = operation_outcome(outcome, code="informational", severity="information")
        return Response(body, status=status, headers=headers)
    return Response(representation(), status=status, headers=headers)


# Search parameters that only page a search: meaningless in If-None-Exist.
PAGING_PARAMETERS = frozenset({"_count", "_offset"})


def _existing_order(request: Request, criteria: str) -> Referral | None:
    """The ServiceRequest an If-None-Exist search finds, or None. Strict where a search is
    lenient: an ignored parameter would widen the match and hand back another order."""
    query = QueryDict(criteria)
    form = ServiceRequestSearchForm(query)
    unsupported = sorted(
        name for name in query if name not in form.fields or name in PAGING_PARAMETERS
    )
    if not query or unsupported:
        supported = ", ".join(name for name in form.fields if name not in PAGING_PARAMETERS)
        raise FhirError(
            "If-None-Exist must be a ServiceRequest search (e.g. identifier=system|value) "
            f"on parameters this server supports ({supported})"
            + (f"; not {', '.join(name[:40] for name in unsupported)}." if unsupported else "."),
        )
    if not form.is_valid():
        raise FhirError(f"If-None-Exist: {form.error_text()}")
    matches = list(selectors.referrals_for(request.user).filter(form.filters())[:2])
    if len(matches) > 1:
        raise FhirError(
            "If-None-Exist matches more than one ServiceRequest, so the server cannot tell "
            "which one this is: search by identifier=system|value.",
            status=412,
            code="multiple-matches",
        )
    return matches[0] if matches else None


class ServiceRequestView(FhirView):
    required_permissions: ClassVar[dict[str, str]] = {"GET": "referrals.view_referral"}

    def get(self, request: Request, pk: str) -> Response:
        referral = _read(selectors.referrals_for(request.user), pk)
        return Response(_service_request_read(request, referral))
