import pytest

from core.usps import us_state_code, us_zip_code


@pytest.mark.parametrize(
    ("typed", "code"),
    [("NE", "NE"), ("ne", "NE"), (" Nebraska ", "NE"), ("puerto rico", "PR"), ("DC", "DC")],
)
def test_a_state_or_territory_is_read_from_its_code_or_its_name(typed, code):
    assert us_state_code(typed) == code


@pytest.mark.parametrize("typed", ["", "XX", "Nebr", "N.E.", "ON", "<script>"])
def test_what_is_not_a_us_state_is_refused(typed):
    assert us_state_code(typed) is None


@pytest.mark.parametrize(
    ("typed", "written"),
    [("68847", "68847"), ("68847-1234", "68847-1234"), ("688471234", "68847-1234")],
)
def test_a_zip_code_is_five_digits_or_zip_plus_four(typed, written):
    assert us_zip_code(typed) == written


@pytest.mark.parametrize("typed", ["", "6884", "2134", "68847-12", "ABCDE", "68847 12345"])
def test_what_is_not_a_zip_code_is_refused(typed):
    assert us_zip_code(typed) is None
