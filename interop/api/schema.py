"""The OpenAPI schema's account of how the API authenticates."""

from __future__ import annotations

from typing import Any

from drf_spectacular.contrib.django_filters import DjangoFilterExtension
from drf_spectacular.extensions import OpenApiAuthenticationExtension


class ApiTokenScheme(OpenApiAuthenticationExtension):
    target_class = "interop.authentication.ApiTokenAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {"type": "http", "scheme": "bearer"}


class FiltersWithLengths(DjangoFilterExtension):
    """drf-spectacular's account of the list filters, with the longest value each text
    filter takes (its max_length), which it leaves out: a value the schema allows is then
    never a 400."""

    priority = 1

    def resolve_filter_field(
        self, auto_schema: Any, model: Any, filterset_class: Any, field_name: str, filter_field: Any
    ) -> list[dict[str, Any]]:
        parameters: list[dict[str, Any]] = super().resolve_filter_field(
            auto_schema, model, filterset_class, field_name, filter_field
        )
        if (longest := filter_field.extra.get("max_length")) is not None:
            for parameter in parameters:
                parameter["schema"]["maxLength"] = longest
        return parameters


# What each operation may answer besides its rows: each error body says what was wrong.
ERRORS = {
    "400": "A parameter could not be read; the body names each one and says why.",
    "401": "No token, or one that is unknown, expired or revoked.",
    "403": "The token's user may not read this.",
    "404": "No such row that this user may see, or a page past the last.",
    "429": "Too many requests with this token; wait as Retry-After says.",
}


# Any text without the NUL character, as an ECMA 262 regular expression.
NO_NUL = r"^[^\x00]*$"


def document_errors(result: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """A postprocessing hook (SPECTACULAR_SETTINGS): every operation documents the error
    answers it can give, and that its text parameters may not be empty nor hold NUL, so a
    client (and a generated test) knows them."""
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas["Error"] = {
        "type": "object",
        "description": "`detail` for the request as a whole, or each parameter's messages.",
        "additionalProperties": True,
    }
    body = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    for operations in result.get("paths", {}).values():
        for operation in operations.values():
            for parameter in operation.get("parameters", []):
                schema = parameter["schema"]
                if parameter["in"] != "query" or schema.get("type") != "string":
                    continue
                # A parameter sent empty is refused (interop.api.filters.StrictForm).
                schema.setdefault("minLength", 1)
                # So is a NUL character in free text (Django's form fields, since Postgres
                # cannot hold one); a format, pattern or list of values rules it out already.
                if not {"enum", "format", "pattern"} & set(schema):
                    schema["pattern"] = NO_NUL
            responses = operation.setdefault("responses", {})
            for code, description in ERRORS.items():
                responses.setdefault(code, {"description": description, "content": body})
    return result
