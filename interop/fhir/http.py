"""What every FHIR answer shares: the application/fhir+json content type, and errors as
OperationOutcome resources with a 4xx status and a sentence saying what is wrong."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, JsonResponse
from rest_framework import exceptions, status
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.parsers import BaseParser
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from interop.fhir.resources import IMPLEMENTED

FHIR_JSON = "application/fhir+json"
# What a client may send a resource as: FHIR's own type, and plain JSON from simple scripts.
ACCEPTED_CONTENT_TYPES = (FHIR_JSON, "application/json")


class FhirJsonRenderer(JSONRenderer):
    media_type = FHIR_JSON
    format = "fhir"
    # FHIR JSON carries Unicode as is (names with accents must round-trip).
    ensure_ascii = False


# The _format values that name JSON (http://hl7.org/fhir/R4/http.html#mime-type).
JSON_FORMATS = frozenset({"json", "application/json", FHIR_JSON, "application/json+fhir"})


class FhirNegotiation(BaseContentNegotiation):
    """One format out: FHIR JSON, whatever the Accept header asks for (a client asking for
    XML gets JSON rather than a 406 it could not read either). A `_format` parameter is
    an explicit request: one that is not JSON is a 406 saying so, as FHIR asks."""

    def select_parser(self, request: Request, parsers: list[BaseParser]) -> BaseParser | None:
        return parsers[0] if parsers else None

    def select_renderer(
        self, request: Request, renderers: list[BaseRenderer], format_suffix: str | None = None
    ) -> tuple[BaseRenderer, str]:
        asked = request.query_params.get("_format")
        if asked is not None and asked.split(";")[0].strip().lower() not in JSON_FORMATS:
            raise exceptions.NotAcceptable(
                f"_format={asked[:40]} is not offered: this server answers in FHIR JSON "
                "(_format=json, or leave it out)."
            )
        return renderers[0], renderers[0].media_type


class FhirError(Exception):
    """A request the facade refuses: `status` (4xx), the OperationOutcome issue `code`
    (http://hl7.org/fhir/issue-type) and a message for the client's developer."""

    def __init__(self, message: str, *, status: int = 400, code: str = "invalid") -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code


def operation_outcome(message: str, *, code: str, severity: str = "error") -> dict[str, Any]:
    return {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": severity, "code": code, "diagnostics": message}],
    }


# DRF's refusals in FHIR's issue types.
_ISSUE_CODES: dict[int, str] = {
    status.HTTP_400_BAD_REQUEST: "invalid",
    status.HTTP_401_UNAUTHORIZED: "login",
    status.HTTP_403_FORBIDDEN: "forbidden",
    status.HTTP_404_NOT_FOUND: "not-found",
    status.HTTP_405_METHOD_NOT_ALLOWED: "not-supported",
    status.HTTP_406_NOT_ACCEPTABLE: "not-supported",
    status.HTTP_413_REQUEST_ENTITY_TOO_LARGE: "too-costly",
    status.HTTP_415_UNSUPPORTED_MEDIA_TYPE: "not-supported",
    status.HTTP_429_TOO_MANY_REQUESTS: "throttled",
}

_MESSAGES: dict[type[Exception], str] = {
    exceptions.NotAuthenticated: (
        "Authentication required: send `Authorization: Bearer <token>` with an API token "
        "(made by `manage.py create_api_token`)."
    ),
    exceptions.AuthenticationFailed: (
        "The API token is not valid: it is wrong, expired or revoked. Ask an administrator "
        "for a new one."
    ),
    exceptions.PermissionDenied: "Your role does not allow this.",
}


def fhir_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """Every refusal as an OperationOutcome; anything else is left to Django (a bug)."""
    if isinstance(exc, FhirError):
        return Response(operation_outcome(exc.message, code=exc.code), status=exc.status)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound("No such resource, or not one you may read.")
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    if not isinstance(exc, exceptions.APIException):
        return None
    message = _MESSAGES.get(type(exc)) or " ".join(_flatten(exc.detail))
    response = Response(
        operation_outcome(message, code=_ISSUE_CODES.get(exc.status_code, "processing")),
        status=exc.status_code,
    )
    auth_header = getattr(exc, "auth_header", None)
    if auth_header:
        response["WWW-Authenticate"] = auth_header
    if isinstance(exc, exceptions.Throttled) and exc.wait is not None:
        response["Retry-After"] = str(int(exc.wait))
    return response


def _flatten(detail: Any) -> list[str]:
    if isinstance(detail, dict):
        return [text for value in detail.values() for text in _flatten(value)]
    if isinstance(detail, list):
        return [text for value in detail for text in _flatten(value)]
    return [str(detail)]


def unknown_address(request: HttpRequest, rest: str) -> JsonResponse:
    """Any other address under the facade (an unsupported resource type such as Patient, an
    operation, a malformed id) is a 404 OperationOutcome, not the app's HTML page."""
    segments = rest.split("/")
    first = segments[0][:60]
    if "_history" in segments[1:]:
        # The type is offered; its versions are not (the app keeps no past versions).
        message = (
            "History and versions (_history) are not offered here: read the resource "
            "itself. The CapabilityStatement (metadata) lists what is offered."
        )
    elif first in IMPLEMENTED:
        # The type is offered, at other addresses: most often a trailing slash.
        message = (
            f"No such address: {first} is searched at {first} and read at {first}/{{id}}, "
            "with no trailing slash and nothing after the id."
        )
    elif first:
        message = (
            f"“{first}” is not offered here: the CapabilityStatement (metadata) lists what is."
        )
    else:
        message = "Name a resource type: the CapabilityStatement (metadata) lists them."
    return JsonResponse(
        operation_outcome(message, code="not-supported"),
        status=404,
        content_type=FHIR_JSON,
        json_dumps_params={"ensure_ascii": False},
    )
