"""The REST API (/api/v1/): partners and referrals, read only, token auth, the same
permission-aware querysets and patient-data rules (and audit) as the pages."""

from __future__ import annotations

from typing import Any, ClassVar, TypeVar

from django.db.models import Model, QuerySet
from django.http import HttpRequest, JsonResponse
from django.urls import resolve
from drf_spectacular.views import SpectacularAPIView
from rest_framework import mixins, viewsets
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.pagination import PageNumberPagination
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response

from audit.models import PatientDataAccess
from audit.services import PATIENT_FIELDS, audit_record
from core.ids import parse_id
from interop import selectors
from interop.api.filters import PartnerFilter, PartnerRemovalFilter, ReferralFilter
from interop.api.serializers import (
    PartnerRemovalSerializer,
    PartnerSerializer,
    ReferralSerializer,
)
from interop.permissions import HasPermission
from partners.models import Provider, ProviderRemoval
from referrals.models import Referral


class Pages(PageNumberPagination):
    """25 rows a page, up to 100 on request (one page stays one quick query). A page or
    page size that is not a whole number in range, or is given twice, is a 400 saying so,
    not a silent default; a page past the last is a 404."""

    page_size = 25
    page_size_query_param = "page_size"
    max_page_size = 100
    invalid_page_message = (
        "Page {page_number} is past the last page of this list: follow each page's next "
        "link, which is null on the last."
    )

    def paginate_queryset(
        self, queryset: Any, request: Request, view: Any = None
    ) -> list[Any] | None:
        errors = {}
        for name, highest in (("page", 2**31 - 1), (self.page_size_query_param, 100)):
            if len(request.query_params.getlist(name)) > 1:
                # DRF reads the last: the others would be dropped unsaid.
                errors[name] = ["Give it once: it takes one value."]
            elif not _whole_number_in(request.query_params.get(name), highest):
                errors[name] = [f"Must be a whole number from 1 to {highest}."]
        if errors:
            raise ValidationError(errors)
        return super().paginate_queryset(queryset, request, view)

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            highest = 100 if parameter["name"] == self.page_size_query_param else 2**31 - 1
            parameter["schema"].update(minimum=1, maximum=highest)
        return parameters


def _whole_number_in(value: str | None, highest: int) -> bool:
    """No value, or the digits of a number from 1 to `highest`."""
    if value is None:
        return True
    return value.isascii() and value.isdigit() and 1 <= int(value) <= highest


ModelT = TypeVar("ModelT", bound=Model)


# GET (and HEAD) only: DRF's answer to OPTIONS describes the view in a body the schema
# does not document.
READ_METHODS = ["get", "head"]


class ApiReads(viewsets.GenericViewSet[ModelT]):
    """What every list of the API shares: its pages, its throttle, a token and a role."""

    http_method_names = READ_METHODS
    pagination_class = Pages
    throttle_scope = "api"
    permission_classes = [IsAuthenticated, HasPermission]


class RowsViewSet(mixins.RetrieveModelMixin, mixins.ListModelMixin, ApiReads[ModelT]):
    """A list and its rows by id. The id is checked before the lookup: Django's int() reads
    '٣' as 3, which would hand back another row than the one asked for."""

    def get_object(self) -> ModelT:
        text = self.kwargs[self.lookup_url_kwarg or self.lookup_field]
        if parse_id(text) is None:
            raise NotFound(f"“{text[:30]}” is not an id: ids are whole numbers in digits 0-9.")
        return super().get_object()


class PartnerViewSet(RowsViewSet[Provider]):
    """Referring providers (partners) with their office."""

    serializer_class = PartnerSerializer
    filterset_class = PartnerFilter
    required_permissions: ClassVar[dict[str, str]] = {"GET": "partners.view_provider"}

    def get_queryset(self) -> QuerySet[Provider]:
        return selectors.providers_for(self.request.user).order_by("last_name", "first_name", "pk")


class PartnerRemovalViewSet(mixins.ListModelMixin, ApiReads[ProviderRemoval]):
    """Partners deleted, or merged into another, since a time, oldest first: what a sync
    that reads partners by updated_since drops from its copy."""

    serializer_class = PartnerRemovalSerializer
    filterset_class = PartnerRemovalFilter
    required_permissions: ClassVar[dict[str, str]] = {"GET": "partners.view_provider"}

    def get_queryset(self) -> QuerySet[ProviderRemoval]:
        return selectors.provider_removals_for(self.request.user)


class ReferralViewSet(RowsViewSet[Referral]):
    """Referrals both ways. Patient names, birth date, phone and the reason are filled only
    for roles that see patient details (and each read of them is audited); others get the
    patient's initials."""

    serializer_class = ReferralSerializer
    filterset_class = ReferralFilter
    required_permissions: ClassVar[dict[str, str]] = {"GET": "referrals.view_referral"}

    def get_queryset(self) -> QuerySet[Referral]:
        return selectors.referrals_for(self.request.user).order_by("-received_at", "-pk")

    def _sees_patients(self) -> bool:
        return bool(self.request.user.has_perm("referrals.view_patient_details"))

    def get_serializer_context(self) -> dict[str, Any]:
        return {**super().get_serializer_context(), "patient_details": self._sees_patients()}

    def _audit(self, action: str, referrals: list[Referral]) -> None:
        if self._sees_patients():
            audit_record(
                action=action,
                referral_ids=[referral.pk for referral in referrals],
                user=self.request.user,
                fields=PATIENT_FIELDS,
                source=PatientDataAccess.Source.API,
                request=self.request,
            )

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        assert page is not None  # always paginated
        self._audit(PatientDataAccess.Action.LIST, page)
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        referral = self.get_object()
        self._audit(PatientDataAccess.Action.VIEW, [referral])
        return Response(self.get_serializer(referral).data)


class SchemaView(SpectacularAPIView):
    """The OpenAPI schema of the one version there is. drf-spectacular would read a
    `version` parameter into the schema's version and the download's file name, where a
    newline is a 500 (no header may hold one)."""

    def _get_version_parameter(self, request: Request) -> None:
        return None


def unknown_address(request: HttpRequest) -> JsonResponse:
    detail = "No such address in this API: the schema (/api/v1/schema/) lists them."
    # Django's APPEND_SLASH never redirects under the API: this view answers every address.
    with_slash = f"{request.path}/"
    if not request.path.endswith("/") and resolve(with_slash).url_name != "unknown":
        detail = f"No such address in this API: its addresses end with a slash ({with_slash})."
    return JsonResponse({"detail": detail}, status=404)
