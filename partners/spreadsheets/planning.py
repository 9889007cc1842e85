"""Planning an import without writing: each row's fate and the offices its partners go to."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from django.db.models.functions import Lower

from partners.models import Organization, Provider
from partners.spreadsheets.columns import OFFICE_FIELDS, OFFICE_LABELS, OPT_OUT_TARGETS, TARGETS
from partners.spreadsheets.rows import _clean_office, _clean_opt_out, _problems, _row_values

LOOKUP_BATCH = 500


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


def _chunks(items: list[str]) -> Iterator[list[str]]:
    for start in range(0, len(items), LOOKUP_BATCH):
        yield items[start : start + LOOKUP_BATCH]


def plan_import(
    rows: list[list[str]],
    mapping: dict[str, str],
    *,
    numbers: list[int] | None = None,
    progress: Callable[[int], None] | None = None,
    progress_every: int = 1000,
) -> ImportPlan:
    """What importing `rows` with `mapping` would do, row by row, without writing: create
    (new NPI), update (known NPI; only non-empty cells that differ change anything),
    unchanged, or reject with the reasons; and the offices the partners go to (see
    `_plan_offices`). Rows are numbered by `numbers` (their rows in the sheet), else as
    if the header were row 1 with no blank rows. Queries run per batch of NPIs and names,
    never per row."""
    planned: list[PlanRow] = []
    first_row_of: dict[str, int] = {}
    for offset, cells in enumerate(rows):
        values = _row_values(cells, mapping)
        number = numbers[offset] if numbers and offset < len(numbers) else offset + 2
        row = PlanRow(number=number, action="create", values=values, cells=cells)
        office_problems, row.skipped = _clean_office(values)
        row.reasons = office_problems + _clean_opt_out(values) + _problems(values)
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
    _leave_out_unknown_taxonomy(planned, existing)
    _refuse_organization_npis(planned, existing)
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
            elif name in OPT_OUT_TARGETS:
                # An import opts a partner out, never back in: that is theirs to ask and
                # is done on their page, where it is seen.
                if new == "yes" and not getattr(provider, name):
                    row.changes.append((TARGETS[name], "no", "yes"))
                elif new == "no" and getattr(provider, name):
                    row.skipped.append(
                        f"{TARGETS[name]} “no” left out: they opted out here, and only "
                        "their own page opts them back in."
                    )
            elif _lines(getattr(provider, name)) != _lines(new):
                row.changes.append((TARGETS[name], getattr(provider, name), new))
        row.action = "update" if row.changes else "unchanged"
    return ImportPlan(rows=planned, offices=offices)


def _refuse_organization_npis(rows: list[PlanRow], existing: dict[str, Provider]) -> None:
    """Refuse a new partner whose NPI the NPPES registry gives an organization, as the
    partner form does (a partner we already have keeps theirs, as on the form)."""
    from registry.models import RegistryProvider

    new = {
        row.values["npi"]: row
        for row in rows
        if row.action != "reject" and row.values["npi"] not in existing
    }
    for batch in _chunks(list(new)):
        for npi, name in RegistryProvider.objects.filter(
            npi__in=batch, entity_type=RegistryProvider.EntityType.ORGANIZATION
        ).values_list("npi", "organization_name"):
            new[npi].reject(
                f"NPI {npi} is an organization's in the NPPES registry ({name[:60]}): a "
                "partner here is a clinician, with their own NPI."
            )


def _lines(text: str) -> str:
    # Notes typed in a browser end their lines in \r\n, a workbook stores \n: the same text.
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _leave_out_unknown_taxonomy(rows: list[PlanRow], existing: dict[str, Provider]) -> None:
    """A taxonomy code as the partner form takes it (upper case, the NUCC shape, on the
    NUCC list once it is loaded: one query for the whole sheet), else left out with the
    reason; the partner still imports. As on the form, a partner's stored code that comes
    back as it is is not checked again (one NUCC has retired since)."""
    from partners.forms import TAXONOMY_CODE, TAXONOMY_SHAPE
    from registry.models import Taxonomy

    typed = {}
    for row in rows:
        code = row.values.get("taxonomy_code", "")
        if row.action == "reject" or not code:
            continue
        row.values["taxonomy_code"] = code.upper()
        known = existing.get(row.values.get("npi", ""))
        if known is not None and known.taxonomy_code == code.upper():
            continue
        if TAXONOMY_CODE.fullmatch(code.upper()):
            typed[row.number] = code
        else:
            del row.values["taxonomy_code"]
            row.skipped.append(
                f"{TARGETS['taxonomy_code']} “{code[:20]}” left out: "
                f"{TAXONOMY_SHAPE[0].lower()}{TAXONOMY_SHAPE[1:]}"
            )
    codes = {row.values["taxonomy_code"] for row in rows if row.number in typed}
    if not codes or not Taxonomy.objects.exists():
        return
    listed = set(Taxonomy.objects.filter(code__in=codes).values_list("code", flat=True))
    for row in rows:
        if row.number in typed and row.values["taxonomy_code"] not in listed:
            del row.values["taxonomy_code"]
            row.skipped.append(
                f"{TARGETS['taxonomy_code']} “{typed[row.number][:20]}” left out: it is not "
                "in the NUCC taxonomy list."
            )


def _plan_offices(rows: list[PlanRow], providers: dict[str, Provider]) -> list[OfficePlan]:
    """Give each row with a practice name its office, one per practice: rows with the same
    name (any case) and ZIP share one. A row without a ZIP takes the ZIP the file gives
    that name elsewhere (it is refused when the file gives several), unless its partner
    is already at an office of that name, where it stays. The office is an
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
        provider = providers.get(row.values["npi"])
        current = provider.organization if provider else None
        in_own_office = current is not None and current.name.lower() == name.lower()
        # A row without a ZIP whose partner is at an office of that name stays there: the
        # ZIP another row gives that name may be another location's (the export's own rows).
        if not zip5 and not in_own_office:
            zips = sorted(zips_in_file.get(name.lower(), set()))
            if len(zips) > 1:
                row.reject(
                    f"“{name[:60]}” has several ZIP codes in this file ({', '.join(zips[:5])}): "
                    "add this row's ZIP code so we know which office it belongs to."
                )
                continue
            zip5 = zips[0] if zips else ""
        if current is not None and in_own_office and (not zip5 or current.zip_code[:5] == zip5):
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
