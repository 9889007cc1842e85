"""Reading the CMS NPPES Data Dissemination files (npidata_pfile, endpoint_pfile, pl_pfile),
row by row and by column name, from a plain CSV or the monthly zip bundle.

The reader yields rows ready for the database and reports malformed rows through a callback,
so a bad row costs one line in the rejects file and never the import.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
import zipfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import date
from operator import itemgetter
from pathlib import Path
from typing import IO, Any

from core.npi import is_valid_npi
from registry.geo import zip5, zip_centroid

# The monthly file's lines can be long, and some free-text fields longer than csv's default.
csv.field_size_limit(1 << 24)

# Database columns of RegistryProvider, in the order the reader yields them.
PROVIDER_COLUMNS: tuple[str, ...] = (
    "npi",
    "entity_type",
    "organization_name",
    "last_name",
    "first_name",
    "middle_name",
    "name_prefix",
    "name_suffix",
    "credential",
    "sex",
    "primary_taxonomy_code",
    "taxonomy_codes",
    "address_line1",
    "address_line2",
    "city",
    "state",
    "postal_code",
    "country",
    "zip5",
    "phone",
    "fax",
    "latitude",
    "longitude",
    "mailing_address_line1",
    "mailing_address_line2",
    "mailing_city",
    "mailing_state",
    "mailing_postal_code",
    "enumeration_date",
    "last_update_date",
    "deactivation_date",
    "reactivation_date",
    "deactivated",
)

# Text columns copied as they are, keyed by their NPPES header.
_TEXT_COLUMNS = {
    "organization_name": "Provider Organization Name (Legal Business Name)",
    "last_name": "Provider Last Name (Legal Name)",
    "first_name": "Provider First Name",
    "middle_name": "Provider Middle Name",
    "name_prefix": "Provider Name Prefix Text",
    "name_suffix": "Provider Name Suffix Text",
    "credential": "Provider Credential Text",
    "address_line1": "Provider First Line Business Practice Location Address",
    "address_line2": "Provider Second Line Business Practice Location Address",
    "city": "Provider Business Practice Location Address City Name",
    "state": "Provider Business Practice Location Address State Name",
    "country": "Provider Business Practice Location Address Country Code (If outside U.S.)",
    "mailing_address_line1": "Provider First Line Business Mailing Address",
    "mailing_address_line2": "Provider Second Line Business Mailing Address",
    "mailing_city": "Provider Business Mailing Address City Name",
    "mailing_state": "Provider Business Mailing Address State Name",
}
# Digit columns a spreadsheet or pandas may have turned into floats ("3088652512.0").
_NUMBER_COLUMNS = {
    "postal_code": "Provider Business Practice Location Address Postal Code",
    "mailing_postal_code": "Provider Business Mailing Address Postal Code",
    "phone": "Provider Business Practice Location Address Telephone Number",
    "fax": "Provider Business Practice Location Address Fax Number",
}
_DATE_COLUMNS = {
    "enumeration_date": "Provider Enumeration Date",
    "last_update_date": "Last Update Date",
    "deactivation_date": "NPI Deactivation Date",
    "reactivation_date": "NPI Reactivation Date",
}
NPI = "NPI"
ENTITY_TYPE = "Entity Type Code"
# CMS renamed the column in 2024; files from before say Gender.
SEX_COLUMNS = ("Provider Sex Code", "Provider Gender Code")
TAXONOMY_SLOTS = 15

_FLOAT_DIGITS = re.compile(r"^\d+\.0$")
# Postgres text cannot hold a NUL byte: one in a stored column (a damaged copy) would end
# the whole COPY, so its row is rejected instead, naming the column.
_HAS_NUL = "has a NUL byte (a damaged copy of the file?)"


class NppesFileError(ValueError):
    """The file as a whole cannot be read as NPPES data."""


class RowError(ValueError):
    pass


@dataclass
class Rejection:
    line: int
    npi: str
    reason: str


RejectHandler = Callable[[Rejection], None]


def _digits(value: str) -> tuple[str, bool]:
    """Undo pandas' float conversion of a digits-only column: "688482168.0" → "688482168"."""
    if value.endswith(".0") and _FLOAT_DIGITS.match(value):
        return value[:-2], True
    return value, False


def _postal(value: str) -> str:
    # A US ZIP read as a number loses its leading zeros (06101 → 6101); put them back.
    if value.isdigit() and len(value) in (3, 4, 7, 8):
        return value.zfill(5 if len(value) < 5 else 9)
    return value


class _DateParser:
    """MM/DD/YYYY as NPPES writes it; a month has few distinct dates, so parse each once."""

    def __init__(self) -> None:
        self._cache: dict[str, date] = {}

    def __call__(self, value: str, column: str) -> date | None:
        if not value:
            return None
        parsed = self._cache.get(value)
        if parsed is not None:
            return parsed
        try:
            if len(value) == 10 and value[2] == "/" and value[5] == "/":
                parsed = date(int(value[6:]), int(value[:2]), int(value[3:5]))
            elif len(value) == 10 and value[4] == "-" and value[7] == "-":
                parsed = date.fromisoformat(value)
            else:
                raise ValueError
        except ValueError:
            raise RowError(f"{column}: {value[:20]!r} is not a date (MM/DD/YYYY)") from None
        self._cache[value] = parsed
        return parsed


def _header(row: Sequence[str]) -> list[str]:
    return [name.lstrip("\ufeff").strip() for name in row]


_LUHN_DOUBLED = (0, 2, 4, 6, 8, 1, 3, 5, 7, 9)
# The doubled/plain digits of the "80840" prefix always add up to 24 (see core.npi).
_PREFIX_SUM = 24


def _npi_ok(npi: str) -> bool:
    """core.npi.is_valid_npi unrolled: it runs once per row of a 9-million-row file."""
    if len(npi) != 10 or not npi.isdigit() or not npi.isascii():
        return False
    d = [ord(c) - 48 for c in npi]
    total = _PREFIX_SUM + d[1] + d[3] + d[5] + d[7]
    total += _LUHN_DOUBLED[d[0]] + _LUHN_DOUBLED[d[2]] + _LUHN_DOUBLED[d[4]]
    total += _LUHN_DOUBLED[d[6]] + _LUHN_DOUBLED[d[8]]
    return (10 - total % 10) % 10 == d[9]


def _getter(indexes: list[int]) -> Callable[[list[str]], tuple[str, ...]]:
    picker = itemgetter(*indexes)
    if len(indexes) == 1:
        return lambda row: (picker(row),)
    return picker


@dataclass
class ProviderReader:
    """Turns npidata_pfile rows into RegistryProvider column tuples."""

    states: frozenset[str] = frozenset()
    taxonomy_prefixes: tuple[str, ...] = ()
    on_reject: RejectHandler = lambda rejection: None
    # Set once a float-mangled value was repaired, so the command can say so.
    repaired_floats: bool = False
    filtered: int = 0
    _dates: _DateParser = field(default_factory=_DateParser)

    def check_header(self, line: str) -> None:
        """Raise NppesFileError unless `line` is the header of an npidata_pfile."""
        for _ in self.rows([line]):
            pass

    def rows(self, handle: Iterable[str]) -> Iterator[tuple[Any, ...]]:
        reader = csv.reader(handle)
        try:
            header = _header(next(reader))
        except StopIteration:
            raise NppesFileError("The file is empty.") from None
        except csv.Error as error:
            raise NppesFileError(f"The file is not a CSV file ({error}).") from None
        index = {name: i for i, name in enumerate(header)}
        missing = [name for name in (NPI, ENTITY_TYPE) if name not in index]
        if missing:
            raise NppesFileError(
                "This is not an NPPES provider file (npidata_pfile): it has no "
                + " or ".join(f"“{name}”" for name in missing)
                + " column."
            )
        width = len(header)
        # Columns this file lacks (older layouts) read an empty cell appended to each row.
        at = {name: index.get(name, width) for name in header}

        def column(name: str) -> int:
            return at.get(name, width)

        layout = _Layout(
            width=width,
            npi=index[NPI],
            entity=index[ENTITY_TYPE],
            texts=_getter([column(c) for c in _TEXT_COLUMNS.values()]),
            numbers=_getter([column(c) for c in _NUMBER_COLUMNS.values()]),
            dates=_getter([column(c) for c in _DATE_COLUMNS.values()]),
            sex=next((index[c] for c in SEX_COLUMNS if c in index), width),
            codes=_getter([column(f"Healthcare Provider Taxonomy Code_{n}") for n in range(1, 16)]),
            switches=_getter(
                [column(f"Healthcare Provider Primary Taxonomy Switch_{n}") for n in range(1, 16)]
            ),
        )
        while True:
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as error:
                self.on_reject(Rejection(reader.line_num, "", f"unreadable CSV: {error}"))
                continue
            if not row:
                continue
            if len(row) != width:
                self.on_reject(
                    Rejection(
                        reader.line_num,
                        row[0].strip()[:20],
                        f"expected {width} columns, found {len(row)}",
                    )
                )
                continue
            row.append("")
            try:
                record = self._record(row, layout)
            except RowError as error:
                self.on_reject(Rejection(reader.line_num, row[layout.npi][:20], str(error)))
                continue
            if record is not None:
                yield record

    def _record(self, row: list[str], layout: _Layout) -> tuple[Any, ...] | None:
        npi = row[layout.npi].strip()
        if npi.endswith(".0"):
            npi, self.repaired_floats = _digits(npi)[0], True
        if not _npi_ok(npi):
            if len(npi) == 10 and npi.isdigit():
                raise RowError(f"NPI {npi} fails the check digit")
            raise RowError(f"NPI {npi[:20]!r} is not 10 digits")
        entity = row[layout.entity].strip()
        if entity.endswith(".0"):
            entity, self.repaired_floats = _digits(entity)[0], True

        parse = self._dates
        enumerated, updated, deactivation, reactivation = (
            parse(value.strip(), name)
            for value, name in zip(layout.dates(row), _DATE_COLUMNS.values(), strict=True)
        )
        if entity == "":
            if deactivation is None:
                raise RowError("no Entity Type Code and no NPI Deactivation Date")
            # A deactivated NPI: CMS blanks everything but the NPI and the date. Filters
            # cannot apply (no state, no taxonomy); it is kept so a partner can be flagged.
            return (npi, None, *[""] * 19, None, None, *[""] * 5, None, None,
                    deactivation, None, True)  # fmt: skip
        if entity not in ("1", "2"):
            raise RowError(f"Entity Type Code {entity[:10]!r} is not 1 or 2")

        all_codes = layout.codes(row)
        if "\x00" in "".join(all_codes):
            slot = next(n for n, code in enumerate(all_codes, start=1) if "\x00" in code)
            raise RowError(f"Healthcare Provider Taxonomy Code_{slot} {_HAS_NUL}")
        codes = [code.strip() for code in all_codes if code]
        primary = ""
        for code, switch in zip(all_codes, layout.switches(row), strict=True):
            if switch == "Y" and code:
                primary = code.strip()
                break
        if not primary and codes:
            primary = codes[0]
        if len(primary) > 10:
            raise RowError(f"taxonomy code {primary[:20]!r} is longer than 10 characters")

        texts = tuple(map(str.strip, layout.texts(row)))
        for text, header in zip(texts, _TEXT_COLUMNS.values(), strict=True):
            if "\ufffd" in text:
                # A byte that is not UTF-8 (text_stream replaced it): storing the row would
                # keep a garbled name or state; the rejects file says which column.
                raise RowError(f"{header} has bytes that are not UTF-8 text")
            if "\x00" in text:
                raise RowError(f"{header} {_HAS_NUL}")
        if "<UNAVAIL>" in texts:
            texts = tuple("" if value == "<UNAVAIL>" else value for value in texts)
        (org, last, first, middle, prefix, suffix, credential, line1, line2, city, state,
         country, mail1, mail2, mail_city, mail_state) = texts  # fmt: skip

        if self.states and state not in self.states:
            self.filtered += 1
            return None
        if self.taxonomy_prefixes and not any(
            code.startswith(self.taxonomy_prefixes) for code in codes
        ):
            self.filtered += 1
            return None

        numbers = tuple(map(str.strip, layout.numbers(row)))
        if "\x00" in "".join(numbers):
            pairs = zip(numbers, _NUMBER_COLUMNS.values(), strict=True)
            header = next(h for n, h in pairs if "\x00" in n)
            raise RowError(f"{header} {_HAS_NUL}")
        postal, mail_postal, phone, fax = numbers
        if ".0" in postal or ".0" in mail_postal or ".0" in phone or ".0" in fax:
            postal, mail_postal, phone, fax = (
                self._repair(postal), self._repair(mail_postal),
                self._repair(phone), self._repair(fax),
            )  # fmt: skip
        postal, mail_postal = _postal(postal), _postal(mail_postal)
        zip_code = zip5(postal) if country in ("", "US") else ""
        centroid = zip_centroid(zip_code) if zip_code else None
        deactivated = deactivation is not None and (
            reactivation is None or reactivation < deactivation
        )
        return (
            npi,
            int(entity),
            org[:300],
            last[:100],
            first[:100],
            middle[:100],
            prefix[:20],
            suffix[:20],
            credential[:100],
            # One letter: a NUL there is dropped rather than costing the row.
            row[layout.sex].strip()[:1].replace("\x00", ""),
            primary,
            " ".join(code[:10] for code in codes),
            line1[:100],
            line2[:100],
            city[:100],
            state[:40],
            postal[:20],
            country[:2],
            zip_code,
            phone[:20],
            fax[:20],
            centroid[0] if centroid else None,
            centroid[1] if centroid else None,
            mail1[:100],
            mail2[:100],
            mail_city[:100],
            mail_state[:40],
            mail_postal[:20],
            enumerated,
            updated,
            deactivation,
            reactivation,
            deactivated,
        )

    def _repair(self, value: str) -> str:
        value, repaired = _digits(value)
        self.repaired_floats |= repaired
        return value


@dataclass(frozen=True)
class _Layout:
    """Where each field sits in this file's rows (found by header name)."""

    width: int
    npi: int
    entity: int
    texts: Callable[[list[str]], tuple[str, ...]]
    numbers: Callable[[list[str]], tuple[str, ...]]
    dates: Callable[[list[str]], tuple[str, ...]]
    sex: int
    codes: Callable[[list[str]], tuple[str, ...]]
    switches: Callable[[list[str]], tuple[str, ...]]


# --- The companion files of the bundle ------------------------------------------------------

ENDPOINT_COLUMNS = {
    "endpoint_type": "Endpoint Type",
    "endpoint_type_description": "Endpoint Type Description",
    "endpoint": "Endpoint",
    "affiliation": "Affiliation",
    "endpoint_description": "Endpoint Description",
    "affiliation_legal_business_name": "Affiliation Legal Business Name",
    "use_code": "Use Code",
    "content_type": "Content Type",
}
ENDPOINT_LENGTHS = {"endpoint_type": 20, "affiliation": 1, "use_code": 20, "content_type": 20}

LOCATION_COLUMNS = {
    "address_line1": "Provider Secondary Practice Location Address- Address Line 1",
    "address_line2": "Provider Secondary Practice Location Address-  Address Line 2",
    "city": "Provider Secondary Practice Location Address - City Name",
    "state": "Provider Secondary Practice Location Address - State Name",
    "postal_code": "Provider Secondary Practice Location Address - Postal Code",
    "country": "Provider Secondary Practice Location Address - Country Code (If outside U.S.)",
    "phone": "Provider Secondary Practice Location Address - Telephone Number",
    "phone_extension": "Provider Secondary Practice Location Address - Telephone Extension",
    "fax": "Provider Practice Location Address - Fax Number",
}
LOCATION_LENGTHS = {
    "state": 40,
    "postal_code": 20,
    "country": 2,
    "phone": 20,
    "phone_extension": 10,
    "fax": 20,
}


def _squash(name: str) -> str:
    # CMS spells these headers with irregular spaces around the dashes.
    return " ".join(name.replace("-", " - ").split()).lower()


def read_companion(
    handle: IO[str],
    columns: dict[str, str],
    lengths: dict[str, int],
    on_reject: RejectHandler,
) -> Iterator[dict[str, Any]]:
    """Rows of endpoint_pfile or pl_pfile as dicts of model fields plus npi and row_hash."""
    reader = csv.reader(handle)
    header = _header(next(reader, []))
    index = {_squash(name): i for i, name in enumerate(header)}
    if NPI.lower() not in index:
        raise NppesFileError("The companion file has no NPI column.")
    positions = {name: index.get(_squash(column)) for name, column in columns.items()}
    for row in reader:
        if len(row) != len(header):
            on_reject(Rejection(reader.line_num, row[0][:20] if row else "", "column count"))
            continue
        npi = row[index["npi"]].strip()
        if not is_valid_npi(npi):
            on_reject(Rejection(reader.line_num, npi[:20], f"NPI {npi[:20]!r} is not valid"))
            continue
        values = {
            name: (row[i].strip() if i is not None else "")[: lengths.get(name, 500)]
            for name, i in positions.items()
        }
        damaged = next((name for name, value in values.items() if "\x00" in value), None)
        if damaged is not None:
            on_reject(Rejection(reader.line_num, npi, f"{columns[damaged]} {_HAS_NUL}"))
            continue
        digest = hashlib.md5(
            "\x1f".join([npi, *values.values()]).encode(), usedforsecurity=False
        ).hexdigest()
        yield {"provider_id": npi, **values, "row_hash": digest}


# --- Opening a plain file or the bundle -----------------------------------------------------


@dataclass
class NppesSource:
    """The open members of an NPPES download, with a way to tell how far reading got."""

    providers: IO[str]
    total_bytes: int
    position: Callable[[], int]
    endpoints: Callable[[], IO[str]] | None = None
    locations: Callable[[], IO[str]] | None = None
    # A plain file can be split into byte ranges read in parallel; a zip member cannot.
    splittable: bool = False


def text_stream(binary: IO[bytes]) -> IO[str]:
    # NPPES is ASCII in practice; a stray byte must not stop a 9-million-row load (its row
    # is rejected, naming the column, by NppesReader._record).
    return io.TextIOWrapper(binary, encoding="utf-8", errors="replace", newline="")


def _is_data_member(name: str, prefix: str) -> bool:
    base = name.rsplit("/", 1)[-1].lower()
    return base.startswith(prefix) and base.endswith(".csv") and "fileheader" not in base


def open_source(path: Path, stack: ExitStack) -> NppesSource:
    if zipfile.is_zipfile(path):
        archive = stack.enter_context(zipfile.ZipFile(path))
        names = archive.namelist()
        member = next((n for n in names if _is_data_member(n, "npidata_pfile")), None)
        if member is None:
            raise NppesFileError(f"{path.name} holds no npidata_pfile_*.csv.")
        binary = stack.enter_context(archive.open(member))

        def companion(prefix: str) -> Callable[[], IO[str]] | None:
            name = next((n for n in names if _is_data_member(n, prefix)), None)
            if name is None:
                return None
            return lambda: stack.enter_context(text_stream(archive.open(name)))

        return NppesSource(
            providers=stack.enter_context(text_stream(binary)),
            total_bytes=archive.getinfo(member).file_size,
            position=binary.tell,
            endpoints=companion("endpoint_pfile"),
            locations=companion("pl_pfile"),
        )
    if path.suffix.lower() == ".zip":
        raise NppesFileError(
            f"{path.name} is not a zip archive (damaged, or not the download from CMS)."
        )
    raw = stack.enter_context(path.open("rb"))
    return NppesSource(
        providers=stack.enter_context(text_stream(raw)),
        total_bytes=path.stat().st_size,
        position=raw.tell,
        splittable=True,
    )
