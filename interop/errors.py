"""The server-error answer (handler500) under the FHIR facade and the REST API: in the
format their clients parse, not the app's HTML page. Django has logged the error (and
sent it wherever errors go) before this runs; the answer names no cause."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import reverse
from django.views import defaults

from interop.fhir.http import FHIR_JSON, operation_outcome

MESSAGE = (
    "The server failed to answer this request (the error is logged): try again in a "
    "moment, and if it keeps failing, tell the practice's administrator."
)


def server_error(request: HttpRequest) -> HttpResponse:
    if request.path.startswith(reverse("fhir:metadata").removesuffix("metadata")):
        return JsonResponse(
            operation_outcome(MESSAGE, code="exception"),
            status=500,
            content_type=FHIR_JSON,
            json_dumps_params={"ensure_ascii": False},
        )
    if request.path.startswith(reverse("api:schema").removesuffix("schema/")):
        return JsonResponse({"detail": MESSAGE}, status=500)
    return defaults.server_error(request)
