import pytest

from core.ids import MAX_ID, parse_id


@pytest.mark.parametrize(
    ("text", "expected"),
    [("42", 42), (" 7 ", 7), (str(MAX_ID), MAX_ID), ("007", 7)],
)
def test_it_reads_ids_typed_in_ascii_digits(text, expected):
    assert parse_id(text) == expected


@pytest.mark.parametrize(
    "text",
    ["", "²", "٣", "-1", "1.0", "1e3", "0x10", str(MAX_ID + 1), "9" * 5000, "4 2", None],
)
def test_anything_else_is_no_id_rather_than_an_error(text):
    assert parse_id(text) is None
