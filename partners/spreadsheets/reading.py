"""Reading an uploaded CSV or XLSX file into a header row and rows of strings."""

from __future__ import annotations

import codecs
import csv
import io
import re
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import IO, Any

from core.csv_cells import FORMULA_STARTS
from core.text import strip_invisible

MAX_UPLOAD_BYTES = 10 * 1024 * 1024
MAX_ROWS = 20_000
# The mapping page asks about every column; the NPPES file, the widest we expect, has 330.
# Its form posts a choice per column, the owner and the CSRF token, which must stay under
# Django's DATA_UPLOAD_MAX_NUMBER_FIELDS (1,000 fields) or the choices are refused.
MAX_COLUMNS = 900


class UnreadableFile(ValueError):
    """The upload is not a CSV or XLSX table we can read; the message says why."""


class EmptyFile(UnreadableFile):
    """The file (or the workbook's first sheet) holds no cell at all."""


@dataclass
class Table:
    headers: list[str]
    rows: list[list[str]]
    # Each row's number in the sheet (the first line is 1): blank rows are left out of
    # `rows` but not out of the count, so a row is reported where the manager finds it.
    numbers: list[int] = field(default_factory=list)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # Excel stores an NPI typed as a number as 1679576722.0
    if isinstance(value, datetime | date):
        return value.isoformat()
    # A NUL cannot be stored (Postgres text and JSON refuse it) and is never meant; nor are
    # the other invisible controls (a direction override would draw a name backwards).
    text = strip_invisible(str(value)).strip()
    if text.startswith("'") and text[1:].startswith(FORMULA_STARTS):
        # The apostrophe our export puts before a formula-like cell (see safe_cell) is not data,
        # so an export imports back unchanged.
        return text[1:]
    return text


def _table(raw_rows: Iterable[Iterable[Any]]) -> Table:
    rows: list[list[str]] = []
    numbers: list[int] = []
    headers: list[str] | None = None
    for number, raw in enumerate(raw_rows, start=1):
        cells = [_cell(value) for value in raw]
        while cells and not cells[-1]:
            cells.pop()  # a workbook formatted to its last column pads every row with blanks
        if len(cells) > MAX_COLUMNS:
            raise UnreadableFile(f"The file has more than {MAX_COLUMNS:,} columns.")
        if not any(cells):
            continue
        if headers is None:
            headers = cells
            continue
        rows.append(cells)
        numbers.append(number)
        if len(rows) > MAX_ROWS:
            raise UnreadableFile(f"The file has more than {MAX_ROWS:,} rows; split it.")
    if headers is None:
        raise EmptyFile("The file is empty.")
    width = max([len(headers), *(len(row) for row in rows)])
    named: list[str] = []
    for index, header in enumerate(headers + [""] * (width - len(headers))):
        first = name = header or f"Column {index + 1}"
        copy = 1
        # "Phone (2)" for a second "Phone", unless the file has its own column of that name.
        while name in named or (copy > 1 and name in headers):
            copy += 1
            name = f"{first} ({copy})"
        named.append(name)
    return Table(
        headers=named, rows=[row + [""] * (width - len(row)) for row in rows], numbers=numbers
    )


def _decoded(data: bytes) -> str | None:
    """The file's text in the first encoding that reads it (Excel saves either), or None
    for bytes that are not text in any of them. A byte-order mark of UTF-16 (Excel's
    "Unicode Text", Numbers' UTF-16 CSV) says the encoding outright."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            return None
    # Excel for Mac's "CSV (Macintosh)" ends its lines in a bare \r and writes Mac Roman,
    # where cp1252 would read "José" as "JosŽ".
    mac = b"\r" in data and b"\n" not in data
    for encoding in ("utf-8-sig", "mac_roman" if mac else "cp1252"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    return None


def _unclosed_quote_line(text: str, delimiter: str) -> int | None:
    """The line on which a quote opens a cell that never closes, else None. The lenient
    reader the import uses takes the rest of the file into such a cell without a word (the
    partners below it would vanish into one rejected row); a strict one stops there."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    starts = 1
    try:
        for _ in reader:
            starts = reader.line_num + 1
    except csv.Error as error:
        # Only running off the end inside quotes; another oddity, such as "a"b, the lenient
        # reader reads as it can.
        if "end of data" in str(error):
            return starts
    return None


def read_table(upload: IO[bytes], name: str) -> Table:
    """The first sheet (XLSX) or the file (CSV, any common delimiter and encoding) as a
    header row and data rows of strings."""
    lowered = name.lower()
    if lowered.endswith(".xlsx"):
        from openpyxl import load_workbook
        from openpyxl.utils.exceptions import InvalidFileException

        # A damaged workbook fails in openpyxl as whatever its parts fail with: a zip, an
        # XML parser (a SyntaxError), or openpyxl's reading of what it parsed.
        damaged = (
            zipfile.BadZipFile,
            InvalidFileException,
            KeyError,
            IndexError,
            OSError,
            SyntaxError,
            TypeError,
            AttributeError,
            ValueError,
        )
        try:
            workbook = load_workbook(upload, read_only=True, data_only=True)
        except damaged as error:
            raise UnreadableFile("This is not a readable .xlsx workbook.") from error
        try:
            first = workbook.worksheets[0]
            return _table(first.iter_rows(values_only=True))
        except EmptyFile:
            if len(workbook.worksheets) == 1:
                raise
            raise UnreadableFile(
                f"The first sheet, “{first.title}”, is empty: only the first sheet of a "
                "workbook is read. Move the partners to the first sheet, or save that "
                "sheet as CSV."
            ) from None
        except UnreadableFile:
            raise
        except damaged as error:
            raise UnreadableFile("This is not a readable .xlsx workbook.") from error
        finally:
            workbook.close()
    if lowered.endswith((".csv", ".txt")):
        text = _decoded(upload.read())
        if text is None or "\x00" in text:
            raise UnreadableFile("This does not look like a text CSV file.")
        # The header line decides the delimiter: exports from European Excel use ";".
        # Lines may end in \r\n, \n or a bare \r (Excel for Mac's "CSV (Macintosh)").
        header_line = next(iter(io.StringIO(text, newline="")), "")
        delimiter = max(",;\t|", key=header_line.count)
        said = re.fullmatch(r"sep=(.)", header_line.rstrip("\r\n"))
        if said:
            # Excel's "sep=;" line names the delimiter; it is not the header. The line is
            # left blank, so rows keep their numbers.
            delimiter = said.group(1)
            text = text[len(header_line.rstrip("\r\n")) :]
        opened = _unclosed_quote_line(text, delimiter)
        if opened is not None:
            raise UnreadableFile(
                f'A quote (") opens a cell on line {opened} and never closes, so the rest of '
                "the file would be read into that one cell. Check that line (a quote "
                "starting a cell needs its closing quote) and upload the file again."
            )
        try:
            return _table(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
        except csv.Error as error:
            raise UnreadableFile(f"The CSV could not be read: {error}.") from error
    raise UnreadableFile("Upload a .csv or .xlsx file.")
