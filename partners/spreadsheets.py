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

from core.meta import own_field
from core.npi import validate_npi
from core.phones import us_phone_number
from core.usps import us_state_code, us_zip_code
from partners.models import Organization, Provider
from registry.geo import zip5, zip_centroid

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
    "office_address_line1": "Office address",
    "office_address_line2": "Office address line 2 (suite)",
    "office_city": "Office city",
    "office_state": "Office state",
    "office_zip_code": "Office ZIP code",
    "office_phone": "Office phone",
    "office_fax": "Office referral fax",
    "phone": "Phone",
    "email": "Email",
    "notes": "Notes",
}

# The office targets and the Organization field each fills.
OFFICE_FIELDS: dict[str, str] = {
    "office_address_line1": "address_line1",
    "office_address_line2": "address_line2",
    "office_city": "city",
    "office_state": "state",
    "office_zip_code": "zip_code",
    "office_phone": "phone",
    "office_fax": "fax",
}
OFFICE_LABELS = {name: TARGETS[target] for target, name in OFFICE_FIELDS.items()}

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
    # Salesforce exports say Mailing (contacts) and Billing (accounts); NPPES files name the
    # practice location's columns in full (its mailing address is not the office).
    **dict.fromkeys(
        [
            "address",
            "address1",
            "addressline1",
            "addr",
            "street",
            "street1",
            "streetaddress",
            "streetaddress1",
            "officeaddress",
            "practiceaddress",
            "mailingstreet",
            "billingstreet",
            "providerfirstlinebusinesspracticelocationaddress",
        ],
        "office_address_line1",
    ),
    **dict.fromkeys(
        [
            "address2",
            "addressline2",
            "street2",
            "streetaddress2",
            "suite",
            "suitenumber",
            "ste",
            "providersecondlinebusinesspracticelocationaddress",
        ],
        "office_address_line2",
    ),
    **dict.fromkeys(
        [
            "city",
            "town",
            "officecity",
            "practicecity",
            "mailingcity",
            "billingcity",
            "providerbusinesspracticelocationaddresscityname",
        ],
        "office_city",
    ),
    **dict.fromkeys(
        [
            "state",
            "st",
            "statecode",
            "stateregion",
            "stateprovince",
            "officestate",
            "practicestate",
            "mailingstate",
            "mailingstateprovince",
            "billingstate",
            "billingstateprovince",
            "providerbusinesspracticelocationaddressstatename",
        ],
        "office_state",
    ),
    **dict.fromkeys(
        [
            "zip",
            "zipcode",
            "zip5",
            "postalcode",
            "postcode",
            "zippostalcode",
            "officezip",
            "practicezip",
            "mailingzip",
            "mailingpostalcode",
            "mailingzippostalcode",
            "billingzip",
            "billingpostalcode",
            "billingzippostalcode",
            "providerbusinesspracticelocationaddresspostalcode",
        ],
        "office_zip_code",
    ),
    **dict.fromkeys(
        [
            "officephone",
            "practicephone",
            "clinicphone",
            "mainphone",
            "providerbusinesspracticelocationaddresstelephonenumber",
        ],
        "office_phone",
    ),
    **dict.fromkeys(
        [
            "fax",
            "faxnumber",
            "faxno",
            "referralfax",
            "officefax",
            "practicefax",
            "clinicfax",
            "designatedfax",
            "businessfax",
            "providerbusinesspracticelocationaddressfaxnumber",
        ],
        "office_fax",
    ),
    **dict.fromkeys(
        ["phone", "phonenumber", "telephone", "tel", "workphone", "directphone"], "phone"
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
    ("Address", "address_line1"),
    ("Address line 2", "address_line2"),
    ("City", "city"),
    ("State", "state"),
    ("ZIP code", "zip_code"),
    ("Office phone", "office_phone"),
    ("Fax", "fax"),
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
class OfficePlan:
    """An office the import puts partners in: an existing one, or one it will create
    (`organization` is None until it does)."""

    name: str
    organization: Organization | None = None
    # Organization field → the file's value, and the row it came from.
    values: dict[str, str] = field(default_factory=dict)
    sources: dict[str, int] = field(default_factory=dict)
    # (label, old, new) for an existing office.
    changes: list[tuple[str, str, str]] = field(default_factory=list)

    def __str__(self) -> str:
        return self.label

    @property
    def label(self) -> str:
        def value(name: str) -> str:
            if self.values.get(name):
                return self.values[name]
            return getattr(self.organization, name) if self.organization else ""

        return office_label(self.name, value("city"), value("state"), value("zip_code"))


@dataclass
class PlanRow:
    number: int  # the row number in the spreadsheet (the header is row 1)
    action: str  # create | update | unchanged | reject
    values: dict[str, str]
    reasons: list[str] = field(default_factory=list)
    # Office values that could not be read and are left out; the rest of the row imports.
    skipped: list[str] = field(default_factory=list)
    changes: list[tuple[str, str, str]] = field(default_factory=list)
    provider_id: int | None = None
    cells: list[str] = field(default_factory=list)
    office: OfficePlan | None = None

    def reject(self, *reasons: str) -> None:
        self.reasons.extend(reasons)
        self.action = "reject"


@dataclass
class ImportPlan:
    rows: list[PlanRow]
    offices: list[OfficePlan] = field(default_factory=list)

    def of(self, action: str) -> list[PlanRow]:
        return [row for row in self.rows if row.action == action]

    @property
    def counts(self) -> dict[str, int]:
        counts = dict.fromkeys(["create", "update", "unchanged", "reject"], 0)
        for row in self.rows:
            counts[row.action] += 1
        return counts

    @property
    def new_offices(self) -> list[OfficePlan]:
        new = [office for office in self.offices if office.organization is None]
        return sorted(new, key=lambda office: office.label.lower())

    @property
    def with_skipped_values(self) -> list[PlanRow]:
        return [row for row in self.rows if row.skipped and row.action != "reject"]

    @property
    def office_updates(self) -> list[OfficePlan]:
        return [office for office in self.offices if office.changes]

    @property
    def office_counts(self) -> dict[str, int]:
        return {"create": len(self.new_offices), "update": len(self.office_updates)}


def office_label(name: str, city: str, state: str, zip_code: str) -> str:
    """“Kearney Family Practice (Kearney, NE 68847)”: the name, and where when known."""
    place = ", ".join(
        part for part in (city, " ".join(part for part in (state, zip_code) if part)) if part
    )
    return f"{name} ({place})" if place else name


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


def _max_length(target: str) -> int | None:
    if target == "organization":
        return own_field(Organization, "name").max_length
    if target in OFFICE_FIELDS:
        return own_field(Organization, OFFICE_FIELDS[target]).max_length
    return getattr(Provider._meta.get_field(target), "max_length", None)


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
        limit = _max_length(name)
        if limit and len(value) > limit:
            problems.append(f"{TARGETS[name]} is longer than {limit} characters.")
    return problems


def _clean_office(values: dict[str, str]) -> tuple[list[str], list[str]]:
    """Write the office's state, ZIP, phone and fax the way the app does, in place. Returns
    the problems that refuse the row (an unreadable ZIP: it decides which office the row
    goes to) and the values left out because they cannot be read (a state, phone or fax
    the office form or another system stored freely: the partner's own data still
    imports)."""
    problems, skipped = [], []
    readers: list[tuple[str, Callable[[str], str | None], str]] = [
        ("office_state", us_state_code, "is not a US state or territory."),
        ("office_zip_code", us_zip_code, "is not a ZIP code (5 digits or ZIP+4)."),
        ("office_phone", us_phone_number, "is not a US phone number."),
        ("office_fax", us_phone_number, "is not a US fax number."),
    ]
    for target, read, what in readers:
        typed = values.get(target, "")
        if not typed:
            continue
        written = read(typed)
        if written is None and target == "office_zip_code":
            state = us_state_code(values.get("office_state", "")) or ""
            written = _zip_without_its_leading_zeros(typed, state)
        if written is None:
            problem = f"{TARGETS[target]} “{typed[:40]}” {what}"
            if target != "office_zip_code":
                del values[target]
                skipped.append(f"{problem} Left out; the rest of the row is imported.")
                continue
            if typed.isdigit() and len(typed) < 5:
                problem += " A spreadsheet may have dropped its leading zero: format it as text."
            problems.append(problem)
        else:
            values[target] = written
    if not values.get("organization") and any(values.get(target) for target in OFFICE_FIELDS):
        problems.append("Office details but no practice / office name to put them on.")
    return problems, skipped


# Where ZIP codes start with 0, by their first three digits (USPS): only there can a
# spreadsheet have dropped a leading zero.
_ZERO_ZIP_STATES = {
    **dict.fromkeys(["005"], "NY"),
    **dict.fromkeys(["006", "007", "009"], "PR"),
    **dict.fromkeys(["008"], "VI"),
    **dict.fromkeys([f"{n:03d}" for n in range(10, 28)] + ["055"], "MA"),
    **dict.fromkeys(["028", "029"], "RI"),
    **dict.fromkeys([f"{n:03d}" for n in range(30, 39)], "NH"),
    **dict.fromkeys([f"{n:03d}" for n in range(39, 50)], "ME"),
    **dict.fromkeys([f"{n:03d}" for n in range(50, 60) if n != 55], "VT"),
    **dict.fromkeys([f"{n:03d}" for n in range(60, 70)], "CT"),
    **dict.fromkeys([f"{n:03d}" for n in range(70, 90)], "NJ"),
}


def _zip_without_its_leading_zeros(typed: str, state: str) -> str | None:
    """A ZIP that a spreadsheet stored as a number ("2134" for 02134, Boston), given back
    its zeros when the result is a ZIP that exists, in the row's state if it gives one;
    None otherwise (a four-digit typo in Nebraska is not a Connecticut ZIP)."""
    digits = typed.strip()  # a number: no hyphen, so "68847-12" is not one of these
    if not (digits.isascii() and digits.isdigit()) or len(digits) not in (3, 4, 7, 8):
        return None
    five = zip5(digits)
    if zip_centroid(five) is None or (state and _ZERO_ZIP_STATES.get(five[:3]) != state):
        return None
    return us_zip_code(digits.zfill(9) if len(digits) > 5 else five)


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
    unchanged, or reject with the reasons; and the offices the partners go to (see
    `_plan_offices`). Queries run per batch of NPIs and names, never per row."""
    planned: list[PlanRow] = []
    first_row_of: dict[str, int] = {}
    for offset, cells in enumerate(rows):
        values = _row_values(cells, mapping)
        row = PlanRow(number=offset + 2, action="create", values=values, cells=cells)
        office_problems, row.skipped = _clean_office(values)
        row.reasons = office_problems + _problems(values)
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
        for known in Provider.objects.filter(npi__in=batch).select_related("organization"):
            existing[known.npi] = known
    offices = _plan_offices(planned, existing)

    for row in planned:
        provider = existing.get(row.values.get("npi", "")) if row.action != "reject" else None
        if provider is None:
            continue
        row.provider_id = provider.pk
        for name, new in row.values.items():
            if not new or name == "npi" or name in OFFICE_FIELDS:
                continue
            if name == "organization":
                current = provider.organization
                if row.office is None or (current and row.office.organization == current):
                    continue
                old = (
                    office_label(current.name, current.city, current.state, current.zip_code)
                    if current
                    else ""
                )
                row.changes.append((TARGETS[name], old, row.office.label))
            elif getattr(provider, name) != new:
                row.changes.append((TARGETS[name], getattr(provider, name), new))
        row.action = "update" if row.changes else "unchanged"
    return ImportPlan(rows=planned, offices=offices)


def _plan_offices(rows: list[PlanRow], providers: dict[str, Provider]) -> list[OfficePlan]:
    """Give each row with a practice name its office, one per practice: rows with the same
    name (any case) and ZIP share one. A row without a ZIP takes the ZIP the file gives
    that name elsewhere (it is refused when the file gives several). The office is an
    existing one when one fits: the partner's own office when its name and ZIP agree,
    else the oldest office of that name with that ZIP, else the oldest of that name with
    no ZIP yet (which then gets it); a row without any ZIP takes the oldest of that name.
    Rows of one office must not contradict each other: a later row that does is refused
    with the row it contradicts, rather than one of them silently winning."""
    wanted = [row for row in rows if row.action != "reject" and row.values.get("organization")]
    same_name: dict[str, list[Organization]] = {}
    names = sorted({row.values["organization"].lower() for row in wanted})
    for batch in _chunks(names):
        for organization in (
            Organization.objects.annotate(lowered=Lower("name"))
            .filter(lowered__in=batch)
            .order_by("pk")
        ):
            same_name.setdefault(organization.lowered, []).append(organization)
    zips_in_file: dict[str, set[str]] = {}
    for row in wanted:
        if row.values.get("office_zip_code"):
            zips_in_file.setdefault(row.values["organization"].lower(), set()).add(
                row.values["office_zip_code"][:5]
            )

    # A ZIP-less office is given a ZIP by one ZIP of the file only; another is a new office.
    claimed: dict[int, str] = {}

    def existing_office(name: str, zip5: str) -> Organization | None:
        candidates = same_name.get(name.lower(), [])
        if not zip5:
            return candidates[0] if candidates else None  # one at most: see the caller
        for organization in candidates:
            if organization.zip_code[:5] == zip5:
                return organization
        for organization in candidates:
            if not organization.zip_code and claimed.setdefault(organization.pk, zip5) == zip5:
                return organization
        return None

    offices: dict[tuple[Any, ...], OfficePlan] = {}
    for row in wanted:
        name = row.values["organization"]
        zip5 = row.values.get("office_zip_code", "")[:5]
        if not zip5:
            zips = sorted(zips_in_file.get(name.lower(), set()))
            if len(zips) > 1:
                row.reject(
                    f"“{name[:60]}” has several ZIP codes in this file ({', '.join(zips[:5])}): "
                    "add this row's ZIP code so we know which office it belongs to."
                )
                continue
            zip5 = zips[0] if zips else ""
        provider = providers.get(row.values["npi"])
        current = provider.organization if provider else None
        if (
            current is not None
            and current.name.lower() == name.lower()
            and (not zip5 or current.zip_code[:5] == zip5)
        ):
            found: Organization | None = current
        elif not zip5 and len(same_name.get(name.lower(), [])) > 1:
            # Which of our offices of that name? Guessing would write this row's address
            # and fax onto another location's record.
            known = sorted({o.zip_code[:5] or "no ZIP" for o in same_name[name.lower()]})
            row.reject(
                f"We have {len(same_name[name.lower()])} offices called “{name[:60]}” "
                f"({', '.join(known[:5])}): add this row's ZIP code so we know which one "
                "it belongs to."
            )
            continue
        else:
            found = existing_office(name, zip5)
        key = ("office", found.pk) if found else ("new", name.lower(), zip5)
        office = offices.setdefault(
            key, OfficePlan(name=found.name if found else name, organization=found)
        )
        values = {
            OFFICE_FIELDS[target]: value
            for target, value in row.values.items()
            if target in OFFICE_FIELDS and value
        }
        clashes = [
            f"{OFFICE_LABELS[field_name]} “{new[:60]}” differs from “{office.values[field_name][:60]}” "
            f"on row {office.sources[field_name]} for the same office."
            for field_name, new in values.items()
            if field_name in office.values
            and not _agree(field_name, office.values[field_name], new)
        ]
        if clashes:
            row.reject(*clashes)
            continue
        for field_name, new in values.items():
            # Of two agreeing ZIPs the longer (ZIP+4) is kept; other values as first given.
            if field_name not in office.values or (
                field_name == "zip_code" and len(new) > len(office.values[field_name])
            ):
                office.values[field_name] = new
                office.sources[field_name] = row.number
        row.office = office

    for office in offices.values():
        if office.organization is not None:
            office.changes = [
                (OFFICE_LABELS[name], old, new)
                for name, old, new in office_changes(office.organization, office.values)
            ]
    return list(offices.values())


def _agree(field_name: str, first: str, second: str) -> bool:
    if field_name == "zip_code":
        return first.startswith(second) or second.startswith(first)
    return first.casefold() == second.casefold()


def office_changes(
    organization: Organization, values: dict[str, str]
) -> list[tuple[str, str, str]]:
    """(field, old, new) for each value the import writes on an existing office: an empty
    cell never erases, a different value replaces (as for partners), and a ZIP already
    given more precisely (ZIP+4) stays."""
    changes = []
    for name, new in values.items():
        old = getattr(organization, name)
        if not new or old == new or (name == "zip_code" and old.startswith(new)):
            continue
        changes.append((name, old, new))
    return changes


def safe_cell(value: str) -> str:
    """Spreadsheet apps run cells that start like a formula; a leading apostrophe keeps a
    partner's name or note from becoming one (CSV injection)."""
    return f"'{value}" if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def export_rows(providers: Iterable[Provider]) -> Iterator[list[str]]:
    yield [header for header, _ in EXPORT_COLUMNS]
    for provider in providers:
        office = provider.organization
        values = {
            "organization_name": office.name if office else "",
            "address_line1": office.address_line1 if office else "",
            "address_line2": office.address_line2 if office else "",
            "city": office.city if office else "",
            "state": office.state if office else "",
            "zip_code": office.zip_code if office else "",
            "office_phone": office.phone if office else "",
            "fax": office.fax if office else "",
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
