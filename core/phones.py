"""US phone and fax numbers, written the way staff dial them: "(402) 555-0100"."""

from __future__ import annotations

import re

from django.core.exceptions import ValidationError

# A North American number: area code and exchange never start with 0 or 1.
_NANP = re.compile(r"[2-9]\d\d[2-9]\d{6}")
_EXTENSION = re.compile(r"\s*(?:x|ext\.?|extension)\s*(\d{1,6})\s*$", re.IGNORECASE)
_PUNCTUATION = re.compile(r"[\s().\-/+]")

PHONE_FORMAT = "Not a US phone number: e.g. (402) 555-0100, an extension as x12."


def format_phone(digits: str) -> str:
    """NPPES stores bare digits; partners show US numbers the way staff dial them."""
    if len(digits) == 10 and digits.isdigit():
        return f"({digits[:3]}) {digits[3:6]}-{digits[6:]}"
    return digits


def us_phone_number(text: str) -> str | None:
    """A US number typed any common way ("402.555.0100", "+1 402 555 0100", "(402)
    555-0100 ext. 12") as `format_phone` writes it, with " x12" for an extension; None
    when it is not a US number."""
    extension = ""
    match = _EXTENSION.search(text)
    if match:
        text, extension = text[: match.start()], match.group(1)
    digits = _PUNCTUATION.sub("", text)
    if len(digits) == 11 and digits.startswith("1"):
        digits = digits[1:]
    if not (digits.isascii() and _NANP.fullmatch(digits)):
        return None
    return format_phone(digits) + (f" x{extension}" if extension else "")


def clean_us_phone(typed: str, *, error: str = PHONE_FORMAT) -> str:
    """A form's phone or fax field: "" when left empty, else the number as
    `us_phone_number` writes it; refused when it is not a US number."""
    typed = typed.strip()
    if not typed:
        return ""
    written = us_phone_number(typed)
    if written is None:
        raise ValidationError(error, code="phone")
    return written


def dial_link(stored: str) -> str:
    """The `tel:` address for a stored number, or "" when it is not a US number (rows
    saved before phones were checked, or taken from an import as sent): a link that
    dials nothing is worse than plain text."""
    written = us_phone_number(stored or "")
    if written is None:
        return ""
    number, _, extension = written.partition(" x")
    digits = re.sub(r"\D", "", number)
    return f"tel:+1{digits}" + (f";ext={extension}" if extension else "")
