"""The app's rows as FHIR R4 resources. Every resource leaves validated by fhir.resources'
R4B models (the R4 structures; its default R5 models differ), so a client is never sent
something a FHIR parser would refuse."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from fhir.resources.R4B import get_fhir_model_class

from partners.models import Organization, Provider
from referrals.models import Referral, Status

NPI_SYSTEM = "http://hl7.org/fhir/sid/us-npi"
NUCC_SYSTEM = "http://nucc.org/provider-taxonomy"
SNOMED = "http://snomed.info/sct"
FHIR_VERSION = "4.0.1"
# A posted ServiceRequest's once-only key (intake's Hl7Import) has as its sender "FHIR "
# and its identifier's system, or, without an identifier, CONTENT_SENDER and a hash.
ORDER_SENDER_PREFIX = "FHIR "
CONTENT_SENDER = "FHIR content"

# The app's referral status as a FHIR request status (http://hl7.org/fhir/request-status).
REQUEST_STATUS: dict[str, str] = {
    Status.RECEIVED: "active",
    Status.ACCEPTED: "active",
    Status.SCHEDULED: "active",
    Status.NO_SHOW: "active",
    Status.ON_HOLD: "on-hold",
    Status.DECLINED: "revoked",
    Status.CANCELLED: "revoked",
    Status.SEEN: "completed",
    Status.REPORT_SENT: "completed",
    Status.CLOSED: "completed",
}
# And back, for searches by status: each FHIR status is several of the app's.
STATUSES_BY_REQUEST_STATUS: dict[str, list[str]] = {}
for _status, _request_status in REQUEST_STATUS.items():
    STATUSES_BY_REQUEST_STATUS.setdefault(_request_status, []).append(_status)
# A referral cancelled as a copy of another (Referral.duplicate_of) is "entered-in-error":
# it should not have been in the record, whatever its status says.
ENTERED_IN_ERROR = "entered-in-error"
STATUSES_BY_REQUEST_STATUS[ENTERED_IN_ERROR] = [Status.CANCELLED]
# The rest of FHIR's request-status codes: a search may ask for them, and finds nothing
# (a posted draft is received as an active referral).
for _request_status in ("draft", "unknown"):
    STATUSES_BY_REQUEST_STATUS[_request_status] = []

# FHIR request priority ↔ the app's urgency. "asap" is read as urgent, as the HL7 v2
# import reads its A (as soon as possible); urgent is sent back as urgent.
URGENCY_BY_PRIORITY = {
    "routine": Referral.Urgency.ROUTINE,
    "urgent": Referral.Urgency.URGENT,
    "asap": Referral.Urgency.URGENT,
    "stat": Referral.Urgency.STAT,
}
PRIORITY_BY_URGENCY: dict[str, str] = {
    Referral.Urgency.ROUTINE: "routine",
    Referral.Urgency.URGENT: "urgent",
    Referral.Urgency.STAT: "stat",
}

REFERRAL_CATEGORY = {
    "coding": [{"system": SNOMED, "code": "3457005", "display": "Patient referral"}],
    "text": "Referral",
}


def validated(resource: dict[str, Any]) -> dict[str, Any]:
    """The resource, once its R4 model accepts it (raises pydantic's ValidationError)."""
    get_fhir_model_class(resource["resourceType"]).model_validate(resource)
    return resource


def _text(value: str | None) -> str | None:
    """FHIR has no empty strings: a blank field is left out."""
    value = (value or "").strip()
    return value or None


def _compact(data: dict[str, Any]) -> dict[str, Any]:
    """Drop the keys whose value is None or an empty list/dict."""
    return {key: value for key, value in data.items() if value not in (None, [], {})}


def _instant(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds")


def _telecom(*points: tuple[str, str | None]) -> list[dict[str, str]]:
    return [
        {"system": system, "value": text, "use": "work"}
        for system, value in points
        if (text := _text(value))
    ]


def npi_identifier(npi: str) -> dict[str, str]:
    return {"system": NPI_SYSTEM, "value": npi}


def _taxonomy(provider: Provider) -> dict[str, Any] | None:
    # The admin and the spreadsheet import keep the code as typed; a FHIR code has single
    # spaces only, and one refused by validated() would fail a whole search page.
    code = _text(" ".join(provider.taxonomy_code.split()))
    specialty = _text(provider.specialty)
    if not code and not specialty:
        return None
    coding = [_compact({"system": NUCC_SYSTEM, "code": code, "display": specialty})] if code else []
    return _compact({"coding": coding, "text": specialty})


def practitioner(provider: Provider) -> dict[str, Any]:
    qualifications = []
    if credential := _text(provider.credential):
        qualifications.append({"code": {"text": credential}})
    if taxonomy := _taxonomy(provider):
        qualifications.append({"code": taxonomy})
    organization = provider.organization
    return validated(
        _compact(
            {
                "resourceType": "Practitioner",
                "id": str(provider.pk),
                "meta": {"lastUpdated": _instant(provider.updated_at)},
                "identifier": [npi_identifier(provider.npi)],
                "active": provider.status != Provider.Status.DORMANT,
                "name": [
                    _compact(
                        {
                            "use": "official",
                            "text": _text(provider.display_name),
                            "family": _text(provider.last_name),
                            "given": [given] if (given := _text(provider.first_name)) else [],
                            "suffix": [credential] if credential else [],
                        }
                    )
                ],
                "telecom": _telecom(
                    ("phone", provider.phone),
                    ("fax", organization.fax if organization else None),
                    ("email", provider.email),
                ),
                "qualification": qualifications,
            }
        )
    )


def _address(organization: Organization) -> list[dict[str, Any]]:
    lines = [
        text for text in (organization.address_line1, organization.address_line2) if _text(text)
    ]
    address = _compact(
        {
            "use": "work",
            "line": [line.strip() for line in lines],
            "city": _text(organization.city),
            "state": _text(organization.state),
            "postalCode": _text(organization.zip_code),
        }
    )
    return [{**address, "country": "US"}] if len(address) > 1 else []


def organization_resource(organization: Organization) -> dict[str, Any]:
    return validated(
        _compact(
            {
                "resourceType": "Organization",
                "id": str(organization.pk),
                "meta": {"lastUpdated": _instant(organization.updated_at)},
                "identifier": [npi_identifier(organization.npi)] if organization.npi else [],
                "active": True,
                "name": _text(organization.name),
                "telecom": _telecom(
                    ("phone", organization.phone),
                    ("fax", organization.fax),
                    ("email", organization.email),
                ),
                "address": _address(organization),
            }
        )
    )


def _practitioner_reference(provider: Provider) -> dict[str, Any]:
    return {
        "reference": f"Practitioner/{provider.pk}",
        "type": "Practitioner",
        "identifier": npi_identifier(provider.npi),
        "display": provider.display_name,
    }


def practitioner_role(provider: Provider) -> dict[str, Any]:
    """A partner's role at their office. The app keeps one office per provider, so each
    provider has exactly one role, with the provider's id."""
    organization = provider.organization
    taxonomy = _taxonomy(provider)
    return validated(
        _compact(
            {
                "resourceType": "PractitionerRole",
                "id": str(provider.pk),
                "meta": {"lastUpdated": _instant(provider.updated_at)},
                "active": provider.status != Provider.Status.DORMANT,
                "practitioner": _practitioner_reference(provider),
                "organization": {
                    "reference": f"Organization/{organization.pk}",
                    "display": organization.name,
                }
                if organization
                else None,
                "specialty": [taxonomy] if taxonomy else [],
                "telecom": _telecom(
                    ("phone", provider.phone or (organization.phone if organization else "")),
                    ("fax", organization.fax if organization else None),
                ),
            }
        )
    )


def _order_identifiers(referral: Referral) -> list[dict[str, str]]:
    """The identifier a ServiceRequest was posted with, so the sender can find it again
    (the caller's queryset selects hl7_import, else this is a query)."""
    imported = getattr(referral, "hl7_import", None)
    if imported is None or imported.sending_application == CONTENT_SENDER:
        return []
    if not imported.sending_application.startswith(ORDER_SENDER_PREFIX):
        return []  # an HL7 v2 message's control id names a message, not the order
    system = imported.sending_application.removeprefix(ORDER_SENDER_PREFIX)
    return [_compact({"system": _text(system), "value": imported.message_control_id})]


def _patient(referral: Referral) -> dict[str, Any]:
    return _compact(
        {
            "resourceType": "Patient",
            "id": "patient",
            "name": [
                _compact(
                    {
                        "use": "official",
                        "family": _text(referral.patient_last_name),
                        "given": [given] if (given := _text(referral.patient_first_name)) else [],
                    }
                )
            ],
            "birthDate": referral.patient_dob.isoformat(),
            "telecom": [{"system": "phone", "value": phone}]
            if (phone := _text(referral.patient_phone))
            else [],
        }
    )


def service_request(referral: Referral, *, patient_details: bool) -> dict[str, Any]:
    """A referral, either way. Without `patient_details` (roles that see initials on the
    web pages) the patient is their initials and the reason is left out, as on the
    pages; with them, the caller writes the read to the audit trail."""
    inbound = referral.direction == Referral.Direction.INBOUND
    provider = _practitioner_reference(referral.provider)
    if patient_details:
        name = f"{referral.patient_first_name} {referral.patient_last_name}".strip()
        subject: dict[str, Any] = {"reference": "#patient", "display": name}
    else:
        subject = {"display": referral.patient_initials}
    return validated(
        _compact(
            {
                "resourceType": "ServiceRequest",
                "id": str(referral.pk),
                "meta": {"lastUpdated": _instant(referral.updated_at)},
                "contained": [_patient(referral)] if patient_details else [],
                "identifier": _order_identifiers(referral),
                "status": (
                    ENTERED_IN_ERROR
                    if referral.duplicate_of_id is not None
                    else REQUEST_STATUS[referral.status]
                ),
                "intent": "order",
                "category": [REFERRAL_CATEGORY],
                "priority": PRIORITY_BY_URGENCY.get(referral.urgency, "routine"),
                "subject": subject,
                "authoredOn": _instant(referral.received_at),
                # Inbound: the partner asked us; outbound: we ask the partner to see them.
                "requester": provider if inbound else None,
                "performer": [] if inbound else [provider],
                "reasonCode": [{"text": reason}]
                if patient_details and (reason := _text(referral.reason))
                else [],
            }
        )
    )


def bundle(
    *,
    resources: Iterable[dict[str, Any]],
    total: int,
    self_url: str,
    next_url: str | None,
    full_url: Callable[[dict[str, Any]], str],
) -> dict[str, Any]:
    links = [{"relation": "self", "url": self_url}]
    if next_url:
        links.append({"relation": "next", "url": next_url})
    # An empty page has no "entry" at all: FHIR JSON forbids empty arrays.
    return validated(
        _compact(
            {
                "resourceType": "Bundle",
                "type": "searchset",
                "total": total,
                "link": links,
                "entry": [
                    {
                        "fullUrl": full_url(resource),
                        "resource": resource,
                        "search": {"mode": "match"},
                    }
                    for resource in resources
                ],
            }
        )
    )


# What the facade implements, for the CapabilityStatement: resource type → (interactions,
# search parameters as (name, type, documentation)).
IMPLEMENTED: dict[str, tuple[tuple[str, ...], tuple[tuple[str, str, str], ...]]] = {
    "Practitioner": (
        ("read", "search-type"),
        (
            ("identifier", "token", f"The NPI ({NPI_SYSTEM}|NPI, or the NPI alone)."),
            ("name", "string", "Up to 5 words, each starting the given or family name."),
        ),
    ),
    "PractitionerRole": (
        ("read", "search-type"),
        (
            ("practitioner", "reference", "Practitioner/id"),
            ("organization", "reference", "Organization/id"),
        ),
    ),
    "Organization": (
        ("read", "search-type"),
        (
            ("name", "string", "A word of the name starts so."),
            ("identifier", "token", "The organization's NPI."),
        ),
    ),
    "ServiceRequest": (
        ("read", "search-type", "create"),
        (
            ("identifier", "token", "system|value the ServiceRequest was posted with."),
            (
                "status",
                "token",
                "active, on-hold, revoked, completed or entered-in-error (comma for or).",
            ),
            ("requester", "reference", "Practitioner/id of the referring partner."),
            ("requester:identifier", "token", "The referring partner's NPI."),
            (
                "authored",
                "date",
                "YYYY-MM-DD with eq, ne, gt, lt, ge or le; may repeat up to 4 times.",
            ),
        ),
    ),
}


def capability_statement(*, base_url: str, now: datetime) -> dict[str, Any]:
    common = (
        ("_count", "number", "Results per page (1 to 100; 20 unless given)."),
        ("_offset", "number", "Where the page starts: follow the Bundle's next link."),
    )
    return validated(
        {
            "resourceType": "CapabilityStatement",
            "status": "active",
            "date": _instant(now),
            "kind": "instance",
            "software": {"name": "Referral CRM"},
            "implementation": {"description": "Referral CRM FHIR R4 facade", "url": base_url},
            "fhirVersion": FHIR_VERSION,
            "format": ["application/fhir+json"],
            "rest": [
                {
                    "mode": "server",
                    "security": {
                        "description": "Send `Authorization: Bearer <token>`; an "
                        "administrator makes tokens with `manage.py create_api_token`. A "
                        "token acts with its user's role and permissions.",
                    },
                    "resource": [
                        {
                            "type": resource_type,
                            "interaction": [{"code": code} for code in interactions],
                            # Every create honours If-None-Exist (interop.fhir.views).
                            **({"conditionalCreate": True} if "create" in interactions else {}),
                            "searchParam": [
                                {"name": name, "type": kind, "documentation": doc}
                                for name, kind, doc in (*parameters, *common)
                            ],
                        }
                        for resource_type, (interactions, parameters) in IMPLEMENTED.items()
                    ],
                }
            ],
        }
    )
