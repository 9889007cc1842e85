"""Reading an uploaded CSV or XLSX file into a header row and rows of strings."""

from __future__ import annotations

import codecs
import csv
import io
import re
import zipfile
from collections import defaultdict
from collections.abc import Iterable, Iterator
from contextlib import suppress
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

# The encodings a CSV's text may be read in, as the upload form offers them (the form's
# "Automatic" tells them apart as below).
ENCODINGS = {
    "utf-8": "UTF-8",
    "cp1252": "Windows (Western European, code page 1252)",
    "mac_roman": "Mac Roman (Excel for Mac's “CSV (Macintosh)”)",
    "cp850": "DOS (Western European, code page 850)",
    "cp437": "DOS (United States, code page 437)",
    "utf-16": "UTF-16 (Excel's “Unicode Text”)",
}
# Bytes that Windows code page 1252 reads as punctuation often found beside a letter
# (curly quotes and apostrophes as in O'Brien, dashes, a bullet, an ellipsis) or as a
# no-break space: they say nothing about DOS.
_NEUTRAL_BYTES = frozenset(range(0x91, 0x98)) | {0x85, 0xA0}


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
    # How a CSV's text was read (a key of ENCODINGS); blank for a workbook.
    encoding: str = ""


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


def _merged_down(worksheet: Any) -> list[tuple[int, int, int]]:
    """The sheet's merged ranges that span rows, as (column, first row, last row), from
    the sheet's XML: openpyxl's read-only mode (which keeps a big sheet out of memory)
    does not read them, and gives a blank for every cell of a merge but its first."""
    from openpyxl.utils.cell import range_boundaries
    from openpyxl.xml.constants import SHEET_MAIN_NS
    from openpyxl.xml.functions import iterparse

    tag = f"{{{SHEET_MAIN_NS}}}mergeCell"
    found = []
    # The read-only sheet's own way to its XML (what its iter_rows reads).
    with worksheet._get_source() as source:
        for _, element in iterparse(source):
            if element.tag == tag:
                min_col, min_row, _, max_row = range_boundaries(element.get("ref", ""))
                if min_col and min_row and max_row and max_row > min_row:
                    found.append((min_col, min_row, max_row))
            element.clear()  # a row at a time, as iter_rows does: memory stays flat
    return found


def _filled_down(
    rows: Iterable[Iterable[Any]], merges: list[tuple[int, int, int]]
) -> Iterator[list[Any]]:
    """The rows with the value of each merge that spans rows in every row it covers: an
    office name merged down its partners' rows, as hand-made sheets do, is each partner's
    office, as the sheet shows it. Only the merge's first column is filled, so a merge
    across columns does not make the same value several columns."""
    starting: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for column, first, last in merges:
        starting[first].append((column, last))
    covering: list[tuple[int, int, Any]] = []
    for number, raw in enumerate(rows, start=1):
        cells = list(raw)
        covering = [merge for merge in covering if merge[1] >= number]
        for column, _, value in covering:
            cells.extend([None] * (column - len(cells)))
            cells[column - 1] = value
        for column, last in starting.pop(number, []):
            covering.append((column, last, cells[column - 1] if column <= len(cells) else None))
        yield cells


def _looks_like_dos(data: bytes) -> bool:
    """Whether the bytes beside letters read as accented letters in DOS code page 850
    rather than in Windows code page 1252. Old practice-management systems export DOS
    text, where "José Muñoz" is b"Jos\\x82 Mu\\xa4oz", which Windows reads as "Jos", a low
    quotation mark, "Mu", a currency sign and "oz" without a complaint. Each byte above ASCII next to an ASCII letter votes: for DOS when
    Windows reads it as no letter (or as nothing), for Windows when it reads a letter."""
    dos = windows = 0
    for match in re.finditer(rb"(?<=[A-Za-z])[\x80-\xff]|[\x80-\xff](?=[A-Za-z])", data):
        byte = match.group()
        if byte[0] in _NEUTRAL_BYTES:
            continue
        try:
            letter = byte.decode("cp1252").isalpha()
        except UnicodeDecodeError:
            letter = False  # a byte Windows leaves undefined (0x81: ü in DOS)
        if letter:
            windows += 1
        else:
            dos += 1
    return dos > windows


def _decoded(data: bytes, encoding: str = "") -> tuple[str, str] | None:
    """The file's text and the encoding it was read in: the one asked for, else the first
    that reads it (Excel saves either), or None for bytes that are not text in it (or in
    any). A byte-order mark of UTF-16 (Excel's "Unicode Text", Numbers' UTF-16 CSV) says the
    encoding outright."""
    if encoding:
        try:
            text = data.decode("utf-8-sig" if encoding == "utf-8" else encoding)
        except UnicodeDecodeError:
            return None
        return text.removeprefix("\ufeff"), encoding
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return data.decode("utf-16"), "utf-16"
        except UnicodeDecodeError:
            return None
    with suppress(UnicodeDecodeError):
        return data.decode("utf-8-sig"), "utf-8"
    # Excel for Mac's "CSV (Macintosh)" ends its lines in a bare \r and writes Mac Roman,
    # where cp1252 would read "José" as "JosŽ".
    if b"\r" in data and b"\n" not in data:
        fallback = "mac_roman"
    else:
        fallback = "cp850" if _looks_like_dos(data) else "cp1252"
    try:
        return data.decode(fallback), fallback
    except UnicodeDecodeError:
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


def read_table(upload: IO[bytes], name: str, *, encoding: str = "") -> Table:
    """The first sheet (XLSX) or the file (CSV, any common delimiter and encoding) as a
    header row and data rows of strings. `encoding` (a key of ENCODINGS) is how to read a
    CSV's text; blank tells it from the bytes."""
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
            return _table(_filled_down(first.iter_rows(values_only=True), _merged_down(first)))
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
        decoded = _decoded(upload.read(), encoding)
        if decoded is None and encoding:
            raise UnreadableFile(
                f"This file cannot be read as {ENCODINGS[encoding]}: choose another "
                "encoding, or Automatic."
            )
        if decoded is None or "\x00" in decoded[0]:
            raise UnreadableFile("This does not look like a text CSV file.")
        text, encoding = decoded
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
            table = _table(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
        except csv.Error as error:
            raise UnreadableFile(f"The CSV could not be read: {error}.") from error
        table.encoding = encoding
        return table
    raise UnreadableFile("Upload a .csv or .xlsx file.")
