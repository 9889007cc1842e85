"""National Provider Identifier: ten digits, the last a Luhn check digit computed over the
card-issuer prefix "80840" followed by the first nine digits (CMS, NPI check digit spec)."""

from django.core.exceptions import ValidationError

NPI_PREFIX = "80840"


def npi_check_digit(first_nine: str) -> int:
    total = 0
    # Double every second digit counting from the right of the payload, starting with
    # the rightmost one (the check digit's neighbour).
    for position, char in enumerate(reversed(NPI_PREFIX + first_nine)):
        digit = int(char)
        if position % 2 == 0:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return (10 - total % 10) % 10


def is_valid_npi(value: str) -> bool:
    return (
        len(value) == 10
        and value.isascii()
        and value.isdigit()
        and npi_check_digit(value[:9]) == int(value[9])
    )


def validate_npi(value: str) -> None:
    if len(value) != 10 or not value.isascii() or not value.isdigit():
        raise ValidationError("An NPI is exactly 10 digits.", code="npi_format")
    if npi_check_digit(value[:9]) != int(value[9]):
        raise ValidationError(
            "This NPI's check digit is wrong; please check it for a typo.", code="npi_checksum"
        )
