"""Text people type, made safe to show: characters that cannot be seen but change how the
text around them is drawn are taken out before it is stored."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from django.core.exceptions import ValidationError
from django.utils.text import capfirst

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
    clean(), so whatever a form saves is stored drawable). A required field that held
    nothing else is refused: the model's own check for an empty field ran before clean(),
    so it would otherwise be stored empty (a patient or a partner with no name)."""
    emptied = {}
    for name in fields:
        typed = getattr(record, name)
        kept = strip_invisible(typed)
        setattr(record, name, kept)
        field = record._meta.get_field(name)
        if typed.strip() and not kept.strip() and not field.blank:
            emptied[name] = f"{capfirst(field.verbose_name)} holds only invisible characters."
    if emptied:
        raise ValidationError(emptied)
