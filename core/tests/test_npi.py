import csv
from pathlib import Path

import pytest
from django.conf import settings
from django.core.exceptions import ValidationError

from core.npi import is_valid_npi, npi_check_digit, validate_npi

SAMPLE = (
    Path(settings.BASE_DIR).parent
    / "shared"
    / "data"
    / "nppes"
    / ("npidata_pfile_first1000_restored.csv")
)


def test_the_cms_example_npi_is_valid():
    # The example in CMS's check-digit specification.
    assert npi_check_digit("123456789") == 3
    assert is_valid_npi("1234567893")


def test_every_npi_in_the_real_nppes_sample_passes_the_check():
    with SAMPLE.open(newline="") as handle:
        npis = [row["NPI"] for row in csv.DictReader(handle)]
    assert len(npis) == 1000
    assert all(is_valid_npi(npi) for npi in npis)


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ("1234567890", "npi_checksum"),
        ("123456789", "npi_format"),
        ("12345678931", "npi_format"),
        ("12345678a3", "npi_format"),
        # Full-width digits are not ASCII digits.
        ("\uff11\uff12\uff13\uff14\uff15\uff16\uff17\uff18\uff19\uff13", "npi_format"),
    ],
)
def test_a_bad_npi_is_refused_with_a_reason(value, code):
    with pytest.raises(ValidationError) as error:
        validate_npi(value)
    assert error.value.code == code
