"""One spreadsheet row as partner values: names split, office details cleaned, problems found."""

from __future__ import annotations

import re
from collections.abc import Callable

from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from core.meta import own_field
from core.npi import validate_npi
from core.phones import us_phone_number
from core.usps import us_state_code, us_zip_code
from partners.models import Organization, Provider
from partners.spreadsheets.columns import (
    OFFICE_FIELDS,
    OPT_OUT_NO,
    OPT_OUT_TARGETS,
    OPT_OUT_YES,
    TARGETS,
)
from registry.geo import zip5, zip_centroid

# After a comma, "MD" or "PhD, FACC" is a credential; "Jane" (as in "Doe, Jane") is not.
MIXED_CASE_CREDENTIALS = {"PHD", "PSYD", "PHARMD", "EDD", "DRPH", "MSC", "BSC"}


def _is_credential(text: str) -> bool:
    parts = [part.replace(".", "").strip() for part in re.split(r"[,/ ]+", text) if part]
    return bool(parts) and all(
        (part.isupper() and len(part) <= 6) or part.upper() in MIXED_CASE_CREDENTIALS
        for part in parts
    )


def _split_name(full: str) -> tuple[str, str, str]:
    """'Jane Q. Doe, MD' -> (Jane Q., Doe, MD); 'Doe, Jane' -> (Jane, Doe, '')."""
    name, _, after = full.partition(",")
    after = after.strip()
    if after and not _is_credential(after):
        return after, name.strip(), ""
    words = name.split()
    if len(words) < 2:
        return "", name.strip(), after
    return " ".join(words[:-1]), words[-1], after


def _row_values(cells: list[str], mapping: dict[str, str]) -> dict[str, str]:
    values = {
        target: cells[int(index)].strip()
        for index, target in mapping.items()
        if int(index) < len(cells) and target != "letters_opt_out"
    }
    opt_outs = [
        cells[int(index)].strip()
        for index, target in mapping.items()
        if int(index) < len(cells) and target == "letters_opt_out"
    ]
    if opt_outs:
        values["letters_opt_out"] = _strongest_opt_out(opt_outs)
    full = values.pop("full_name", "")
    if full:
        first, last, credential = _split_name(full)
        if not values.get("first_name"):
            values["first_name"] = first
        if not values.get("last_name"):
            values["last_name"] = last
        if credential and not values.get("credential"):
            values["credential"] = credential
    if "npi" in values:
        values["npi"] = re.sub(r"[\s\-]", "", values["npi"])
        if re.fullmatch(r"[0-9]{10}\.0+", values["npi"]):
            # A number column written out by pandas or a database tool: 1679576722.0.
            values["npi"] = values["npi"][:10]
    return values


def _max_length(target: str) -> int | None:
    if target == "organization":
        return own_field(Organization, "name").max_length
    if target in OFFICE_FIELDS:
        return own_field(Organization, OFFICE_FIELDS[target]).max_length
    return getattr(Provider._meta.get_field(target), "max_length", None)


def _problems(values: dict[str, str]) -> list[str]:
    problems = []
    npi = values.get("npi", "")
    if not npi:
        problems.append("No NPI.")
    else:
        try:
            validate_npi(npi)
        except ValidationError as error:
            problems.append(f"NPI {npi[:20]}: {error.messages[0]}")
    missing = [
        label
        for name, label in (("first_name", "first name"), ("last_name", "last name"))
        if not values.get(name)
    ]
    if len(missing) == 2 and values.get("organization"):
        # An NPPES organization row (Entity Type 2) or an office listed on its own.
        problems.append(
            "No first or last name: a row naming only an organization is an office, not a "
            "clinician. Offices come in with the clinicians who work there."
        )
    else:
        problems += [f"No {label}." for label in missing]
    if values.get("email"):
        try:
            validate_email(values["email"])
        except ValidationError:
            problems.append(f"“{values['email'][:60]}” is not an email address.")
    for name, value in values.items():
        limit = _max_length(name)
        if limit and len(value) > limit:
            problems.append(f"{TARGETS[name]} is longer than {limit} characters.")
    return problems


def _said(typed: str) -> str:
    # "1.0" and "0.0": a 1 or 0 that went through pandas or a spreadsheet's number format.
    number = typed.strip()
    if number in ("1.0", "0.0"):
        number = number[0]
    return re.sub(r"[\s\-_.]", "", number.lower())


def _strongest_opt_out(cells: list[str]) -> str:
    """Of a row's opt-out cells (an email and a fax opt-out, say), the one that decides:
    a yes in any opts them out, else one that is neither yes nor no refuses the row,
    else a no, else nothing."""
    said = [(cell, _said(cell)) for cell in cells if _said(cell)]
    for cell, word in said:
        if word in OPT_OUT_YES:
            return cell
    for cell, word in said:
        if word not in OPT_OUT_NO:
            return cell
    return said[0][0] if said else ""


def _clean_opt_out(values: dict[str, str]) -> list[str]:
    """The opt-out cells as "yes" or "no", in place (an empty one is dropped: it says
    nothing). One that is neither refuses the row: importing a partner who asked for no
    letters (or no newsletters) as if they had not is the mistake these columns are there
    to prevent."""
    problems = []
    for target in OPT_OUT_TARGETS:
        typed = values.pop(target, "")
        said = _said(typed)
        if said in OPT_OUT_YES or said in OPT_OUT_NO:
            values[target] = "yes" if said in OPT_OUT_YES else "no"
        elif said:
            problems.append(f"{TARGETS[target]} “{typed[:40]}” is neither yes nor no.")
    return problems


def _clean_office(values: dict[str, str]) -> tuple[list[str], list[str]]:
    """Write the office's state, ZIP, phone and fax the way the app does, in place. Returns
    the problems that refuse the row (an unreadable ZIP: it decides which office the row
    goes to) and the values left out because they cannot be read (a state, phone or fax
    the office form or another system stored freely: the partner's own data still
    imports). The partner's own phone is read the same way."""
    own_phone = _clean_own_phone(values)
    if not values.get("organization") and any(values.get(target) for target in OFFICE_FIELDS):
        # An individual's NPPES row names no practice: the address is where they work, but
        # with no office to hang it on, the partner imports without one (named offices
        # are matched by name and ZIP; an unnamed one would be a guess).
        for target in OFFICE_FIELDS:
            values.pop(target, None)
        return [], [
            *own_phone,
            "Office details left out: the row names no practice or office to put them on. "
            "The partner is imported without an office.",
        ]
    problems, skipped = [], own_phone
    readers: list[tuple[str, Callable[[str], str | None], str]] = [
        ("office_state", us_state_code, "is not a US state or territory."),
        ("office_zip_code", us_zip_code, "is not a ZIP code (5 digits or ZIP+4)."),
        ("office_phone", us_phone_number, "is not a US phone number."),
        ("office_fax", us_phone_number, "is not a US fax number."),
    ]
    for target, read, what in readers:
        typed = values.get(target, "")
        if not typed:
            continue
        written = read(typed)
        if written is None and target == "office_zip_code":
            state = us_state_code(values.get("office_state", "")) or ""
            written = _zip_without_its_leading_zeros(typed, state)
        if written is None:
            problem = f"{TARGETS[target]} “{typed[:40]}” {what}"
            if target != "office_zip_code":
                del values[target]
                skipped.append(f"{problem} Left out; the rest of the row is imported.")
                continue
            if typed.isdigit() and len(typed) < 5:
                problem += " A spreadsheet may have dropped its leading zero: format it as text."
            problems.append(problem)
        else:
            values[target] = written
    return problems, skipped


# Where ZIP codes start with 0, by their first three digits (USPS): only there can a
# spreadsheet have dropped a leading zero.
_ZERO_ZIP_STATES = {
    **dict.fromkeys(["005"], "NY"),
    **dict.fromkeys(["006", "007", "009"], "PR"),
    **dict.fromkeys(["008"], "VI"),
    **dict.fromkeys([f"{n:03d}" for n in range(10, 28)] + ["055"], "MA"),
    **dict.fromkeys(["028", "029"], "RI"),
    **dict.fromkeys([f"{n:03d}" for n in range(30, 39)], "NH"),
    **dict.fromkeys([f"{n:03d}" for n in range(39, 50)], "ME"),
    **dict.fromkeys([f"{n:03d}" for n in range(50, 60) if n != 55], "VT"),
    **dict.fromkeys([f"{n:03d}" for n in range(60, 70)], "CT"),
    **dict.fromkeys([f"{n:03d}" for n in range(70, 90)], "NJ"),
}


def _clean_own_phone(values: dict[str, str]) -> list[str]:
    """The partner's phone as the partner form writes it; one that is not a US number is
    left out (the form would refuse it) and said."""
    typed = values.get("phone", "")
    if not typed:
        return []
    written = us_phone_number(typed)
    if written is None:
        del values["phone"]
        return [
            f"{TARGETS['phone']} “{typed[:40]}” is not a US phone number. Left out; the rest of the row is imported."
        ]
    values["phone"] = written
    return []


def _zip_without_its_leading_zeros(typed: str, state: str) -> str | None:
    """A ZIP that a spreadsheet stored as a number ("2134" for 02134, Boston), given back
    its zeros when the result is a ZIP that exists, in the row's state if it gives one;
    None otherwise (a four-digit typo in Nebraska is not a Connecticut ZIP)."""
    digits = typed.strip()  # a number: no hyphen, so "68847-12" is not one of these
    if not (digits.isascii() and digits.isdigit()) or len(digits) not in (3, 4, 7, 8):
        return None
    five = zip5(digits)
    if zip_centroid(five) is None or (state and _ZERO_ZIP_STATES.get(five[:3]) != state):
        return None
    return us_zip_code(digits.zfill(9) if len(digits) > 5 else five)
