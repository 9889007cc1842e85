"""The REST API (/api/v1/): partners and referrals, read only, token auth, the same
permission-aware querysets and patient-data rules (and audit) as the pages."""

from __future__ import annotations

from typing import Any, ClassVar

from django.db.models import QuerySet
from rest_framework import viewsets
from rest_framework.pagination import PageNumberPagination
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response

from audit.models import PatientDataAccess
from audit.services import PATIENT_FIELDS, audit_record
from interop import selectors
from interop.api.filters import PartnerFilter, ReferralFilter
from interop.api.serializers import PartnerSerializer, ReferralSerializer
from interop.permissions import HasPermission
from partners.models import Provider
from referrals.models import Referral


class Pages(PageNumberPagination):
    page_size = 25
    page_size_query_param = "page_size"
    # A bigger page_size is served as 100: one page stays one quick query.
    max_page_size = 100


class PartnerViewSet(viewsets.ReadOnlyModelViewSet[Provider]):
    """Referring providers (partners) with their office."""

    serializer_class = PartnerSerializer
    pagination_class = Pages
    filterset_class = PartnerFilter
    throttle_scope = "api"
    permission_classes = [IsAuthenticated, HasPermission]
    required_permissions: ClassVar[dict[str, str]] = {"GET": "partners.view_provider"}

    def get_queryset(self) -> QuerySet[Provider]:
        return selectors.providers_for(self.request.user).order_by("last_name", "first_name", "pk")


class ReferralViewSet(viewsets.ReadOnlyModelViewSet[Referral]):
    """Referrals both ways. Patient names, birth date, phone and the reason are filled only
    for roles that see patient details (and each read of them is audited); others get the
    patient's initials."""

    serializer_class = ReferralSerializer
    pagination_class = Pages
    filterset_class = ReferralFilter
    throttle_scope = "api"
    permission_classes = [IsAuthenticated, HasPermission]
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
