"""Load the NUCC taxonomy code set from its official CSV."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.db import transaction

SHIPPED_FILE = Path(__file__).resolve().parent.parent / "data" / "nucc_taxonomy_250.csv"

COLUMNS = {
    "Code": "code",
    "Grouping": "grouping",
    "Classification": "classification",
    "Specialization": "specialization",
    "Definition": "definition",
    "Notes": "notes",
    "Display Name": "display_name",
    "Section": "section",
}
# Older releases (before v16) have no Display Name or Section.
REQUIRED = ("Code", "Grouping", "Classification")


class TaxonomyFileError(ValueError):
    pass


@dataclass
class TaxonomyImportResult:
    imported: int = 0
    updated: int = 0
    unchanged: int = 0

    def __str__(self) -> str:
        return f"imported {self.imported}, updated {self.updated}, unchanged {self.unchanged}"


def read_taxonomy_csv(path: Path, model: Any) -> list[dict[str, str]]:
    # utf-8-sig: NUCC's downloads have carried a byte-order mark in some releases.
    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle)
        header = [name.strip() for name in reader.fieldnames or []]
        missing = [name for name in REQUIRED if name not in header]
        if missing:
            raise TaxonomyFileError(
                f"{path.name} is not a NUCC taxonomy CSV: no {', '.join(missing)} column."
            )
        reader.fieldnames = header
        records = []
        for row in reader:
            record = {field: (row.get(column) or "").strip() for column, field in COLUMNS.items()}
            if record["code"]:
                problem = _problem(record, model)
                if problem:
                    # Refused whole, before any write: the code set is loaded in one go.
                    raise TaxonomyFileError(f"{path.name}, line {reader.line_num}: {problem}")
                records.append(record)
    return records


def _problem(record: dict[str, str], model: Any) -> str | None:
    """What keeps a row out of the Taxonomy table, whose columns the database would
    otherwise refuse (or, updating a row, cut short without a word)."""
    for field, value in record.items():
        name = field.replace("_", " ")
        if "\x00" in value:
            return f"the {name} has a NUL byte (a damaged copy of the file?)."
        limit = model._meta.get_field(field).max_length
        if limit is not None and len(value) > limit:
            return f"the {name} “{value[:20]}…” is longer than {limit} characters."
    return None


@transaction.atomic
def taxonomy_import(*, path: Path, model: Any = None) -> TaxonomyImportResult:
    """Insert new codes and update changed ones; never deletes (a retired code may still be
    on a partner). `model` lets a data migration pass its historical model."""
    if model is None:
        from registry.models import Taxonomy as model

    records = read_taxonomy_csv(path, model)
    existing = {row.code: row for row in model.objects.all()}
    fields = [f for f in COLUMNS.values() if f != "code"]
    result = TaxonomyImportResult()
    new, changed = [], []
    for record in records:
        current = existing.get(record["code"])
        if current is None:
            new.append(model(**record))
            existing[record["code"]] = new[-1]
            result.imported += 1
        elif any(getattr(current, f) != record[f] for f in fields):
            for f in fields:
                setattr(current, f, record[f])
            changed.append(current)
            result.updated += 1
        else:
            result.unchanged += 1
    model.objects.bulk_create(new, batch_size=500)
    model.objects.bulk_update(changed, fields, batch_size=500)
    return result
