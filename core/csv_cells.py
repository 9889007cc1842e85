"""CSV a spreadsheet program opens safely, shared by every export and download."""

from __future__ import annotations

from typing import Any

# Spreadsheet programs run a cell that starts with one of these as a formula.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> str:
    """The value as text; one that starts like a formula gets a leading apostrophe, so a
    partner's name or a patient's note ("=HYPERLINK(...)") cannot run (CSV injection)."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


class Echo:
    """A file-like object whose write returns the line, for streaming csv.writer output."""

    def write(self, value: str) -> str:
        return value
