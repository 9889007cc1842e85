"""Text people type, made safe to show: characters that cannot be seen but change how the
text around them is drawn are taken out before it is stored."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

# Right-to-left and left-to-right overrides, embeddings and isolates, and the direction
# marks: pasted into a name, U+202E shows "Smith" as "htimS" and turns the rest of the line
# around with it, so a list can be made to read what it does not hold. The zero-width space,
# word joiner and byte-order mark hide a difference between two names that look alike.
# Joiners (U+200C, U+200D), which some scripts and emoji need, stay.
_INVISIBLE = re.compile(
    "[\u061c\u200b\u200e\u200f\u202a-\u202e\u2060\u2066-\u2069\ufeff"
    # Control characters but tab, line feed and carriage return.
    "\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]"
)


def strip_invisible(text: str) -> str:
    """`text` without direction controls, invisible spaces and control characters."""
    return _INVISIBLE.sub("", text)


def strip_invisible_from(record: Any, fields: Iterable[str]) -> None:
    """Each of these text fields of `record` without the invisible characters (a model's
    clean(), so whatever a form saves is stored drawable)."""
    for name in fields:
        setattr(record, name, strip_invisible(getattr(record, name)))
