"""Partner spreadsheets, read-only: read, map, plan an import, export (services applies plans)."""

from partners.spreadsheets.columns import OFFICE_FIELDS, OFFICE_LABELS, TARGETS, guess_mapping
from partners.spreadsheets.export import EXPORT_COLUMNS, export_rows
from partners.spreadsheets.planning import (
    ImportPlan,
    OfficePlan,
    PlanRow,
    office_changes,
    office_label,
    plan_import,
)
from partners.spreadsheets.reading import (
    MAX_ROWS,
    MAX_UPLOAD_BYTES,
    Table,
    UnreadableFile,
    read_table,
)

__all__ = [
    "EXPORT_COLUMNS",
    "MAX_ROWS",
    "MAX_UPLOAD_BYTES",
    "OFFICE_FIELDS",
    "OFFICE_LABELS",
    "TARGETS",
    "ImportPlan",
    "OfficePlan",
    "PlanRow",
    "Table",
    "UnreadableFile",
    "export_rows",
    "guess_mapping",
    "office_changes",
    "office_label",
    "plan_import",
    "read_table",
]
