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
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import date
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

_MAX_LENGTHS = {
    "organization_name": 300,
    "credential": 100,
    "address_line1": 100,
    "address_line2": 100,
    "mailing_address_line1": 100,
    "mailing_address_line2": 100,
}

_FLOAT_DIGITS = re.compile(r"^\d+\.0$")


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

    def rows(self, handle: IO[str]) -> Iterator[tuple[Any, ...]]:
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
        i_npi, i_entity = index[NPI], index[ENTITY_TYPE]
        text = [(name, index.get(column)) for name, column in _TEXT_COLUMNS.items()]
        numbers = {name: index.get(column) for name, column in _NUMBER_COLUMNS.items()}
        dates = {name: (index.get(column), column) for name, column in _DATE_COLUMNS.items()}
        i_sex = next((index[c] for c in SEX_COLUMNS if c in index), None)
        slots = [
            (
                index[f"Healthcare Provider Taxonomy Code_{n}"],
                index.get(f"Healthcare Provider Primary Taxonomy Switch_{n}"),
            )
            for n in range(1, TAXONOMY_SLOTS + 1)
            if f"Healthcare Provider Taxonomy Code_{n}" in index
        ]

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
            npi = row[0].strip() if row else ""
            if len(row) != width:
                self.on_reject(
                    Rejection(
                        reader.line_num, npi[:20], f"expected {width} columns, found {len(row)}"
                    )
                )
                continue
            try:
                record = self._record(row, i_npi, i_entity, text, numbers, dates, i_sex, slots)
            except RowError as error:
                self.on_reject(Rejection(reader.line_num, row[i_npi][:20], str(error)))
                continue
            if record is not None:
                yield record

    def _record(
        self,
        row: list[str],
        i_npi: int,
        i_entity: int,
        text: list[tuple[str, int | None]],
        numbers: dict[str, int | None],
        dates: dict[str, tuple[int | None, str]],
        i_sex: int | None,
        slots: list[tuple[int, int | None]],
    ) -> tuple[Any, ...] | None:
        npi, repaired = _digits(row[i_npi].strip())
        self.repaired_floats |= repaired
        if not is_valid_npi(npi):
            if len(npi) == 10 and npi.isdigit():
                raise RowError(f"NPI {npi} fails the check digit")
            raise RowError(f"NPI {npi[:20]!r} is not 10 digits")
        entity, repaired = _digits(row[i_entity].strip())
        self.repaired_floats |= repaired

        parsed: dict[str, Any] = {}
        for name, (i, column) in dates.items():
            parsed[name] = self._dates(row[i].strip(), column) if i is not None else None

        if entity == "":
            if parsed["deactivation_date"] is None:
                raise RowError("no Entity Type Code and no NPI Deactivation Date")
            # A deactivated NPI: CMS blanks everything but the NPI and the date. Filters
            # cannot apply (no state, no taxonomy); it is kept so a partner can be flagged.
            return (npi, None, *[""] * 19, None, None, *[""] * 5, None, None,
                    parsed["deactivation_date"], None, True)  # fmt: skip
        if entity not in ("1", "2"):
            raise RowError(f"Entity Type Code {entity[:10]!r} is not 1 or 2")

        codes: list[str] = []
        primary = ""
        for i_code, i_switch in slots:
            code = row[i_code].strip()
            if code:
                codes.append(code)
                if not primary and i_switch is not None and row[i_switch].strip() == "Y":
                    primary = code
        if not primary and codes:
            primary = codes[0]
        if len(primary) > 10:
            raise RowError(f"taxonomy code {primary[:20]!r} is longer than 10 characters")

        for name, i in text:
            value = row[i].strip() if i is not None else ""
            if value == "<UNAVAIL>":
                value = ""
            parsed[name] = value[: _MAX_LENGTHS.get(name, 100)]
        for name, i in numbers.items():
            value, repaired = _digits(row[i].strip()) if i is not None else ("", False)
            self.repaired_floats |= repaired
            parsed[name] = value[:20]
        parsed["postal_code"] = _postal(parsed["postal_code"])
        parsed["mailing_postal_code"] = _postal(parsed["mailing_postal_code"])

        state = parsed["state"]
        if self.states and state not in self.states:
            self.filtered += 1
            return None
        if self.taxonomy_prefixes and not any(
            code.startswith(self.taxonomy_prefixes) for code in codes
        ):
            self.filtered += 1
            return None

        foreign = parsed["country"] not in ("", "US")
        zip_code = "" if foreign else zip5(parsed["postal_code"])
        centroid = zip_centroid(zip_code) if zip_code else None
        deactivation, reactivation = parsed["deactivation_date"], parsed["reactivation_date"]
        deactivated = deactivation is not None and (
            reactivation is None or reactivation < deactivation
        )
        sex = row[i_sex].strip()[:1] if i_sex is not None else ""
        return (
            npi,
            int(entity),
            parsed["organization_name"],
            parsed["last_name"],
            parsed["first_name"],
            parsed["middle_name"],
            parsed["name_prefix"][:20],
            parsed["name_suffix"][:20],
            parsed["credential"],
            sex,
            primary,
            " ".join(code[:10] for code in codes),
            parsed["address_line1"],
            parsed["address_line2"],
            parsed["city"],
            state[:40],
            parsed["postal_code"],
            parsed["country"][:2],
            zip_code,
            parsed["phone"],
            parsed["fax"],
            centroid[0] if centroid else None,
            centroid[1] if centroid else None,
            parsed["mailing_address_line1"],
            parsed["mailing_address_line2"],
            parsed["mailing_city"],
            parsed["mailing_state"][:40],
            parsed["mailing_postal_code"],
            parsed["enumeration_date"],
            parsed["last_update_date"],
            deactivation,
            reactivation,
            deactivated,
        )


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


def _text(binary: IO[bytes]) -> IO[str]:
    # NPPES is ASCII in practice; a stray byte must not stop a 9-million-row load.
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
            return lambda: stack.enter_context(_text(archive.open(name)))

        return NppesSource(
            providers=stack.enter_context(_text(binary)),
            total_bytes=archive.getinfo(member).file_size,
            position=binary.tell,
            endpoints=companion("endpoint_pfile"),
            locations=companion("pl_pfile"),
        )
    raw = stack.enter_context(path.open("rb"))
    return NppesSource(
        providers=stack.enter_context(_text(raw)),
        total_bytes=path.stat().st_size,
        position=raw.tell,
    )
