"""A small reader for HL7 v2 messages, enough for the 360X referral order (OMG^O19).

HL7 v2 is pipe-delimited: segments split by carriage returns, fields by MSH-1, and
components, repetitions, escapes and sub-components by the four characters of MSH-2.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from core.npi import is_valid_npi
from core.phones import us_phone_number
from referrals.models.sla import DEFAULT_SLA_TARGETS, urgency_within

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
    # The message's character set as a Python codec: what \X..\ escapes spell bytes in.
    charset: str = "utf-8"


@dataclass
class Segment:
    name: str
    fields: list[str]
    encoding: Encoding

    def raw(self, number: int) -> str:
        """Field `number` as HL7 counts it (MSH-1 is the separator itself)."""
        index = number - 1 if self.name == "MSH" else number
        return self.fields[index] if 0 <= index < len(self.fields) else ""

    def component(
        self, number: int, component: int = 1, *, repetition: int = 0, subcomponent: int = 1
    ) -> str:
        """One component of one repetition (of a composite component, one sub-component:
        the first, which carries the value, unless told), with escape sequences decoded."""
        value = self.raw(number)
        if self.name == "MSH" and number <= 2:
            return value
        repetitions = value.split(self.encoding.repetition)
        if repetition >= len(repetitions):
            return ""
        parts = repetitions[repetition].split(self.encoding.component)
        part = parts[component - 1] if 0 < component <= len(parts) else ""
        subcomponents = part.split(self.encoding.subcomponent)
        if not 0 < subcomponent <= len(subcomponents):
            return ""
        return unescape(subcomponents[subcomponent - 1], self.encoding)


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
            try:
                decoded = bytes.fromhex(code[1:]).decode(encoding.charset)
            except UnicodeDecodeError:
                raise Hl7Error(
                    f"The escape sequence {esc}{code[:20]}{esc} is not {encoding.charset} text, "
                    "the message's character set."
                ) from None
            # Control characters (a NUL, say) are no text a referral can hold.
            return "".join(c for c in decoded if c.isprintable() or c in "\n\t")
        if code in {".br", "H", "N"}:
            return "\n" if code == ".br" else ""
        return ""

    return pattern.sub(replace, text)


CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


NOT_HL7 = "This is not an HL7 v2 message: it must start with an MSH segment."

# The character sets of MSH-18 (HL7 table 0211) this reader decodes, as Python codecs.
CHARACTER_SETS = {
    "ASCII": "ascii",
    **{f"8859/{part}": f"iso8859-{part}" for part in (1, 2, 3, 4, 5, 6, 7, 8, 9, 15)},
    "UNICODE UTF-8": "utf-8",
}


def _declared_character_set(header: str) -> str | None:
    """MSH-18 as the message's first line (read as Latin-1 or text) gives it, or None.
    Its first repetition is the message's own character set; the others are ones its
    escape sequences may switch to."""
    if not header.startswith("MSH") or len(header) < 8:
        return None  # parse() says what is wrong with it
    fields = header.split(header[3])
    value = fields[17] if len(fields) > 17 else ""
    return value.split(header[5])[0].strip().upper() or None


def _codec(declared: str | None) -> str:
    if declared is None:
        return "utf-8"
    codec = CHARACTER_SETS.get(declared)
    if codec is None:
        raise Hl7Error(
            f"The message's character set (MSH-18) “{declared[:30]}” is not one this import "
            f"reads: {', '.join(CHARACTER_SETS)}."
        )
    return codec


def _decode(data: bytes) -> tuple[str, str]:
    """The message as text, and its codec. Decoded only as its MSH-18 says, or as UTF-8
    when it names none: a guess could store a name garbled ("MÃ¼ller") without a word."""
    first_line = re.split(rb"\r|\n", data.lstrip(b"\xef\xbb\xbf\x0b"), maxsplit=1)[0]
    if not first_line.startswith(b"MSH"):
        raise Hl7Error(NOT_HL7)
    declared = _declared_character_set(first_line.decode("latin-1"))
    codec = _codec(declared)
    try:
        return data.decode(codec), codec
    except UnicodeDecodeError as error:
        position = f"byte {error.start + 1:,}"
        if declared is None:
            raise Hl7Error(
                f"The message is not UTF-8 text ({position}) and does not name its character "
                "set (MSH-18): its encoding is unknown or mixed, and names would be garbled. "
                "Ask the sender to send UTF-8, or to name the character set in MSH-18 (e.g. "
                "8859/1)."
            ) from None
        raise Hl7Error(
            f"The message is not {declared} text as its character set (MSH-18) says "
            f"({position}): its encoding is mixed, and names would be garbled."
        ) from None


def parse(data: bytes | str) -> Message:
    if isinstance(data, bytes):
        if len(data) > MAX_MESSAGE_BYTES:
            raise Hl7Error("The file is too large to be one HL7 message.")
        text, codec = _decode(data)
    else:
        text = data
        first_line = re.split(r"\r|\n", text.lstrip("\ufeff\x0b"), maxsplit=1)[0]
        codec = _codec(_declared_character_set(first_line))
    text = text.lstrip("\ufeff\x0b").rstrip("\x1c\r\n ")
    if not text.startswith("MSH") or len(text) < 8:
        raise Hl7Error(NOT_HL7)
    if "\x00" in text:
        raise Hl7Error("The file contains NUL characters: it is not a text HL7 message.")
    field_sep = text[3]
    encoding_chars = text[4:8]
    if field_sep.isalnum() or len(set(encoding_chars)) != 4 or field_sep in encoding_chars:
        raise Hl7Error("The MSH segment's separator characters are not valid.")
    encoding = Encoding(
        field=field_sep,
        component=encoding_chars[0],
        repetition=encoding_chars[1],
        escape=encoding_chars[2],
        subcomponent=encoding_chars[3],
        charset=codec,
    )
    segments = []
    # \r is the standard; files that passed through other systems use \n or \r\n.
    for number, line in enumerate(re.split(r"\r\n|\r|\n", text), start=1):
        # Other control characters are no text a referral can hold (nor a letter print).
        line = CONTROL_CHARACTERS.sub("", line)
        if not line.strip():
            continue
        name = line[:3]
        if not re.fullmatch(r"[A-Z][A-Z0-9]{2}", name):
            # Named by its number, not quoted: a segment split by a stray line break
            # would put the patient's details in the refusal, and so in the logs.
            raise Hl7Error(
                f"Line {number} does not start with a segment name (three capital letters "
                "or digits, such as PID): is a segment broken across two lines?"
            )
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
    # The provider's NPI when the order gives one (provider_id may be a local doctor number).
    provider_npi: str
    provider_first_name: str
    provider_last_name: str
    reason: str
    urgency: str
    # Timing critical (TQ1-9 TD2: "within 2 days"): read against the practice's targets.
    requested_within: timedelta | None = None


def _check_name_length(what: str, *parts: str) -> None:
    """Each part of a name (family, given) fits its column."""
    if any(len(part.strip()) > MAX_NAME_LENGTH for part in parts):
        raise Hl7Error(f"{what} is longer than {MAX_NAME_LENGTH} characters.")


# TQ1-9 / ORC-7 priority codes (HL7 table 0485) to the app's urgency.
PRIORITIES = {"S": "stat", "A": "urgent", "P": "urgent", "C": "urgent", "R": "routine"}


# Timing critical within a number of seconds, minutes, hours, days, weeks or months.
TIMING_CRITICAL = re.compile(r"T([SMHDWL])(\d{1,4})")
TIMING_UNITS = {
    "S": timedelta(seconds=1),
    "M": timedelta(minutes=1),
    "H": timedelta(hours=1),
    "D": timedelta(days=1),
    "W": timedelta(weeks=1),
    "L": timedelta(days=30),
}


def _requested_within(priority: str) -> timedelta | None:
    """How soon a timing-critical priority (TD2: within 2 days) asks for the patient to
    be seen; None for any other."""
    timed = TIMING_CRITICAL.fullmatch(priority.strip().upper())
    return TIMING_UNITS[timed[1]] * int(timed[2]) if timed else None


def _urgency(priority: str) -> str:
    """A priority code by its first letter (senders also write STAT or ASAP in full),
    except PRN, "as needed", which is no pre-op (P) order; T, timing critical with no
    interval, is urgent. One with an interval is read against the SLA targets: by
    DEFAULT_SLA_TARGETS here, by the practice's own when it is imported."""
    code = priority.strip().upper()
    if (within := _requested_within(code)) is not None:
        defaults = {
            urgency: timedelta(days=days) for urgency, (_, days) in DEFAULT_SLA_TARGETS.items()
        }
        return urgency_within(within, defaults)
    if code == "T":
        return "urgent"
    return "routine" if code == "PRN" else PRIORITIES.get(code[:1], "routine")


# XTN-2 (use) and XTN-3 (equipment) of an address that is no phone (HL7 tables 0201, 0202).
NOT_A_PHONE = {"NET", "INTERNET", "X.400"}


def _typed_phone(pid: Segment) -> str:
    """The patient's phone as PID-13 sends it: the first repetition with a number that is
    not an email address (v2.5.1 sends one as a repetition of its own, in any order), in
    XTN-1 or as area code, number and extension (XTN-6 to XTN-8)."""
    for repetition in range(len(pid.raw(13).split(pid.encoding.repetition))):
        xtn = [pid.component(13, number, repetition=repetition).strip() for number in range(1, 9)]
        if xtn[1].upper() in NOT_A_PHONE or xtn[2].upper() in NOT_A_PHONE:
            continue
        if xtn[0]:
            return xtn[0]
        if xtn[6]:
            return f"({xtn[5]}) {xtn[6]}" + (f" x{xtn[7]}" if xtn[7] else "")
    return ""


# CMS's National Provider Identifier as an assigning authority (XCN-9): its OID.
NPI_AUTHORITY_OID = "2.16.840.1.113883.4.6"
# XCN-12's check digit schemes (HL7 table 0061); NPI's says the identifier is one.
CHECK_DIGIT_SCHEMES = {"", "M10", "M11", "ISO", "BCV", "NPI"}


def _referrer_ids(segment: Segment, number: int) -> tuple[str, str]:
    """(The identifier to name them by, their NPI or "") from the referring provider's
    XCN field (ORC-12 or OBR-16), which repeats. The NPI is the identifier typed NPI
    (XCN-13), checked by NPI's scheme (XCN-12) or assigned by the NPI authority (XCN-9,
    by its OID or name); an untyped one counts when it is a valid NPI. One typed otherwise (a sender's own doctor number,
    DN) is not taken for an NPI, whatever its digits: a tenth of any ten-digit numbers
    pass the check digit, and crediting the referral to the partner who owns that NPI
    would send the patient's letters to the wrong office."""
    repetitions = len(segment.raw(number).split(segment.encoding.repetition))
    untyped = ""
    for repetition in range(repetitions):
        identifier = segment.component(number, 1, repetition=repetition).strip()
        if not identifier:
            continue
        scheme = segment.component(number, 12, repetition=repetition).strip().upper()
        kind = segment.component(number, 13, repetition=repetition).strip().upper()
        if not kind and scheme not in CHECK_DIGIT_SCHEMES:
            # The type one place early, as the IHE 360X sample itself sends it (its
            # "^L^^DN" leaves out the name's prefix).
            kind = scheme
        authority = {
            segment.component(number, 9, repetition=repetition, subcomponent=part).strip().upper()
            for part in (1, 2)
        } - {""}
        if kind == "NPI" or scheme == "NPI" or authority & {NPI_AUTHORITY_OID, "NPI"}:
            return identifier, identifier
        if not kind and not authority and not untyped and is_valid_npi(identifier):
            untyped = identifier
    return untyped or segment.component(number, 1).strip(), untyped


def _order_notes(message: Message) -> list[str]:
    """The comments (NTE-3, which repeats) of the NTE segments after the order's ORC: notes
    on the order and its request. A note after PID is on the patient, not this referral."""
    notes, in_order = [], False
    for segment in message.segments:
        if segment.name == "ORC":
            in_order = True
        elif segment.name == "NTE" and in_order:
            notes += [
                text
                for number in range(len(segment.raw(3).split(segment.encoding.repetition)))
                if (text := segment.component(3, 1, repetition=number).strip())
            ]
    return notes


def read_referral_order(data: bytes | str) -> ReferralOrder:
    message = parse(data)
    count = sum(1 for segment in message.segments if segment.name == "MSH")
    if count > 1:
        # Only the first would be read: the others would be dropped without a word.
        raise Hl7Error(
            f"The file holds {count} messages (MSH segments): import each in a file of its own."
        )
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
    # Middle names or initials (PID-5.3) with the first, as a FHIR order's given names.
    first = " ".join(part for part in (first, pid.component(5, 3).strip()) if part)
    _check_name_length("The patient's name (PID-5)", first, last)
    dob = parse_date(pid.component(7, 1))
    if dob is None:
        raise Hl7Error("The patient's date of birth (PID-7) is missing or not a date.")
    typed_phone = _typed_phone(pid)
    phone = us_phone_number(typed_phone) if typed_phone else ""
    if phone is None:
        # Named by its field, not its value: the import command's output is kept in logs.
        raise Hl7Error(
            "The patient's phone (PID-13) is not a US phone number: e.g. (402) 555-0100, "
            "an extension as x12."
        )

    # The referring (ordering) provider: ORC-12, else OBR-16.
    provider_segment, number = (orc, 12) if orc.raw(12) else (obr, 16) if obr else (orc, 12)
    _check_name_length(
        f"The referring provider's name ({provider_segment.name}-{number})",
        provider_segment.component(number, 2),
        provider_segment.component(number, 3),
    )
    provider_id, provider_npi = _referrer_ids(provider_segment, number)
    reason = ""
    if obr is not None:
        # OBR-31 repeats, one reason each (its text, else its code), as a FHIR order's
        # reasonCode list is kept.
        reasons = [
            (obr.component(31, 2, repetition=number) or obr.component(31, 1, repetition=number))
            for number in range(len(obr.raw(31).split(obr.encoding.repetition)))
        ]
        reason = "; ".join(text.strip() for text in reasons if text.strip())
        reason = reason or obr.component(13, 1)
    # The referring provider's notes on the order follow, one per line, as a FHIR order's
    # notes are kept: they often carry what the coordinator needs to triage it.
    reason = "\n".join(line for line in [reason.strip(), *_order_notes(message)] if line)
    if not reason:
        raise Hl7Error("The order gives no reason for the referral (OBR-31 or a note, NTE).")
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
        provider_id=provider_id,
        provider_npi=provider_npi,
        provider_first_name=provider_segment.component(number, 3).strip(),
        provider_last_name=provider_segment.component(number, 2).strip(),
        reason=reason,
        urgency=_urgency(priority),
        requested_within=_requested_within(priority),
    )
