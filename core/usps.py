"""US postal conventions: state and territory codes and ZIP codes as USPS writes them."""

from __future__ import annotations

import re

# The states, DC and the inhabited territories, by their USPS code.
US_STATES: dict[str, str] = {
    "AL": "Alabama",
    "AK": "Alaska",
    "AZ": "Arizona",
    "AR": "Arkansas",
    "CA": "California",
    "CO": "Colorado",
    "CT": "Connecticut",
    "DE": "Delaware",
    "DC": "District of Columbia",
    "FL": "Florida",
    "GA": "Georgia",
    "HI": "Hawaii",
    "ID": "Idaho",
    "IL": "Illinois",
    "IN": "Indiana",
    "IA": "Iowa",
    "KS": "Kansas",
    "KY": "Kentucky",
    "LA": "Louisiana",
    "ME": "Maine",
    "MD": "Maryland",
    "MA": "Massachusetts",
    "MI": "Michigan",
    "MN": "Minnesota",
    "MS": "Mississippi",
    "MO": "Missouri",
    "MT": "Montana",
    "NE": "Nebraska",
    "NV": "Nevada",
    "NH": "New Hampshire",
    "NJ": "New Jersey",
    "NM": "New Mexico",
    "NY": "New York",
    "NC": "North Carolina",
    "ND": "North Dakota",
    "OH": "Ohio",
    "OK": "Oklahoma",
    "OR": "Oregon",
    "PA": "Pennsylvania",
    "RI": "Rhode Island",
    "SC": "South Carolina",
    "SD": "South Dakota",
    "TN": "Tennessee",
    "TX": "Texas",
    "UT": "Utah",
    "VT": "Vermont",
    "VA": "Virginia",
    "WA": "Washington",
    "WV": "West Virginia",
    "WI": "Wisconsin",
    "WY": "Wyoming",
    "AS": "American Samoa",
    "GU": "Guam",
    "MP": "Northern Mariana Islands",
    "PR": "Puerto Rico",
    "VI": "U.S. Virgin Islands",
}
_CODE_OF_NAME = {name.lower(): code for code, name in US_STATES.items()}
_ZIP = re.compile(r"(\d{5})(?:[\s-]?(\d{4}))?")


def us_state_code(text: str) -> str | None:
    """The two-letter code of a state or territory written as its code or its name
    ("ne", "Nebraska"); None when it is neither."""
    text = " ".join(text.split())
    if text.upper() in US_STATES:
        return text.upper()
    return _CODE_OF_NAME.get(text.lower())


def us_zip_code(text: str) -> str | None:
    """A ZIP code of 5 digits or ZIP+4 ("68847", "68847-1234", "688471234") as USPS
    writes it; None otherwise."""
    match = _ZIP.fullmatch(text.strip())
    if match is None or not match.group(0).isascii():
        return None
    five, four = match.groups()
    return f"{five}-{four}" if four else five
