"""Row ids typed by a user (a posted form value, a query string, a hidden field) read
without surprises: `str.isdigit()` also says yes to '²' and '٣', which `int()` refuses or
reads as another number, and `int()` refuses strings of more than 4,300 digits."""

from __future__ import annotations

# The largest id a 64-bit integer column holds.
MAX_ID = 2**63 - 1


def parse_id(text: object) -> int | None:
    """The row id `text` spells in ASCII digits, if a 64-bit column can hold it; else None."""
    text = str(text).strip()
    if not text.isascii() or not text.isdigit() or len(text) > len(str(MAX_ID)):
        return None
    value = int(text)
    return value if value <= MAX_ID else None
