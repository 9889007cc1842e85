from __future__ import annotations

from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from registry.forms import SpecialtyField, specialty_choices
from registry.models import Taxonomy
from registry.tests.conftest import NUCC_CSV

pytestmark = pytest.mark.django_db


def run(path: Path) -> str:
    out = StringIO()
    call_command("import_taxonomy", str(path), stdout=out)
    return out.getvalue().strip()


def test_a_fresh_install_already_has_the_shipped_code_set() -> None:
    assert Taxonomy.objects.count() == 879
    family = Taxonomy.objects.get(code="207Q00000X")
    assert family.grouping == "Allopathic & Osteopathic Physicians"
    assert family.classification == "Family Medicine"
    assert family.specialization == ""
    assert family.section == "Individual"


def test_importing_the_same_version_again_is_a_no_op() -> None:
    assert run(NUCC_CSV) == "imported 0, updated 0, unchanged 879"


def test_it_loads_an_empty_table_and_reads_a_file_with_a_byte_order_mark(tmp_path: Path) -> None:
    Taxonomy.objects.all().delete()
    with_bom = tmp_path / "nucc_taxonomy_bom.csv"
    with_bom.write_bytes(b"\xef\xbb\xbf" + NUCC_CSV.read_bytes())

    assert run(with_bom) == "imported 879, updated 0, unchanged 0"
    assert Taxonomy.objects.get(code="207Q00000X").classification == "Family Medicine"
    assert run(with_bom) == "imported 0, updated 0, unchanged 879"


def test_a_changed_definition_is_updated(tmp_path: Path) -> None:
    text = NUCC_CSV.read_text(encoding="utf-8")
    newer = tmp_path / "nucc_taxonomy_251.csv"
    newer.write_text(
        text.replace("Family Medicine,", "Family Medicine (renamed),", 1), encoding="utf-8"
    )

    summary = run(newer)

    assert summary == "imported 0, updated 1, unchanged 878"


def test_a_file_that_is_not_the_taxonomy_is_refused(tmp_path: Path) -> None:
    other = tmp_path / "other.csv"
    other.write_text("Name,Phone\nx,y\n")

    with pytest.raises(CommandError, match="not a NUCC taxonomy CSV"):
        run(other)
    assert Taxonomy.objects.count() == 879


def test_a_selector_matches_a_grouping_a_classification_or_one_code() -> None:
    grouping = Taxonomy.objects.matching("grouping:Allopathic & Osteopathic Physicians")
    classification = Taxonomy.objects.matching(
        "classification:Allopathic & Osteopathic Physicians/Family Medicine"
    )
    exact = Taxonomy.objects.matching("207QS0010X")

    assert grouping.count() > 100
    assert set(classification.values_list("code", flat=True)) >= {"207Q00000X", "207QS0010X"}
    assert all(code.startswith("207Q") for code in classification.values_list("code", flat=True))
    assert list(exact.values_list("code", flat=True)) == ["207QS0010X"]


def test_the_specialty_picker_groups_codes_under_their_grouping() -> None:
    choices = dict(specialty_choices())

    physicians = dict(choices["Allopathic & Osteopathic Physicians"])
    assert physicians["207Q00000X"] == "Family Medicine Physician"
    assert "207QS0010X" in physicians
    field = SpecialtyField()
    assert field.clean("207Q00000X") == "207Q00000X"
    with pytest.raises(Exception, match="valid choice"):
        field.clean("NOTACODE00")


@pytest.mark.parametrize(
    ("cell", "value"),
    [
        ("207Q00000X", "207Q00000XX"),  # a code longer than NUCC's ten characters
        (",Family Medicine,,", ",Family\x00Medicine,,"),  # a NUL byte from a damaged copy
        (",Family Medicine,,", ",Family Medicine" + "e" * 300 + ",,"),  # far longer than any
    ],
)
def test_a_file_with_an_unreadable_row_is_refused_naming_its_line(
    tmp_path: Path, cell: str, value: str
) -> None:
    text = NUCC_CSV.read_text(encoding="utf-8")
    line = next(n for n, row in enumerate(text.splitlines(), start=1) if "207Q00000X" in row)
    damaged = tmp_path / "nucc_taxonomy_251.csv"
    damaged.write_text(text.replace(cell, value, 1), encoding="utf-8")

    with pytest.raises(CommandError, match=f"line {line}"):
        run(damaged)
    assert Taxonomy.objects.get(code="207Q00000X").classification == "Family Medicine"
