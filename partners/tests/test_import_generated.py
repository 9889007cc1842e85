"""Generated spreadsheets (hypothesis), uploaded as CSV: whatever the cells hold, the
preview's verdict on each row is what applying the import does. A row the preview accepts
is written (the model's own validation never refuses it half-way, which would fail the
whole import), a rejected row comes with its reasons and writes nothing, and importing the
same file again changes nothing."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from partners.factories import OrganizationFactory, ProviderFactory
from partners.models import Organization, PartnerImport, Provider
from partners.services.imports import partner_import_apply
from partners.spreadsheets.columns import TARGETS
from partners.spreadsheets.planning import plan_import
from partners.spreadsheets.reading import UnreadableFile, read_table

pytestmark = pytest.mark.django_db

# Every target but the full name (first and last come in columns of their own).
COLUMNS = [target for target in TARGETS if target != "full_name"]
MAPPING = {str(index): target for index, target in enumerate(COLUMNS)}
VALID_NPIS = ["1679576722", "1234567893", "1003000126", "1245319599", "1093718926"]
ODD = ["", " ", "\x00", "<script>x</script>", "'; --", "é" * 5, "x" * 400, "🩺", "\u202e"]
# Values each column takes in a clean sheet, and near misses a hand-made sheet has.
GOOD: dict[str, list[str]] = {
    "npi": VALID_NPIS,
    "first_name": ["Ruth", "Zoë", "Mary-Ann"],
    "last_name": ["Olsen", "O'Brien", "Nguyen"],
    "credential": ["MD", "DO", ""],
    "taxonomy_code": ["207Q00000X", "207X00000X", ""],
    "specialty": ["Family Medicine", "Orthopaedic Surgery", ""],
    "organization": ["Maple Family Practice", "maple family practice", "Kearney Clinic"],
    "office_state": ["NE", "IA", ""],
    "office_zip_code": ["68102", "68102-1234", ""],
    "phone": ["(402) 555-0100", "402.555.0100 x12", ""],
    "office_phone": ["402-555-0101", ""],
    "office_fax": ["402-555-0102", ""],
    "email": ["a@example.org", ""],
    "letters_opt_out": ["yes", "No", "", "1.0", "0.0"],
    "marketing_opt_out": ["", "no", "Y"],
}
NEAR_MISSES: dict[str, list[str]] = {
    "npi": [
        "1234567890",
        "123456789",
        "12345678901",
        "\uff11\uff12\uff13\uff14\uff15\uff16\uff17\uff18\uff19\uff13",
    ],
    "office_state": ["ne", " IA ", "XX", "Nebraska", "N"],
    "office_zip_code": ["6810", "681021234", "02134", "2134", "ABCDE"],
    "phone": ["555-0100", "+44 20 7946 0958", "1" * 25],
    "office_phone": ["0", "+1 (402) 555 0101 ext 9"],
    "office_fax": ["fax", "4025550102"],
    "email": ["not-an-email", "a@b", "A@EXAMPLE.ORG "],
    "taxonomy_code": ["207q00000x", "207Q0000", "ZZZZZZZZZZ"],
    "letters_opt_out": ["Y", " TRUE ", "opted-out", "maybe", "2"],
    "marketing_opt_out": ["x", "perhaps"],
}


def cell(column: str) -> st.SearchStrategy[str]:
    good = st.sampled_from(GOOD.get(column, ["Suite 2", "Omaha", "12 Elm St", ""]))
    bad = (
        st.sampled_from(NEAR_MISSES.get(column, ODD))
        | st.sampled_from(ODD)
        | st.text(st.characters(exclude_categories=["Cs"]), max_size=30)
    )
    # Mostly clean cells, so that many rows are whole and the good paths run too.
    return st.integers(min_value=0, max_value=9).flatmap(lambda n: good if n < 8 else bad)


ROWS = st.lists(st.tuples(*(cell(column) for column in COLUMNS)).map(list), max_size=6)


def apply(rows: list[list[str]]) -> dict[str, Any]:
    partner_import = PartnerImport.objects.create(
        file_name="generated.csv",
        headers=COLUMNS,
        rows=rows,
        mapping=MAPPING,
        status=PartnerImport.Status.QUEUED,
    )
    done = partner_import_apply(import_id=partner_import.pk)
    assert done is not None
    assert (done.status, done.error) == (PartnerImport.Status.APPLIED, ""), rows
    result: dict[str, Any] = done.result
    return result


def test_the_preview_and_the_import_agree_on_every_generated_sheet() -> None:
    ProviderFactory.create(npi=VALID_NPIS[0], first_name="David", last_name="Wiebe")
    OrganizationFactory.create(name="Maple Family Practice", zip_code="68102")
    actions: set[str] = set()

    @settings(
        max_examples=120,
        deadline=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(cells=ROWS)
    def attempt(cells: list[list[str]]) -> None:
        # Through a real CSV file, as an upload comes.
        text = io.StringIO()
        csv.writer(text).writerows([COLUMNS, *cells])
        try:
            table = read_table(io.BytesIO(text.getvalue().encode()), "generated.csv")
        except UnreadableFile as error:
            assert str(error)
            return
        rows = table.rows
        plan = plan_import(rows, MAPPING)
        before = Provider.objects.count(), Organization.objects.count()
        for row in plan.rows:
            actions.add(row.action)
            assert (row.action == "reject") == bool(row.reasons), row
        counts = apply(rows)
        assert Provider.objects.count() == before[0] + counts["create"]
        assert Organization.objects.count() == before[1] + counts["organizations"]
        assert counts["create"] == len(plan.of("create"))
        # The same file again changes nothing.
        again = apply(rows)
        assert again["create"] == again["update"] == again["organizations"] == 0, rows
        assert again["offices_updated"] == 0, rows
        actions.update(row.action for row in plan_import(rows, MAPPING).rows)

    attempt()
    # The sheets were varied enough to reach every verdict.
    assert actions == {"create", "update", "unchanged", "reject"}
