"""Writing the partner list as spreadsheet rows, safe to open in a spreadsheet app."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from core.csv_cells import safe_cell
from partners.models import Provider

# Export columns; their headers are guessed back on import, so an export round-trips.
EXPORT_COLUMNS: list[tuple[str, str]] = [
    ("NPI", "npi"),
    ("First name", "first_name"),
    ("Last name", "last_name"),
    ("Credential", "credential"),
    ("Taxonomy code", "taxonomy_code"),
    ("Specialty", "specialty"),
    ("Practice", "organization_name"),
    ("Address", "address_line1"),
    ("Address line 2", "address_line2"),
    ("City", "city"),
    ("State", "state"),
    ("ZIP code", "zip_code"),
    ("Office phone", "office_phone"),
    ("Fax", "fax"),
    ("Phone", "phone"),
    ("Email", "email"),
    ("Status", "status_label"),
    ("Tier", "tier"),
    ("Health", "health_label"),
    ("Owner", "owner_name"),
    ("Notes", "notes"),
    # Read back on import (it can opt a partner out, never in); the office's is not.
    ("Opted out of letters", "own_opt_out"),
    ("Office opted out of letters", "office_opt_out"),
    ("Opted out of newsletters and invitations", "own_marketing_opt_out"),
    ("Office opted out of newsletters and invitations", "office_marketing_opt_out"),
]


def export_rows(providers: Iterable[Provider]) -> Iterator[list[str]]:
    yield [header for header, _ in EXPORT_COLUMNS]
    for provider in providers:
        office = provider.organization
        values = {
            "organization_name": office.name if office else "",
            "address_line1": office.address_line1 if office else "",
            "address_line2": office.address_line2 if office else "",
            "city": office.city if office else "",
            "state": office.state if office else "",
            "zip_code": office.zip_code if office else "",
            "office_phone": office.phone if office else "",
            "fax": office.fax if office else "",
            "own_opt_out": "yes" if provider.letters_opt_out else "no",
            "office_opt_out": "yes" if office and office.letters_opt_out else "no",
            "own_marketing_opt_out": "yes" if provider.marketing_opt_out else "no",
            "office_marketing_opt_out": "yes" if office and office.marketing_opt_out else "no",
            "status_label": provider.get_status_display(),
            "health_label": provider.get_health_display(),
            "owner_name": (provider.owner.get_full_name() or provider.owner.get_username())
            if provider.owner
            else "",
        }
        yield [
            safe_cell(str(values[name] if name in values else getattr(provider, name)))
            for _, name in EXPORT_COLUMNS
        ]
