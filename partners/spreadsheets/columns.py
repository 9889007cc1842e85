"""The columns an import can fill, and guessing which header fills which."""

from __future__ import annotations

import re

# Import targets: the field and how the mapping step names it.
TARGETS: dict[str, str] = {
    "npi": "NPI",
    "first_name": "First name",
    "last_name": "Last name",
    "full_name": "Full name (first and last together)",
    "credential": "Credential",
    "taxonomy_code": "Taxonomy code",
    "specialty": "Specialty",
    "organization": "Practice / office name",
    "office_address_line1": "Office address",
    "office_address_line2": "Office address line 2 (suite)",
    "office_city": "Office city",
    "office_state": "Office state",
    "office_zip_code": "Office ZIP code",
    "office_phone": "Office phone",
    "office_fax": "Office referral fax",
    "phone": "Phone",
    "email": "Email",
    "notes": "Notes",
    "letters_opt_out": "Opted out of letters (yes / no)",
    "marketing_opt_out": "Opted out of newsletters and invitations (yes / no)",
}

# The opt-out targets: a "yes" opts the partner out, a "no" never opts them back in.
OPT_OUT_TARGETS = ("letters_opt_out", "marketing_opt_out")

# The office targets and the Organization field each fills.
OFFICE_FIELDS: dict[str, str] = {
    "office_address_line1": "address_line1",
    "office_address_line2": "address_line2",
    "office_city": "city",
    "office_state": "state",
    "office_zip_code": "zip_code",
    "office_phone": "phone",
    "office_fax": "fax",
}
OFFICE_LABELS = {name: TARGETS[target] for target, name in OFFICE_FIELDS.items()}

# Header spellings seen in other CRMs and hand-made sheets, compared without case,
# spaces or punctuation.
GUESSES: dict[str, str] = {
    **dict.fromkeys(["npi", "npinumber", "providernpi", "individualnpi", "npiid"], "npi"),
    **dict.fromkeys(
        ["firstname", "first", "givenname", "providerfirstname", "fname"], "first_name"
    ),
    **dict.fromkeys(
        [
            "lastname",
            "last",
            "surname",
            "familyname",
            "providerlastname",
            "lname",
            "providerlastnamelegalname",  # NPPES
        ],
        "last_name",
    ),
    **dict.fromkeys(
        ["name", "fullname", "providername", "physician", "physicianname", "doctor", "contact"],
        "full_name",
    ),
    **dict.fromkeys(
        ["credential", "credentials", "degree", "suffix", "providercredentialtext"], "credential"
    ),
    **dict.fromkeys(
        ["taxonomy", "taxonomycode", "nucc", "nucccode", "healthcareprovidertaxonomycode1"],
        "taxonomy_code",
    ),
    **dict.fromkeys(["specialty", "speciality", "primaryspecialty", "specialties"], "specialty"),
    **dict.fromkeys(
        [
            "practice",
            "practicename",
            "office",
            "officename",
            "organization",
            "organisation",
            "organizationname",
            "clinic",
            "group",
            "groupname",
            "company",
            "account",
            "accountname",
            "providerorganizationnamelegalbusinessname",  # NPPES
        ],
        "organization",
    ),
    # Salesforce exports say Mailing (contacts) and Billing (accounts); NPPES files name the
    # practice location's columns in full (its mailing address is not the office).
    **dict.fromkeys(
        [
            "address",
            "address1",
            "addressline1",
            "addr",
            "street",
            "street1",
            "streetaddress",
            "streetaddress1",
            "officeaddress",
            "practiceaddress",
            "mailingstreet",
            "billingstreet",
            "providerfirstlinebusinesspracticelocationaddress",
        ],
        "office_address_line1",
    ),
    **dict.fromkeys(
        [
            "address2",
            "addressline2",
            "street2",
            "streetaddress2",
            "suite",
            "suitenumber",
            "ste",
            "providersecondlinebusinesspracticelocationaddress",
        ],
        "office_address_line2",
    ),
    **dict.fromkeys(
        [
            "city",
            "town",
            "officecity",
            "practicecity",
            "mailingcity",
            "billingcity",
            "providerbusinesspracticelocationaddresscityname",
        ],
        "office_city",
    ),
    **dict.fromkeys(
        [
            "state",
            "st",
            "statecode",
            "stateregion",
            "stateprovince",
            "officestate",
            "practicestate",
            "mailingstate",
            "mailingstateprovince",
            "billingstate",
            "billingstateprovince",
            "providerbusinesspracticelocationaddressstatename",
        ],
        "office_state",
    ),
    **dict.fromkeys(
        [
            "zip",
            "zipcode",
            "zip5",
            "postalcode",
            "postcode",
            "zippostalcode",
            "officezip",
            "practicezip",
            "mailingzip",
            "mailingpostalcode",
            "mailingzippostalcode",
            "billingzip",
            "billingpostalcode",
            "billingzippostalcode",
            "providerbusinesspracticelocationaddresspostalcode",
        ],
        "office_zip_code",
    ),
    **dict.fromkeys(
        [
            "officephone",
            "practicephone",
            "clinicphone",
            "mainphone",
            "providerbusinesspracticelocationaddresstelephonenumber",
        ],
        "office_phone",
    ),
    **dict.fromkeys(
        [
            "fax",
            "faxnumber",
            "faxno",
            "referralfax",
            "officefax",
            "practicefax",
            "clinicfax",
            "designatedfax",
            "businessfax",
            "providerbusinesspracticelocationaddressfaxnumber",
        ],
        "office_fax",
    ),
    **dict.fromkeys(
        ["phone", "phonenumber", "telephone", "tel", "workphone", "directphone"], "phone"
    ),
    **dict.fromkeys(["email", "emailaddress", "mail", "workemail"], "email"),
    **dict.fromkeys(["notes", "note", "comments", "comment"], "notes"),
    # Salesforce's HasOptedOutOfEmail and HasOptedOutOfFax: letters go by email and fax.
    # Not "Do not call": a partner who takes no calls may still want the consult notes.
    **dict.fromkeys(
        [
            "optedoutofletters",
            "lettersoptout",
            "optout",
            "optedout",
            "emailoptout",
            "hasoptedoutofemail",
            "faxoptout",
            "hasoptedoutoffax",
            "donotmail",
            "donotsend",
            "nomailings",
        ],
        "letters_opt_out",
    ),
}

GUESSES.update(
    dict.fromkeys(
        [
            "optedoutofnewslettersandinvitations",  # this app's own export
            "nonewsletters",
            "newsletteroptout",
            "optedoutofnewsletters",
            "marketingoptout",
            "nomarketing",
            "hasoptedoutofmarketing",
        ],
        "marketing_opt_out",
    )
)

# How a sheet says yes or no in an opt-out column (compared without case or spaces); an
# empty cell says nothing.
OPT_OUT_YES = {"yes", "y", "true", "t", "1", "x", "optedout", "optout", "donotmail"}
OPT_OUT_NO = {"no", "n", "false", "f", "0"}


def _normal(header: str) -> str:
    return re.sub(r"[^a-z0-9]", "", header.lower())


# Targets several columns may fill: Salesforce exports an email and a fax opt-out, and a
# partner who ticked either asked for no letters (a "yes" in any of them opts them out).
MANY_COLUMNS = {"letters_opt_out"}


def guess_mapping(headers: list[str]) -> dict[str, str]:
    """Column index (as a string, the JSON key) to import target, by header name; each
    target is guessed for one column at most, but for those of MANY_COLUMNS."""
    mapping: dict[str, str] = {}
    for index, header in enumerate(headers):
        target = GUESSES.get(_normal(header))
        if target and (target in MANY_COLUMNS or target not in mapping.values()):
            mapping[str(index)] = target
    return mapping
