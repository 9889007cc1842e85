"""Partner spreadsheets: reading CSV/XLSX uploads, guessing the column mapping, planning
what an import would change, and writing exports. Pure functions and read-only queries;
partners.services applies a plan."""

from __future__ import annotations

import csv
import io
import re
import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import IO, Any

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db.models.functions import Lower

from core.npi import validate_npi
from partners.models import Organization, Provider

MAX_UPLOAD_BYTES = 10 * 1024 * 1024
MAX_ROWS = 20_000
LOOKUP_BATCH = 500

# Import targets: the field and how the mapping step names it.
TARGETS: dict[str, str] = {
    "npi": "NPI",
    "first_name": "First name",
    "last_name": "Last name",
    "full_name": "Full name (first and last together)",
    "credential": "Credential",
    "taxonomy_code": "Taxonomy code",
    "specialty": "Specialty",
    "organization": "Practice / office name",
    "phone": "Phone",
    "email": "Email",
    "notes": "Notes",
}

# Header spellings seen in other CRMs and hand-made sheets, compared without case,
# spaces or punctuation.
GUESSES: dict[str, str] = {
    **dict.fromkeys(["npi", "npinumber", "providernpi", "individualnpi", "npiid"], "npi"),
    **dict.fromkeys(
        ["firstname", "first", "givenname", "providerfirstname", "fname"], "first_name"
    ),
    **dict.fromkeys(
        ["lastname", "last", "surname", "familyname", "providerlastname", "lname"], "last_name"
    ),
    **dict.fromkeys(
        ["name", "fullname", "providername", "physician", "physicianname", "doctor", "contact"],
        "full_name",
    ),
    **dict.fromkeys(["credential", "credentials", "degree", "suffix"], "credential"),
    **dict.fromkeys(["taxonomy", "taxonomycode", "nucc", "nucccode"], "taxonomy_code"),
    **dict.fromkeys(["specialty", "speciality", "primaryspecialty", "specialties"], "specialty"),
    **dict.fromkeys(
        [
            "practice",
            "practicename",
            "office",
            "officename",
            "organization",
            "organisation",
            "organizationname",
            "clinic",
            "group",
            "groupname",
            "company",
            "account",
            "accountname",
        ],
        "organization",
    ),
    **dict.fromkeys(
        ["phone", "phonenumber", "telephone", "officephone", "tel", "workphone", "directphone"],
        "phone",
    ),
    **dict.fromkeys(["email", "emailaddress", "mail", "workemail"], "email"),
    **dict.fromkeys(["notes", "note", "comments", "comment"], "notes"),
}

# Export columns; their headers are guessed back on import, so an export round-trips.
EXPORT_COLUMNS: list[tuple[str, str]] = [
    ("NPI", "npi"),
    ("First name", "first_name"),
    ("Last name", "last_name"),
    ("Credential", "credential"),
    ("Taxonomy code", "taxonomy_code"),
    ("Specialty", "specialty"),
    ("Practice", "organization_name"),
    ("Phone", "phone"),
    ("Email", "email"),
    ("Status", "status_label"),
    ("Tier", "tier"),
    ("Health", "health_label"),
    ("Owner", "owner_name"),
    ("Notes", "notes"),
]

# After a comma, "MD" or "PhD, FACC" is a credential; "Jane" (as in "Doe, Jane") is not.
MIXED_CASE_CREDENTIALS = {"PHD", "PSYD", "PHARMD", "EDD", "DRPH", "MSC", "BSC"}


def _is_credential(text: str) -> bool:
    parts = [part.replace(".", "").strip() for part in re.split(r"[,/ ]+", text) if part]
    return bool(parts) and all(
        (part.isupper() and len(part) <= 6) or part.upper() in MIXED_CASE_CREDENTIALS
        for part in parts
    )


class UnreadableFile(ValueError):
    """The upload is not a CSV or XLSX table we can read; the message says why."""


@dataclass
class Table:
    headers: list[str]
    rows: list[list[str]]


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # Excel stores an NPI typed as a number as 1679576722.0
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value).strip()


def _table(raw_rows: Iterable[Iterable[Any]]) -> Table:
    rows: list[list[str]] = []
    headers: list[str] | None = None
    for raw in raw_rows:
        cells = [_cell(value) for value in raw]
        if not any(cells):
            continue
        if headers is None:
            headers = cells
            continue
        rows.append(cells)
        if len(rows) > MAX_ROWS:
            raise UnreadableFile(f"The file has more than {MAX_ROWS:,} rows; split it.")
    if headers is None:
        raise UnreadableFile("The file is empty.")
    width = max([len(headers), *(len(row) for row in rows)])
    seen: dict[str, int] = {}
    named = []
    for index, header in enumerate(headers + [""] * (width - len(headers))):
        header = header or f"Column {index + 1}"
        seen[header] = seen.get(header, 0) + 1
        named.append(header if seen[header] == 1 else f"{header} ({seen[header]})")
    return Table(headers=named, rows=[row + [""] * (width - len(row)) for row in rows])


def read_table(upload: IO[bytes], name: str) -> Table:
    """The first sheet (XLSX) or the file (CSV, any common delimiter and encoding) as a
    header row and data rows of strings."""
    lowered = name.lower()
    if lowered.endswith(".xlsx"):
        from openpyxl import load_workbook
        from openpyxl.utils.exceptions import InvalidFileException

        try:
            workbook = load_workbook(upload, read_only=True, data_only=True)
        except (zipfile.BadZipFile, InvalidFileException, KeyError, OSError) as error:
            raise UnreadableFile("This is not a readable .xlsx workbook.") from error
        try:
            return _table(workbook.worksheets[0].iter_rows(values_only=True))
        finally:
            workbook.close()
    if lowered.endswith((".csv", ".txt")):
        data = upload.read()
        for encoding in ("utf-8-sig", "cp1252"):
            try:
                text = data.decode(encoding)
                break
            except UnicodeDecodeError:
                continue
        if "\x00" in text:
            raise UnreadableFile("This does not look like a text CSV file.")
        # The header line decides the delimiter: exports from European Excel use ";".
        header_line = text.split("\n", 1)[0]
        delimiter = max(",;\t|", key=header_line.count)
        try:
            return _table(csv.reader(io.StringIO(text), delimiter=delimiter))
        except csv.Error as error:
            raise UnreadableFile(f"The CSV could not be read: {error}.") from error
    raise UnreadableFile("Upload a .csv or .xlsx file.")


def _normal(header: str) -> str:
    return re.sub(r"[^a-z0-9]", "", header.lower())


def guess_mapping(headers: list[str]) -> dict[str, str]:
    """Column index (as a string, the JSON key) to import target, by header name; each
    target is guessed for one column at most."""
    mapping: dict[str, str] = {}
    for index, header in enumerate(headers):
        target = GUESSES.get(_normal(header))
        if target and target not in mapping.values():
            mapping[str(index)] = target
    return mapping


@dataclass
class PlanRow:
    number: int  # the row number in the spreadsheet (the header is row 1)
    action: str  # create | update | unchanged | reject
    values: dict[str, str]
    reasons: list[str] = field(default_factory=list)
    changes: list[tuple[str, str, str]] = field(default_factory=list)
    provider_id: int | None = None
    cells: list[str] = field(default_factory=list)


@dataclass
class ImportPlan:
    rows: list[PlanRow]
    new_organizations: list[str]

    def of(self, action: str) -> list[PlanRow]:
        return [row for row in self.rows if row.action == action]

    @property
    def counts(self) -> dict[str, int]:
        counts = dict.fromkeys(["create", "update", "unchanged", "reject"], 0)
        for row in self.rows:
            counts[row.action] += 1
        return counts


def _split_name(full: str) -> tuple[str, str, str]:
    """'Jane Q. Doe, MD' -> (Jane Q., Doe, MD); 'Doe, Jane' -> (Jane, Doe, '')."""
    name, _, after = full.partition(",")
    after = after.strip()
    if after and not _is_credential(after):
        return after, name.strip(), ""
    words = name.split()
    if len(words) < 2:
        return "", name.strip(), after
    return " ".join(words[:-1]), words[-1], after


def _row_values(cells: list[str], mapping: dict[str, str]) -> dict[str, str]:
    values = {
        target: cells[int(index)].strip()
        for index, target in mapping.items()
        if int(index) < len(cells)
    }
    full = values.pop("full_name", "")
    if full:
        first, last, credential = _split_name(full)
        if not values.get("first_name"):
            values["first_name"] = first
        if not values.get("last_name"):
            values["last_name"] = last
        if credential and not values.get("credential"):
            values["credential"] = credential
    if "npi" in values:
        values["npi"] = re.sub(r"[\s\-]", "", values["npi"])
    return values


def _problems(values: dict[str, str]) -> list[str]:
    problems = []
    npi = values.get("npi", "")
    if not npi:
        problems.append("No NPI.")
    else:
        try:
            validate_npi(npi)
        except ValidationError as error:
            problems.append(f"NPI {npi[:20]}: {error.messages[0]}")
    for name, label in (("first_name", "first name"), ("last_name", "last name")):
        if not values.get(name):
            problems.append(f"No {label}.")
    if values.get("email"):
        try:
            validate_email(values["email"])
        except ValidationError:
            problems.append(f"“{values['email'][:60]}” is not an email address.")
    for name, value in values.items():
        limit = (
            Organization._meta.get_field("name").max_length
            if name == "organization"
            else getattr(Provider._meta.get_field(name), "max_length", None)
        )
        if limit and len(value) > limit:
            problems.append(f"{TARGETS[name]} is longer than {limit} characters.")
    return problems


def _chunks(items: list[str]) -> Iterator[list[str]]:
    for start in range(0, len(items), LOOKUP_BATCH):
        yield items[start : start + LOOKUP_BATCH]


def plan_import(
    rows: list[list[str]],
    mapping: dict[str, str],
    *,
    progress: Callable[[int], None] | None = None,
    progress_every: int = 1000,
) -> ImportPlan:
    """What importing `rows` with `mapping` would do, row by row, without writing: create
    (new NPI), update (known NPI; only non-empty cells that differ change anything),
    unchanged, or reject with the reasons. Queries run per batch of NPIs and names,
    never per row."""
    planned: list[PlanRow] = []
    first_row_of: dict[str, int] = {}
    for offset, cells in enumerate(rows):
        values = _row_values(cells, mapping)
        row = PlanRow(number=offset + 2, action="create", values=values, cells=cells)
        row.reasons = _problems(values)
        npi = values.get("npi", "")
        if not row.reasons and npi in first_row_of:
            row.reasons.append(f"NPI {npi} is also on row {first_row_of[npi]}.")
        if row.reasons:
            row.action = "reject"
        else:
            first_row_of[npi] = row.number
        planned.append(row)
        if progress and len(planned) % progress_every == 0:
            progress(len(planned))

    npis = list(first_row_of)
    existing: dict[str, Provider] = {}
    for batch in _chunks(npis):
        for provider in Provider.objects.filter(npi__in=batch).select_related("organization"):
            existing[provider.npi] = provider
    names = sorted({row.values.get("organization", "") for row in planned} - {""})
    known_orgs: set[str] = set()
    for batch in _chunks([name.lower() for name in names]):
        known_orgs.update(
            Organization.objects.annotate(lowered=Lower("name"))
            .filter(lowered__in=batch)
            .values_list("lowered", flat=True)
        )
    new_organizations = sorted(
        {
            row.values["organization"]
            for row in planned
            if row.action != "reject"
            and row.values.get("organization")
            and row.values["organization"].lower() not in known_orgs
        },
        key=str.lower,
    )

    for row in planned:
        provider = existing.get(row.values.get("npi", "")) if row.action != "reject" else None
        if provider is None:
            continue
        row.provider_id = provider.pk
        for name, new in row.values.items():
            if not new or name == "npi":
                continue
            if name == "organization":
                old = provider.organization.name if provider.organization else ""
                differs = old.lower() != new.lower()
            else:
                old = getattr(provider, name)
                differs = old != new
            if differs:
                row.changes.append((TARGETS[name], old, new))
        row.action = "update" if row.changes else "unchanged"
    return ImportPlan(rows=planned, new_organizations=dedupe_case(new_organizations))


def dedupe_case(names: list[str]) -> list[str]:
    seen: set[str] = set()
    result = []
    for name in names:
        if name.lower() not in seen:
            seen.add(name.lower())
            result.append(name)
    return result


def safe_cell(value: str) -> str:
    """Spreadsheet apps run cells that start like a formula; a leading apostrophe keeps a
    partner's name or note from becoming one (CSV injection)."""
    return f"'{value}" if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def export_rows(providers: Iterable[Provider]) -> Iterator[list[str]]:
    yield [header for header, _ in EXPORT_COLUMNS]
    for provider in providers:
        values = {
            "organization_name": provider.organization.name if provider.organization else "",
            "status_label": provider.get_status_display(),
            "health_label": provider.get_health_display(),
            "owner_name": (provider.owner.get_full_name() or provider.owner.get_username())
            if provider.owner
            else "",
        }
        yield [
            safe_cell(str(values[name] if name in values else getattr(provider, name)))
            for _, name in EXPORT_COLUMNS
        ]
