import pytest
from django.core.exceptions import ValidationError

from core.phones import clean_us_phone, dial_link, format_phone, us_phone_number


@pytest.mark.parametrize(
    "typed",
    [
        "4025550100",
        "402-555-0100",
        "402.555.0100",
        "(402) 555-0100",
        "+1 402 555 0100",
        "1-402-555-0100",
    ],
)
def test_a_us_number_typed_any_common_way_is_written_as_staff_dial_it(typed):
    assert us_phone_number(typed) == "(402) 555-0100"


def test_an_extension_is_kept_after_the_number():
    assert us_phone_number("402-555-0100 ext. 12") == "(402) 555-0100 x12"
    assert us_phone_number("(402) 555-0100 x7") == "(402) 555-0100 x7"


@pytest.mark.parametrize(
    "typed",
    [
        "",
        "555-0100",
        "402-555-01000",
        "102-555-0100",
        "402-155-0100",
        "+44 20 7946 0958",
        "call the front desk",
        "".join(chr(0xFF10 + int(digit)) for digit in "4025550100"),  # full-width
        "402-555-0100 ext. twelve",
    ],
)
def test_what_is_not_a_us_number_is_refused(typed):
    assert us_phone_number(typed) is None


def test_format_phone_leaves_what_is_not_ten_digits_as_it_is():
    assert format_phone("4025550100") == "(402) 555-0100"
    assert format_phone("12345") == "12345"


def test_a_form_field_keeps_empty_as_empty_writes_a_number_as_staff_dial_it_and_refuses_the_rest():
    assert clean_us_phone("  ") == ""
    assert clean_us_phone(" 402.555.0100 ") == "(402) 555-0100"
    with pytest.raises(ValidationError, match="Not a US phone number"):
        clean_us_phone("abc")


@pytest.mark.parametrize(
    ("stored", "link"),
    [
        ("(402) 555-0100", "tel:+14025550100"),
        ("402.555.0100 ext. 12", "tel:+14025550100;ext=12"),
        ("abc", ""),
        ("555-0142", ""),
        ("", ""),
    ],
)
def test_only_a_number_that_can_be_dialled_gets_a_call_link(stored, link):
    assert dial_link(stored) == link
