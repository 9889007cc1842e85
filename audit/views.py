from __future__ import annotations

from django.contrib.auth.decorators import login_required, permission_required
from django.http import HttpResponse

from audit.filters import PatientDataAccessFilter
from audit.models import PatientDataAccess
from core.htmx import render_page
from core.pagination import paginate_capped
from core.types import AuthedRequest


@login_required
@permission_required("audit.view_patientdataaccess", raise_exception=True)
def access_list(request: AuthedRequest) -> HttpResponse:
    """The audit trail, newest first. Read-only by design: there is no edit page."""
    filterset = PatientDataAccessFilter(
        request.GET or None, queryset=PatientDataAccess.objects.for_list()
    )
    rows = filterset.qs if filterset.is_bound else PatientDataAccess.objects.for_list()
    # The trail only grows (millions of rows): count at most the capped paginator's cap.
    page = paginate_capped(request, rows, per_page=50)
    return render_page(
        request,
        "audit/patientdataaccess_list.html",
        {"filter": filterset, "page": page},
        partial="results",
    )
