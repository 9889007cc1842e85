"""CSV and Excel files a spreadsheet program opens safely, shared by every export and
download."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.http import HttpRequest, HttpResponse, StreamingHttpResponse

XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
# What ?format= may ask a page with a download for.
DOWNLOAD_FORMATS = ("csv", "xlsx")
# A UTF-8 byte-order mark: Excel on Windows reads a CSV opened with a double-click as the
# computer's ANSI code page unless the file starts with one ("José" shows as "JosÃ©").
UTF8_BOM = "\ufeff"

# Spreadsheet programs run a cell that starts with one of these as a formula.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> str:
    """The value as text; one that starts like a formula gets a leading apostrophe, so a
    partner's name or a patient's note ("=HYPERLINK(...)") cannot run (CSV injection)."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def rounded(value: float | None, places: int = 1) -> float | None:
    """A figure as its page shows it, still a number: halves rounded up, as the template
    filter floatformat does (6.25 → 6.3, where round() gives 6.2), so a download and its
    page agree to the last digit."""
    if value is None:
        return None
    return float(Decimal(repr(value)).quantize(Decimal(1).scaleb(-places), ROUND_HALF_UP))


class Echo:
    """A file-like object whose write returns the line, for streaming csv.writer output."""

    def write(self, value: str) -> str:
        return value


def csv_download(filename: str, rows: Iterable[Iterable[Any]]) -> StreamingHttpResponse:
    """The rows (the header first) streamed as a CSV attachment, a line at a time, so a
    download of every row never sits in memory whole, after a byte-order mark so Excel
    reads it as UTF-8. Cells are written as given: make free text safe with safe_cell
    first."""
    writer = csv.writer(Echo())

    def lines() -> Iterator[str]:
        yield UTF8_BOM
        for row in rows:
            yield writer.writerow(row)

    return StreamingHttpResponse(
        lines(),
        content_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


def download_format(request: HttpRequest) -> str | None:
    """ "csv" or "xlsx" when the address asks for the page's table as a file, else None."""
    wanted = request.GET.get("format")
    return wanted if wanted in DOWNLOAD_FORMATS else None


def download_query(request: HttpRequest) -> str:
    """The page's address without its page number or file format: what its download links
    (templates/includes/download_links.html) add ?format= to."""
    query = request.GET.copy()
    query.pop("page", None)
    query.pop("format", None)
    return query.urlencode()


@dataclass(frozen=True)
class Table:
    """A table of a download after its main one, such as a page's totals or a breakdown
    beside its ranking: its rows, the header first, under a title."""

    title: str
    rows: Iterable[Iterable[Any]]


# Excel refuses a sheet named with one of these; 31 characters is its limit on the length.
SHEET_NAME_REFUSED = re.compile(r"[\\/*?:\[\]]")


def sheet_name(title: str) -> str:
    """A table's title as Excel accepts a sheet's name."""
    return SHEET_NAME_REFUSED.sub("", title)[:31].strip("' ") or "Sheet"


def stacked_rows(rows: Iterable[Iterable[Any]], more: Sequence[Table]) -> Iterator[Iterable[Any]]:
    """The main table's rows as they are, so a consumer reading the first table sees what it
    always saw; then each further table after a blank row, under a row holding its title."""
    yield from rows
    for table in more:
        yield []
        yield [safe_cell(table.title)]
        yield from table.rows


def table_download(
    stem: str,
    rows: Iterable[Iterable[Any]],
    *,
    file_format: str,
    sheet: str = "Report",
    more: Sequence[Table] = (),
) -> HttpResponse | StreamingHttpResponse:
    """The rows (the header first) as `stem`.csv, streamed, or as `stem`.xlsx, built in
    memory (openpyxl's write-only mode: a row at a time, no cell objects kept), followed by
    the `more` tables: in the workbook each on a sheet named by its title, in the CSV one
    under the other (stacked_rows). Numbers stay numbers in either; make free text safe with
    safe_cell first (a text cell starting with "=" would be a formula in Excel too)."""
    if file_format != "xlsx":
        return csv_download(f"{stem}.csv", stacked_rows(rows, more))
    from openpyxl import Workbook
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    workbook = Workbook(write_only=True)
    for table in [Table(sheet, rows), *more]:
        worksheet = workbook.create_sheet(sheet_name(table.title))
        for row in table.rows:
            # The file format has no place for control characters (a vertical tab pasted
            # into an office's name): openpyxl refuses the whole workbook for one, so they go.
            worksheet.append(
                [
                    ILLEGAL_CHARACTERS_RE.sub("", cell) if isinstance(cell, str) else cell
                    for cell in row
                ]
            )
    buffer = io.BytesIO()
    workbook.save(buffer)
    return HttpResponse(
        buffer.getvalue(),
        content_type=XLSX_TYPE,
        headers={"Content-Disposition": f'attachment; filename="{stem}.xlsx"'},
    )
