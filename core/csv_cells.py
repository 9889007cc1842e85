"""CSV a spreadsheet program opens safely, shared by every export and download."""

from __future__ import annotations

import csv
from collections.abc import Iterable
from typing import Any

from django.http import StreamingHttpResponse

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


def csv_download(filename: str, rows: Iterable[Iterable[Any]]) -> StreamingHttpResponse:
    """The rows (the header first) streamed as a CSV attachment, a line at a time, so a
    download of every row never sits in memory whole. Cells are written as given: make
    free text safe with safe_cell first."""
    writer = csv.writer(Echo())
    return StreamingHttpResponse(
        (writer.writerow(row) for row in rows),
        content_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
