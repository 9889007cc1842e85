"""A partner who opted out of letters in the practice's old CRM stays opted out when the
list comes in: the column is read, it opts partners out but never back in, and a cell
that is neither yes nor no refuses its row rather than guessing."""

from __future__ import annotations

import csv
import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from partners.factories import OrganizationFactory, ProviderFactory, make_npi
from partners.models import PartnerImport, Provider
from partners.services import organization_set_letters_opt_out
from partners.spreadsheets.columns import guess_mapping

pytestmark = pytest.mark.django_db

NEW_YES, NEW_NO, NEW_EMPTY, KNOWN_IN, KNOWN_OUT, BAD = (make_npi(7100 + n) for n in range(6))


def _upload(client, rows):
    buffer = io.StringIO()
    csv.writer(buffer).writerows(rows)
    return client.post(
        reverse("partners:import_upload"),
        {"file": SimpleUploadedFile("partners.csv", buffer.getvalue().encode())},
    )


def test_opt_out_headers_of_other_crms_are_guessed_but_not_do_not_call():
    assert guess_mapping(["NPI", "HasOptedOutOfEmail", "DoNotCall"]) == {
        "0": "npi",
        "1": "letters_opt_out",
    }
    assert guess_mapping(["Email Opt Out"]) == {"0": "letters_opt_out"}
    assert guess_mapping(["Opted out of letters"]) == {"0": "letters_opt_out"}


def test_the_import_opts_partners_out_never_back_in_and_refuses_an_unclear_cell(
    client_for, manager, confirm_import
):
    ProviderFactory(npi=KNOWN_IN, first_name="Ina", last_name="Berg", letters_opt_out=False)
    ProviderFactory(npi=KNOWN_OUT, first_name="Otto", last_name="Kern", letters_opt_out=True)
    client = client_for(manager)
    _upload(
        client,
        [
            ["NPI", "First name", "Last name", "Email Opt Out"],
            [NEW_YES, "Yara", "Sol", "Yes"],
            [NEW_NO, "Noor", "Ali", "FALSE"],
            [NEW_EMPTY, "Emil", "Dahl", ""],
            [KNOWN_IN, "Ina", "Berg", "x"],
            [KNOWN_OUT, "Otto", "Kern", "no"],
            [BAD, "Bea", "Maybe", "ask her"],
        ],
    )
    partner_import = PartnerImport.objects.get()
    assert partner_import.mapping["3"] == "letters_opt_out"  # guessed from the header
    client.post(
        reverse("partners:import_mapping", args=[partner_import.pk]),
        {"column_0": "npi", "column_1": "first_name", "column_2": "last_name"}
        | {"column_3": "letters_opt_out"},
    )

    preview = client.get(partner_import.get_absolute_url()).content.decode()
    assert "Opted out of letters (yes / no) “ask her” is neither yes nor no." in preview
    assert "Opted out of letters (yes / no): no → <strong>yes</strong>" in preview
    assert "only their own page opts them back in" in preview
    assert preview.count('badge text-bg-warning">Opted out of letters') == 1  # Yara only
    assert Provider.objects.count() == 2  # the preview wrote nothing

    confirm_import(client, partner_import)
    partner_import.refresh_from_db()
    assert partner_import.result["create"] == 3
    assert partner_import.result["update"] == 1
    assert partner_import.result["unchanged"] == 1
    assert partner_import.result["reject"] == 1
    opted_out = dict(Provider.objects.values_list("npi", "letters_opt_out"))
    assert opted_out == {
        NEW_YES: True,
        NEW_NO: False,
        NEW_EMPTY: False,
        KNOWN_IN: True,
        KNOWN_OUT: True,  # "no" in a sheet never opts anyone back in
    }


def test_the_export_carries_both_opt_outs_and_its_own_comes_back_on_import(
    client_for, manager, confirm_import
):
    quiet_office = OrganizationFactory(name="Quiet Clinic")
    organization_set_letters_opt_out(organization=quiet_office, opted_out=True, actor=manager)
    ProviderFactory(npi=NEW_YES, last_name="Sol", letters_opt_out=True, organization=None)
    ProviderFactory(npi=NEW_NO, last_name="Ali", organization=quiet_office)
    client = client_for(manager)
    response = client.get(reverse("partners:provider_export"))
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode("utf-8-sig"))))
    header = rows[0]
    by_npi = {row[0].lstrip("'"): dict(zip(header, row, strict=True)) for row in rows[1:]}
    assert by_npi[NEW_YES]["Opted out of letters"] == "yes"
    assert by_npi[NEW_YES]["Office opted out of letters"] == "no"
    assert by_npi[NEW_NO]["Opted out of letters"] == "no"
    assert by_npi[NEW_NO]["Office opted out of letters"] == "yes"

    Provider.objects.all().delete()
    _upload(client, rows)
    partner_import = PartnerImport.objects.get()
    assert "letters_opt_out" in partner_import.mapping.values()
    confirm_import(client, partner_import)
    assert Provider.objects.get(npi=NEW_YES).letters_opt_out is True
    assert Provider.objects.get(npi=NEW_NO).letters_opt_out is False


def test_a_salesforce_export_s_email_and_fax_opt_outs_both_opt_a_partner_out(
    client_for, manager, confirm_import
):
    # Salesforce exports both boxes; letters go by email and fax, so a partner who ticked
    # either one asked for none. Neither column may be left behind.
    assert guess_mapping(["NPI", "HasOptedOutOfEmail", "HasOptedOutOfFax"]) == {
        "0": "npi",
        "1": "letters_opt_out",
        "2": "letters_opt_out",
    }
    client = client_for(manager)
    _upload(
        client,
        [
            ["NPI", "FirstName", "LastName", "HasOptedOutOfEmail", "HasOptedOutOfFax"],
            [NEW_YES, "Yara", "Sol", "false", "true"],
            [NEW_NO, "Noor", "Ali", "false", "false"],
            [NEW_EMPTY, "Emil", "Dahl", "true", ""],
            [BAD, "Bea", "Maybe", "false", "ask her"],
        ],
    )
    partner_import = PartnerImport.objects.get()
    assert sorted(partner_import.mapping.values()).count("letters_opt_out") == 2
    confirm_import(client, partner_import)
    partner_import.refresh_from_db()
    assert partner_import.result["reject"] == 1
    opted_out = dict(Provider.objects.values_list("npi", "letters_opt_out"))
    assert opted_out == {NEW_YES: True, NEW_NO: False, NEW_EMPTY: True}


def test_both_opt_out_columns_may_be_chosen_on_the_mapping_page(
    client_for, manager, confirm_import
):
    client = client_for(manager)
    _upload(
        client,
        [
            ["NPI", "First", "Last", "Email opt-out", "Fax opt-out"],
            [NEW_YES, "Yara", "Sol", "", "yes"],
        ],
    )
    partner_import = PartnerImport.objects.get()
    response = client.post(
        reverse("partners:import_mapping", args=[partner_import.pk]),
        {"column_0": "npi", "column_1": "first_name", "column_2": "last_name"}
        | {"column_3": "letters_opt_out", "column_4": "letters_opt_out"},
    )
    assert "chosen twice" not in response.content.decode()
    confirm_import(client, partner_import)
    assert Provider.objects.get(npi=NEW_YES).letters_opt_out is True


def test_opt_out_cells_a_spreadsheet_wrote_as_decimals_are_read():
    from partners.spreadsheets.rows import _clean_opt_out

    for typed, read in (("1.0", "yes"), ("0.0", "no"), (" 1 ", "yes"), ("TRUE", "yes")):
        values = {"letters_opt_out": typed}
        assert _clean_opt_out(values) == []
        assert values == {"letters_opt_out": read}
    values = {"letters_opt_out": "2.0"}
    assert _clean_opt_out(values) != []
