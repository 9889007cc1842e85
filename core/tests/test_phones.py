import pytest

from core.phones import format_phone, us_phone_number


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
