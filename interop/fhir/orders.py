"""A FHIR ServiceRequest posted by an EHR, read into the ReferralOrder the HL7 v2 import
uses, so both arrive through the same service (intake.services.referral_receive_order).

Checks run in the order a sender can act on them: a resource that is not a valid R4
ServiceRequest is a 400; one that is valid but cannot become a referral (no known
requester, no patient birth date, no reason) is a 422 saying which."""

from __future__ import annotations

import hashlib
import json
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from typing import Any

from fhir.resources.R4B import get_fhir_model_class
from pydantic import ValidationError

from core.npi import is_valid_npi
from core.phones import us_phone_number
from intake.hl7 import CONTROL_CHARACTERS, MAX_NAME_LENGTH, ReferralOrder
from interop.fhir.http import FhirError
from interop.fhir.resources import (
    CONTENT_SENDER,
    NPI_SYSTEM,
    ORDER_SENDER_PREFIX,
    URGENCY_BY_PRIORITY,
)

# Statuses of an order that asks for nothing any more: not a referral to receive.
CLOSED_REQUEST_STATUSES = ("completed", "revoked", "entered-in-error")
# R4's required value sets for ServiceRequest.intent and .priority, which the FHIR models
# do not check (http://hl7.org/fhir/R4/valueset-request-intent.html, -request-priority).
REQUEST_INTENTS = (
    "proposal",
    "plan",
    "directive",
    "order",
    "original-order",
    "reflex-order",
    "filler-order",
    "instance-order",
    "option",
)
# The intents that are the requester's order for us to act on, which a referral is (and
# is sent back as "order"). A proposal, plan, directive or option asks for nothing yet;
# filler and instance orders are the performer's own.
REFERRAL_INTENTS = ("order", "original-order", "reflex-order")
# How many validation problems a 400 lists; the rest are counted.
MAX_LISTED_PROBLEMS = 5
# The once-only key has the room of the HL7 import's (sending application, control id).
MAX_KEY_LENGTH = 200
# How deep a resource's JSON may nest. A referral's elements go a dozen levels down, but an
# extension may hold extensions without end, and a few hundred levels overflow the stack
# of the R4 models' validation.
MAX_DEPTH = 64


@dataclass(frozen=True)
class FhirOrder:
    order: ReferralOrder
    requester_npi: str


def _unprocessable(message: str) -> FhirError:
    return FhirError(message, status=422, code="processing")


def _clean(value: Any) -> str:
    """A string from the resource as text the app can store and print: control
    characters dropped (Postgres refuses NUL), surrounding space trimmed."""
    return CONTROL_CHARACTERS.sub("", value).strip() if isinstance(value, str) else ""


def _shown(value: str, *, limit: int = 50) -> str:
    """A value the sender gave, quoted for a message, its invisible characters (control,
    zero-width, direction marks) written as \\uXXXX: a code that only looks right must
    not read as the very code the message asks for."""
    return "“{}”".format(
        "".join(
            f"\\u{ord(character):04x}" if unicodedata.category(character)[0] == "C" else character
            for character in value[:limit]
        )
    )


def _problems(error: ValidationError) -> str:
    problems = [
        f"{'.'.join(str(part) for part in problem['loc']) or 'resource'}: {problem['msg']}"
        for problem in error.errors(include_url=False, include_input=False)
    ]
    listed = "; ".join(problems[:MAX_LISTED_PROBLEMS])
    more = len(problems) - MAX_LISTED_PROBLEMS
    return listed + (f"; and {more} more" if more > 0 else "")


def check_service_request(data: Any) -> dict[str, Any]:
    """The parsed JSON, if it is a valid R4 ServiceRequest; else FhirError (400)."""
    if not isinstance(data, dict):
        raise FhirError("The body must be a JSON object: a FHIR ServiceRequest resource.")
    if (kind := data.get("resourceType")) != "ServiceRequest":
        said = "missing" if kind is None else "not text"
        if isinstance(kind, str):
            said = _shown(kind)
        raise FhirError(f"Expected a ServiceRequest resource, but resourceType is {said}.")
    if _deeper_than(data, MAX_DEPTH):
        raise FhirError(
            f"The resource is nested more than {MAX_DEPTH} levels deep (extensions within "
            "extensions?): a ServiceRequest needs far fewer."
        )
    _check_resource_types(data)
    try:
        get_fhir_model_class("ServiceRequest").model_validate(data)
    except ValidationError as error:
        raise FhirError(
            "This is not a valid FHIR R4 ServiceRequest: " + _problems(error)
        ) from error
    _check_code(data, "intent", REQUEST_INTENTS)
    if "priority" in data:
        _check_code(data, "priority", tuple(URGENCY_BY_PRIORITY))
    return data


def _deeper_than(data: Any, limit: int) -> bool:
    """Whether JSON objects and arrays nest more than `limit` levels in `data`, found
    without recursion."""
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return True
        children = node.values() if isinstance(node, dict) else node
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def _check_code(data: dict[str, Any], element: str, codes: tuple[str, ...]) -> None:
    value = data.get(element)
    if value not in codes:
        shown = _shown(value) if isinstance(value, str) else "not a code"
        raise FhirError(
            f"This is not a valid FHIR R4 ServiceRequest: {element} is {shown}, which is "
            f"not one of {', '.join(codes)}."
        )


def _check_resource_types(data: dict[str, Any]) -> None:
    """The R4 models fail with a KeyError or TypeError, not a validation error, on a
    resource whose resourceType is no FHIR resource type, wherever it is held (contained,
    a Bundle's entry within that, a Parameters' resource): say where and which. Walked
    without recursion, as _deeper_than is."""
    stack: list[tuple[Any, str]] = [
        (child, str(key)) for key, child in data.items() if isinstance(child, dict | list)
    ]
    while stack:
        node, where = stack.pop()
        children: Iterable[tuple[Any, Any]]
        if isinstance(node, dict):
            if "resourceType" in node and not _is_resource_type(kind := node["resourceType"]):
                shown = _shown(kind) if isinstance(kind, str) else "not text"
                raise FhirError(
                    f"{where}: its resourceType is {shown}, which is not a FHIR R4 resource type."
                )
            children = node.items()
        else:
            children = enumerate(node)
        stack.extend(
            (child, f"{where}.{key}") for key, child in children if isinstance(child, dict | list)
        )


def _is_resource_type(kind: Any) -> bool:
    if not isinstance(kind, str):
        return False
    try:
        return bool(get_fhir_model_class(kind).has_resource_base())
    except ValueError:
        return False


def _contained(data: dict[str, Any], reference: Any, resource_type: str) -> dict[str, Any] | None:
    if not isinstance(reference, str) or not reference.startswith("#"):
        return None
    return next(
        (
            resource
            for resource in data.get("contained") or []
            if resource.get("resourceType") == resource_type and resource.get("id") == reference[1:]
        ),
        None,
    )


def _npi_of(identifiers: Any) -> str | None:
    if isinstance(identifiers, dict):
        identifiers = [identifiers]
    for identifier in identifiers or []:
        if identifier.get("system") == NPI_SYSTEM and identifier.get("value"):
            return _clean(identifier["value"])
    return None


def requester_npi(data: dict[str, Any]) -> str:
    """The requesting practitioner's NPI: on the reference's identifier, or on the
    Practitioner it points to among the contained resources."""
    requester = data.get("requester") or {}
    npi = _npi_of(requester.get("identifier"))
    if npi is None:
        practitioner = _contained(data, requester.get("reference"), "Practitioner")
        npi = _npi_of(practitioner.get("identifier")) if practitioner else None
    if npi is None:
        shown = _clean(requester.get("display") or requester.get("reference"))[:100]
        raise _unprocessable(
            "The requester must be identified by NPI: give requester.identifier, or a "
            "contained Practitioner, with the system "
            f"{NPI_SYSTEM}"
            + (f" (the requester given, “{shown}”, has none)." if shown else " (there is none).")
        )
    if not is_valid_npi(npi):
        raise _unprocessable(f"The requester's NPI “{npi[:20]}” is not a valid NPI.")
    return npi


def _patient(data: dict[str, Any]) -> tuple[str, str, date, str]:
    subject = data.get("subject") or {}
    patient = _contained(data, subject.get("reference"), "Patient")
    if patient is None:
        raise _unprocessable(
            "The patient must be sent as a contained Patient (subject.reference “#id”) with "
            "a name and birthDate: the practice needs both to find the patient, and a "
            "reference to a record on another server tells it neither."
        )
    names = patient.get("name") or []
    # The official name when several are given.
    name = next((n for n in names if n.get("use") == "official"), names[0] if names else {})
    family = _clean(name.get("family"))
    # A part withheld is null in the array (its reason in "_given"): left out.
    given = " ".join(filter(None, (_clean(part) for part in name.get("given") or [])))
    if not family or not given:
        text = _clean(name.get("text")).split()
        given, family = given or " ".join(text[:-1]), family or (text[-1] if text else "")
    if not family or not given:
        raise _unprocessable("The contained Patient needs a family and a given name.")
    for element, part in (("family", family), ("given", given)):
        if len(part) > MAX_NAME_LENGTH:
            raise _unprocessable(
                f"The contained Patient's name.{element} is longer than {MAX_NAME_LENGTH} "
                "characters."
            )
    birth = patient.get("birthDate") or ""
    try:
        born = date.fromisoformat(birth)
    except ValueError:
        born = None
    if born is None or len(birth) != 10:
        raise _unprocessable("The contained Patient needs a full birthDate (YYYY-MM-DD).")
    typed_phone = next(
        (
            _clean(point.get("value"))
            for point in patient.get("telecom") or []
            if point.get("system") == "phone" and point.get("value")
        ),
        "",
    )
    phone = us_phone_number(typed_phone) if typed_phone else ""
    if phone is None:
        # Named by its element, not its value: an error body is kept in the sender's logs.
        raise _unprocessable(
            "The contained Patient's telecom phone is not a US phone number: e.g. "
            "(402) 555-0100, an extension as x12."
        )
    return given, family, born, phone


def _concept_text(concept: dict[str, Any]) -> str:
    text = _clean(concept.get("text"))
    if text:
        return text
    return ", ".join(
        display
        for coding in concept.get("coding") or []
        if (display := _clean(coding.get("display")))
    )


def _reason(data: dict[str, Any]) -> str:
    """What is asked (code), why (reasonCode, reasonReference's display) and the notes,
    one per line, as the referral's reason."""
    lines = []
    if asked := _concept_text(data.get("code") or {}):
        lines.append(f"Requested: {asked}")
    reasons = [_concept_text(concept) for concept in data.get("reasonCode") or []]
    reasons += [_clean(ref.get("display")) for ref in data.get("reasonReference") or []]
    if reasons := [reason for reason in reasons if reason]:
        lines.append(f"Reason: {'; '.join(reasons)}")
    lines += [text for note in data.get("note") or [] if (text := _clean(note.get("text")))]
    if not lines:
        raise _unprocessable(
            "The order gives no reason for the referral: send code, reasonCode or a note."
        )
    return "\n".join(lines)


def _once_only_key(data: dict[str, Any]) -> tuple[str, str, str]:
    """(sender, id, order number) that make a repeat of this order the same order: its
    first identifier, or without one the resource's content itself (a client re-sending
    after a lost answer sends the same bytes)."""
    for identifier in data.get("identifier") or []:
        value = _clean(identifier.get("value"))
        if value:
            sender = ORDER_SENDER_PREFIX + _clean(identifier.get("system"))
            if len(value) > MAX_KEY_LENGTH or len(sender) > MAX_KEY_LENGTH:
                raise _unprocessable(
                    f"The ServiceRequest's identifier is longer than {MAX_KEY_LENGTH} characters."
                )
            return sender, value, value
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    digest = hashlib.sha256(canonical.encode()).hexdigest()
    return CONTENT_SENDER, f"sha256:{digest}", ""


def read_service_request(data: Any) -> FhirOrder:
    """The posted ServiceRequest as a referral order, or FhirError saying why not."""
    resource = check_service_request(data)
    npi = requester_npi(resource)
    status = resource.get("status")
    if status in CLOSED_REQUEST_STATUSES:
        raise _unprocessable(
            f"This ServiceRequest is {status}: only an active (or draft or on-hold) order "
            "can be received as a referral."
        )
    intent = resource["intent"]
    if intent not in REFERRAL_INTENTS:
        raise _unprocessable(
            f"This ServiceRequest's intent is {intent}: only an order (intent "
            f"{', '.join(REFERRAL_INTENTS)}) can be received as a referral."
        )
    first, last, born, phone = _patient(resource)
    sender, message_id, order_number = _once_only_key(resource)
    order = ReferralOrder(
        message_control_id=message_id,
        sending_application=sender,
        placer_order_number=order_number,
        patient_first_name=first,
        patient_last_name=last,
        patient_dob=born,
        patient_phone=phone,
        provider_id=npi,
        provider_npi=npi,
        provider_first_name="",
        provider_last_name="",
        reason=_reason(resource),
        urgency=URGENCY_BY_PRIORITY[resource.get("priority") or "routine"],
    )
    return FhirOrder(order=order, requester_npi=npi)
