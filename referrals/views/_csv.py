"""Streaming CSV helpers shared by the queue export and the reciprocity download."""

from __future__ import annotations

from typing import Any

# Spreadsheet programs run a cell that starts with one of these as a formula.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _csv_cell(value: Any) -> str:
    text = "" if value is None else str(value)
    # A leading apostrophe keeps hostile text ("=HYPERLINK(...)") from running as a formula.
    return "'" + text if text.startswith(FORMULA_STARTS) else text


class _Echo:
    """A file-like object whose write returns the line, for streaming csv.writer output."""

    def write(self, value: str) -> str:
        return value
