"""A small reader for HL7 v2 messages, enough for the 360X referral order (OMG^O19).

HL7 v2 is pipe-delimited: segments split by carriage returns, fields by MSH-1, and
components, repetitions, escapes and sub-components by the four characters of MSH-2.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime

from core.phones import us_phone_number

MAX_MESSAGE_BYTES = 1_000_000
# The room of a referral's patient names and of a partner's names: a longer name is
# refused, never cut.
MAX_NAME_LENGTH = 100


class Hl7Error(ValueError):
    """The message cannot be used. The text says why, for the person importing it."""


class OrderAlreadyImported(Hl7Error):
    """The order was imported before (the same sender and message id): `referral_id` is
    the referral it became (None when the other import's row could not be read)."""

    def __init__(self, message: str, *, referral_id: int | None) -> None:
        super().__init__(message)
        self.referral_id = referral_id


class UnknownReferrer(Hl7Error):
    """The order's provider has no NPI and is not (or not only one) of our partners by
    name: `first_name` and `last_name` are as the message gives them, to look them up."""

    def __init__(self, message: str, *, first_name: str, last_name: str) -> None:
        super().__init__(message)
        self.first_name = first_name
        self.last_name = last_name


@dataclass(frozen=True)
class Encoding:
    field: str = "|"
    component: str = "^"
    repetition: str = "~"
    escape: str = "\\"
    subcomponent: str = "&"


@dataclass
class Segment:
    name: str
    fields: list[str]
    encoding: Encoding

    def raw(self, number: int) -> str:
        """Field `number` as HL7 counts it (MSH-1 is the separator itself)."""
        index = number - 1 if self.name == "MSH" else number
        return self.fields[index] if 0 <= index < len(self.fields) else ""

    def component(self, number: int, component: int = 1, *, repetition: int = 0) -> str:
        """One component of one repetition, with escape sequences decoded."""
        value = self.raw(number)
        if self.name == "MSH" and number <= 2:
            return value
        repetitions = value.split(self.encoding.repetition)
        if repetition >= len(repetitions):
            return ""
        parts = repetitions[repetition].split(self.encoding.component)
        part = parts[component - 1] if 0 < component <= len(parts) else ""
        # Sub-components of the component: keep the first, which carries the value.
        return unescape(part.split(self.encoding.subcomponent)[0], self.encoding)


@dataclass
class Message:
    segments: list[Segment] = field(default_factory=list)

    def first(self, name: str) -> Segment | None:
        return next((s for s in self.segments if s.name == name), None)

    def require(self, name: str) -> Segment:
        segment = self.first(name)
        if segment is None:
            raise Hl7Error(f"The message has no {name} segment.")
        return segment


def unescape(text: str, encoding: Encoding) -> str:
    esc = encoding.escape
    if esc not in text:
        return text
    replacements = {
        "F": encoding.field,
        "S": encoding.component,
        "T": encoding.subcomponent,
        "R": encoding.repetition,
        "E": encoding.escape,
    }
    pattern = re.compile(re.escape(esc) + r"([^" + re.escape(esc) + r"]*)" + re.escape(esc))

    def replace(match: re.Match[str]) -> str:
        code = match.group(1)
        if code in replacements:
            return replacements[code]
        if code.startswith("X") and re.fullmatch(r"X(?:[0-9A-Fa-f]{2})+", code):
            # Control characters (a NUL, say) are no text a referral can hold.
            decoded = bytes.fromhex(code[1:]).decode("latin-1")
            return "".join(c for c in decoded if c.isprintable() or c in "\n\t")
        if code in {".br", "H", "N"}:
            return "\n" if code == ".br" else ""
        return ""

    return pattern.sub(replace, text)


CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def parse(data: bytes | str) -> Message:
    if isinstance(data, bytes):
        if len(data) > MAX_MESSAGE_BYTES:
            raise Hl7Error("The file is too large to be one HL7 message.")
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            # HL7 v2 defaults to ASCII, and many senders use Latin-1 for names.
            text = data.decode("latin-1")
    else:
        text = data
    text = text.lstrip("\ufeff\x0b").rstrip("\x1c\r\n ")
    if not text.startswith("MSH") or len(text) < 8:
        raise Hl7Error("This is not an HL7 v2 message: it must start with an MSH segment.")
    if "\x00" in text:
        raise Hl7Error("The file contains NUL characters: it is not a text HL7 message.")
    field_sep = text[3]
    encoding_chars = text[4:8]
    if field_sep.isalnum() or len(set(encoding_chars)) != 4 or field_sep in encoding_chars:
        raise Hl7Error("The MSH segment's separator characters are not valid.")
    encoding = Encoding(field_sep, *encoding_chars)
    segments = []
    # \r is the standard; files that passed through other systems use \n or \r\n.
    for line in re.split(r"\r\n|\r|\n", text):
        # Other control characters are no text a referral can hold (nor a letter print).
        line = CONTROL_CHARACTERS.sub("", line)
        if not line.strip():
            continue
        name = line[:3]
        if not re.fullmatch(r"[A-Z][A-Z0-9]{2}", name):
            raise Hl7Error(f"“{line[:20]}” does not start with a segment name.")
        segments.append(Segment(name=name, fields=line.split(field_sep), encoding=encoding))
    return Message(segments=segments)


def parse_date(value: str) -> date | None:
    digits = value[:8]
    if not re.fullmatch(r"\d{8}", digits):
        return None
    try:
        return datetime.strptime(digits, "%Y%m%d").date()
    except ValueError:
        return None


@dataclass
class ReferralOrder:
    """What a referral order says, in the app's terms."""

    message_control_id: str
    sending_application: str
    placer_order_number: str
    patient_first_name: str
    patient_last_name: str
    patient_dob: date
    patient_phone: str
    provider_id: str
    provider_first_name: str
    provider_last_name: str
    reason: str
    urgency: str


def _check_name_length(what: str, *parts: str) -> None:
    """Each part of a name (family, given) fits its column."""
    if any(len(part.strip()) > MAX_NAME_LENGTH for part in parts):
        raise Hl7Error(f"{what} is longer than {MAX_NAME_LENGTH} characters.")


# TQ1-9 / ORC-7 priority codes (HL7 table 0485) to the app's urgency.
PRIORITIES = {"S": "stat", "A": "urgent", "P": "urgent", "C": "urgent", "R": "routine"}


def read_referral_order(data: bytes | str) -> ReferralOrder:
    message = parse(data)
    msh = message.require("MSH")
    kind = msh.component(9, 1), msh.component(9, 2)
    if kind != ("OMG", "O19"):
        shown = "^".join(part for part in kind if part) or "no message type"
        raise Hl7Error(f"Expected a referral order (OMG^O19), but this message is {shown}.")
    pid = message.require("PID")
    orc = message.require("ORC")
    obr = message.first("OBR")
    tq1 = message.first("TQ1")

    last, first = pid.component(5, 1).strip(), pid.component(5, 2).strip()
    if not last or not first:
        raise Hl7Error("The patient's name (PID-5) is missing.")
    _check_name_length("The patient's name (PID-5)", first, last)
    dob = parse_date(pid.component(7, 1))
    if dob is None:
        raise Hl7Error("The patient's date of birth (PID-7) is missing or not a date.")
    typed_phone = pid.component(13, 1).strip() or (
        f"({pid.component(13, 6)}) {pid.component(13, 7)}" if pid.component(13, 7) else ""
    )
    phone = us_phone_number(typed_phone) if typed_phone else ""
    if phone is None:
        raise Hl7Error(
            f"The patient's phone (PID-13) “{typed_phone[:40]}” is not a US phone number: "
            "e.g. (402) 555-0100, an extension as x12."
        )

    # The referring (ordering) provider: ORC-12, else OBR-16.
    provider_segment, number = (orc, 12) if orc.raw(12) else (obr, 16) if obr else (orc, 12)
    _check_name_length(
        f"The referring provider's name ({provider_segment.name}-{number})",
        provider_segment.component(number, 2),
        provider_segment.component(number, 3),
    )
    reason = ""
    if obr is not None:
        reason = obr.component(31, 2) or obr.component(31, 1) or obr.component(13, 1)
    if not reason.strip():
        raise Hl7Error("The order gives no reason for the referral (OBR-31).")
    priority = (tq1.component(9, 1) if tq1 else "") or orc.component(7, 6)
    return ReferralOrder(
        message_control_id=msh.component(10, 1).strip(),
        # MSH-3 and MSH-4 (application and facility) together name the sender.
        sending_application=":".join(
            part
            for part in (
                msh.component(3, 1),
                msh.component(3, 2),
                msh.component(4, 1),
                msh.component(4, 2),
            )
            if part
        ),
        placer_order_number=orc.component(2, 1),
        patient_first_name=first,
        patient_last_name=last,
        patient_dob=dob,
        patient_phone=phone,
        provider_id=provider_segment.component(number, 1).strip(),
        provider_first_name=provider_segment.component(number, 3).strip(),
        provider_last_name=provider_segment.component(number, 2).strip(),
        reason=reason.strip(),
        urgency=PRIORITIES.get(priority.upper()[:1], "routine"),
    )
