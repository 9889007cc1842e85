"""The partner import also fills each practice's office: address, city, state, ZIP, office
phone and referral fax, one office per practice, matched to the offices we already have."""

import csv
import io

import pytest
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from partners.factories import OrganizationFactory, ProviderFactory, make_npi
from partners.models import Organization, PartnerImport, Provider
from partners.services.imports import partner_import_apply, partner_import_start
from partners.spreadsheets.columns import guess_mapping
from partners.spreadsheets.planning import plan_import
from partners.spreadsheets.reading import read_table

pytestmark = pytest.mark.django_db

HEADERS = ["NPI", "First name", "Last name", "Practice", "Address", "Suite", "City", "ST", "Zip"]
HEADERS += ["Office Phone", "Referral Fax"]


def _sheet(*rows):
    return [HEADERS, *[list(row) for row in rows]]


def _row(n, **cells):
    """A data row for partner number n, at Kearney Family Practice unless `cells` says
    otherwise."""
    row = {
        "practice": "Kearney Family Practice",
        "address": "3219 Central Ave",
        "suite": "Suite 200",
        "city": "Kearney",
        "state": "NE",
        "zip_code": "68847",
        "phone": "308-555-0100",
        "fax": "308.555.0111",
        "last_name": f"Number{n}",
        **cells,
    }
    return [make_npi(8000 + n), "Pat", row["last_name"], row["practice"], row["address"]] + [
        row[name] for name in ("suite", "city", "state", "zip_code", "phone", "fax")
    ]


NO_OFFICE_DETAILS = dict.fromkeys(
    ["address", "suite", "city", "state", "zip_code", "phone", "fax"], ""
)


def _import(user, sheet):
    headers, *rows = sheet
    return PartnerImport.objects.create(
        uploaded_by=user,
        file_name="offices.csv",
        headers=headers,
        rows=rows,
        mapping=guess_mapping(headers),
        total_rows=len(rows),
    )


def _apply(partner_import):
    partner_import.refresh_from_db()  # confirmed from the preview as it stands
    partner_import_start(partner_import=partner_import, previewed=partner_import.mapping_version)
    partner_import.refresh_from_db()
    assert partner_import.status == PartnerImport.Status.APPLIED, partner_import.error
    return partner_import


def test_office_columns_from_other_crms_and_hand_made_sheets_are_guessed():
    for header, target in [
        ("Address", "office_address_line1"),
        ("Address 1", "office_address_line1"),
        ("Street", "office_address_line1"),
        ("Mailing Street", "office_address_line1"),
        ("Provider First Line Business Practice Location Address", "office_address_line1"),
        ("Address Line 2", "office_address_line2"),
        ("Suite", "office_address_line2"),
        ("City", "office_city"),
        ("State", "office_state"),
        ("ST", "office_state"),
        ("State/Region", "office_state"),
        ("Zip", "office_zip_code"),
        ("Zip Code", "office_zip_code"),
        ("Postal Code", "office_zip_code"),
        ("Billing Zip/Postal Code", "office_zip_code"),
        ("Office Phone", "office_phone"),
        ("Fax", "office_fax"),
        ("Fax Number", "office_fax"),
        ("Referral Fax", "office_fax"),
        ("Office Fax", "office_fax"),
    ]:
        assert guess_mapping(["NPI", header]) == {"0": "npi", "1": target}, header
    # The provider's own line stays the provider's; "E-mail Address" is not a street.
    assert guess_mapping(["Phone", "Office Phone", "E-mail Address"]) == {
        "0": "phone",
        "1": "office_phone",
        "2": "email",
    }


def test_a_bad_zip_refuses_the_row_and_an_unreadable_state_phone_or_fax_is_left_out(
    client_for, manager
):
    """The ZIP decides which office a row goes to, so a bad one refuses the row. A state,
    phone or fax that cannot be read (the office form and other systems store them freely,
    so an export may hold them) is left out and said so; the partner's own data imports."""
    known = ProviderFactory(npi=make_npi(8100), last_name="Wiebe", phone="")
    office = known.organization
    before = {name: getattr(office, name) for name in ("address_line1", "zip_code", "fax")}
    same_office = {
        "practice": office.name,
        "address": office.address_line1,
        "suite": office.address_line2,
        "city": office.city,
        "state": office.state,
        "zip_code": office.zip_code,
    }
    bad_known = _row(100, **same_office, fax="555-0111", last_name="Wiebe")
    bad_known[9] = "(402) 555-0199"  # a good office phone beside the unreadable fax
    sheet = _sheet(
        _row(1, zip_code="6884"),
        _row(2, zip_code="68847-12"),
        _row(3, state="XX"),
        _row(4, state="Nebr"),
        _row(5, fax="call the front desk"),
        _row(6, phone="+44 20 7946 0958"),
        bad_known,
        _row(7, state="nebraska", zip_code="688471234", fax="1 (308) 555 0111"),
        # Stored as numbers: Boston's 02134 and 02134-1234 lost their zeros; 06884 is no ZIP.
        _row(8, state="MA", zip_code="2134"),
        _row(9, practice="Allston Pediatrics", state="MA", zip_code="21341234"),
    )
    partner_import = _import(manager, sheet)
    client = client_for(manager)

    preview = client.get(partner_import.get_absolute_url()).content.decode()
    assert "Office ZIP code “6884” is not a ZIP code (5 digits or ZIP+4). A spreadsheet may " in (
        preview
    )
    assert "Office ZIP code “68847-12” is not a ZIP code (5 digits or ZIP+4)." in preview
    assert "Imported without some values" in preview
    left_out = "Left out; the rest of the row is imported."
    for message in (
        "Office state “XX” is not a US state or territory.",
        "Office state “Nebr” is not a US state or territory.",
        "Office referral fax “call the front desk” is not a US fax number.",
        "Office phone “+44 20 7946 0958” is not a US phone number.",
        "Office referral fax “555-0111” is not a US fax number.",
    ):
        assert f"{message} {left_out}" in preview
    plan = plan_import(partner_import.rows, partner_import.mapping)
    assert [row.number for row in plan.of("reject")] == [2, 3]
    assert [row.number for row in plan.of("create")] == [4, 5, 6, 7, 9, 10, 11]
    assert [row.number for row in plan.of("update")] == [8]

    _apply(partner_import)
    rejects = client.get(reverse("partners:import_rejects", args=[partner_import.pk]))
    lines = list(csv.reader(io.StringIO(b"".join(rejects.streaming_content).decode("utf-8-sig"))))
    assert [line[0] for line in lines[1:]] == ["2", "3"]

    office.refresh_from_db()
    assert {name: getattr(office, name) for name in before} == before  # the bad fax left out
    assert office.phone == "(402) 555-0199"
    known.refresh_from_db()
    assert known.first_name == "Pat" and known.organization == office
    assert Provider.objects.count() == 8
    kearney = Provider.objects.get(npi=make_npi(8003)).organization
    assert kearney.state == "NE"  # from the rows that gave a readable one
    assert Provider.objects.get(npi=make_npi(8008)).organization.zip_code == "02134"
    assert Provider.objects.get(npi=make_npi(8009)).organization.zip_code == "02134-1234"
    created = Provider.objects.get(npi=make_npi(8007)).organization
    assert (created.state, created.zip_code, created.fax, created.phone) == (
        "NE",
        "68847-1234",
        "(308) 555-0111",
        "(308) 555-0100",
    )


def test_rows_of_the_same_practice_end_up_in_one_office(manager):
    sheet = _sheet(
        _row(1),
        _row(2, practice="KEARNEY FAMILY PRACTICE", zip_code="68847-4410", fax=""),
        _row(3, suite="", city="", state="", zip_code="", phone=""),
        _row(4, zip_code="68845", address="12 Railroad St", fax="308-555-0222"),
    )
    partner_import = _apply(_import(manager, sheet))

    assert partner_import.result["organizations"] == 2
    kearney = Organization.objects.get(zip_code="68847-4410")
    assert kearney.name == "Kearney Family Practice"
    assert (kearney.address_line1, kearney.address_line2, kearney.city, kearney.state) == (
        "3219 Central Ave",
        "Suite 200",
        "Kearney",
        "NE",
    )
    assert (kearney.phone, kearney.fax) == ("(308) 555-0100", "(308) 555-0111")
    assert set(kearney.providers.values_list("last_name", flat=True)) == {
        "Number1",
        "Number2",
    }
    # Another ZIP is another location of the practice; a row without a ZIP cannot say which.
    other = Organization.objects.get(zip_code="68845")
    assert list(other.providers.values_list("last_name", flat=True)) == ["Number4"]
    assert not Provider.objects.filter(last_name="Number3").exists()
    plan = plan_import(partner_import.rows, partner_import.mapping)
    assert plan.of("reject")[0].reasons == [
        "“Kearney Family Practice” has several ZIP codes in this file (68845, 68847): "
        "add this row's ZIP code so we know which office it belongs to."
    ]


def test_a_row_without_a_zip_joins_the_only_office_of_its_name_in_the_file(manager):
    sheet = _sheet(_row(1), _row(2, address="", suite="", city="", zip_code="", fax=""))
    _apply(_import(manager, sheet))
    office = Organization.objects.get()
    assert office.providers.count() == 2
    assert office.zip_code == "68847"


def test_rows_that_contradict_each_other_about_their_office_are_refused(client_for, manager):
    sheet = _sheet(_row(1), _row(2, fax="308-555-0999"), _row(3, city="KEARNEY"))
    partner_import = _import(manager, sheet)
    preview = client_for(manager).get(partner_import.get_absolute_url()).content.decode()
    assert (
        "Office referral fax “(308) 555-0999” differs from “(308) 555-0111” on row 2 for the "
        "same office." in preview
    )
    _apply(partner_import)
    office = Organization.objects.get()
    assert office.fax == "(308) 555-0111"
    assert office.city == "Kearney"  # the same city in other capitals is no contradiction
    assert office.providers.count() == 2


def test_an_existing_office_is_matched_by_name_and_zip_not_duplicated(client_for, manager):
    ours = OrganizationFactory(
        name="Kearney family practice",
        address_line1="3219 Central Ave",
        address_line2="",
        city="Kearney",
        zip_code="68847",
        phone="",
        fax="(308) 555-0000",
    )
    namesake = OrganizationFactory(name="Kearney Family Practice", zip_code="68845", fax="")
    no_zip_yet = OrganizationFactory(name="Hastings Clinic", zip_code="", address_line1="", fax="")
    partner_import = _import(
        manager,
        _sheet(
            _row(1),
            _row(2, phone=""),
            _row(3, practice="Hastings Clinic", city="Hastings", zip_code="68901", fax=""),
        ),
    )
    preview = client_for(manager).get(partner_import.get_absolute_url()).content.decode()
    assert "Offices to update" in preview
    assert "Office referral fax: (308) 555-0000 → <strong>(308) 555-0111</strong>" in preview
    assert "Office phone: (empty) → <strong>(308) 555-0100</strong>" in preview
    assert "Office ZIP code: (empty) → <strong>68901</strong>" in preview
    assert "New offices" not in preview

    partner_import = _apply(partner_import)
    assert partner_import.result["organizations"] == 0
    assert partner_import.result["offices_updated"] == 2
    assert Organization.objects.count() == 3
    ours.refresh_from_db()
    assert (ours.fax, ours.phone, ours.address_line2) == (
        "(308) 555-0111",
        "(308) 555-0100",
        "Suite 200",
    )
    assert ours.name == "Kearney family practice"  # matched, never renamed
    assert ours.providers.count() == 2
    assert not namesake.providers.exists()
    no_zip_yet.refresh_from_db()
    assert (no_zip_yet.zip_code, no_zip_yet.city) == ("68901", "Hastings")


def test_a_row_without_a_zip_is_refused_when_we_have_two_offices_of_that_name(manager):
    """Guessing would write this row's address and fax onto another location's record."""
    main = OrganizationFactory(name="Kearney FP", zip_code="68847", fax="(308) 555-0100")
    branch = OrganizationFactory(name="Kearney FP", zip_code="68845", fax="(308) 555-0200")
    lone = OrganizationFactory(name="Hastings Clinic", zip_code="68901", fax="")
    sheet = _sheet(
        _row(1, practice="Kearney FP", zip_code="", fax="308-555-0222"),
        _row(2, practice="Hastings Clinic", zip_code="", fax="402-555-0333"),
    )
    partner_import = _import(manager, sheet)
    plan = plan_import(partner_import.rows, partner_import.mapping)

    (refused,) = plan.of("reject")
    assert refused.number == 2
    assert refused.reasons == [
        "We have 2 offices called “Kearney FP” (68845, 68847): add this row's ZIP code so we "
        "know which one it belongs to."
    ]
    _apply(partner_import)
    for office, fax in ((main, "(308) 555-0100"), (branch, "(308) 555-0200")):
        office.refresh_from_db()
        assert office.fax == fax and not office.providers.exists()
    lone.refresh_from_db()  # one office of that name: no doubt, so it is used
    assert lone.fax == "(402) 555-0333" and lone.providers.count() == 1


def test_a_zip_gets_its_leading_zero_back_only_in_a_state_whose_zips_start_with_one():
    sheet = _sheet(
        _row(1, practice="Allston Pediatrics", state="MA", zip_code="2134"),
        _row(2, practice="Westport typo", state="NE", zip_code="6880"),  # 06880 is in CT
        _row(3, practice="No state given", state="", zip_code="6880"),
    )
    plan = plan_import(sheet[1:], guess_mapping(sheet[0]))

    assert [row.number for row in plan.of("reject")] == [3]
    assert "A spreadsheet may have dropped its leading zero" in plan.of("reject")[0].reasons[0]
    assert {o.name: o.values["zip_code"] for o in plan.offices} == {
        "Allston Pediatrics": "02134",
        "No state given": "06880",
    }


def test_a_partner_stays_in_its_own_office_when_the_row_agrees_with_it(manager):
    older = OrganizationFactory(name="Hastings Clinic", zip_code="68901")
    provider = ProviderFactory(
        npi=make_npi(8001),
        first_name="Pat",
        last_name="Number1",
        organization=OrganizationFactory(name="Hastings Clinic", zip_code=""),
    )
    sheet = _sheet(_row(1, practice="hastings clinic", **NO_OFFICE_DETAILS))
    plan = plan_import(sheet[1:], guess_mapping(HEADERS))
    assert plan.of("unchanged")[0].provider_id == provider.pk
    assert not older.providers.exists()


def test_empty_cells_never_erase_an_office(manager):
    office = OrganizationFactory(
        name="Kearney Family Practice",
        zip_code="68847-4410",
        phone="(308) 555-0100",
        fax="(308) 555-0111",
        address_line1="3219 Central Ave",
        address_line2="Suite 200",
        city="Kearney",
        state="NE",
    )
    before = {field.name: getattr(office, field.name) for field in Organization._meta.fields}
    sheet = _sheet(_row(1, **{**NO_OFFICE_DETAILS, "zip_code": "68847"}))
    partner_import = _apply(_import(manager, sheet))
    assert partner_import.result["offices_updated"] == 0
    office.refresh_from_db()
    after = {field.name: getattr(office, field.name) for field in Organization._meta.fields}
    assert after == before  # a ZIP already given as ZIP+4 stays, too
    assert Provider.objects.get(npi=make_npi(8001)).organization == office


def test_a_mapping_with_office_columns_needs_the_practice_name(client_for, manager):
    partner_import = _import(manager, _sheet(_row(1)))
    page = (
        client_for(manager)
        .post(
            reverse("partners:import_mapping", args=[partner_import.pk]),
            {
                "column_0": "npi",
                "column_1": "first_name",
                "column_2": "last_name",
                "column_10": "office_fax",
            },
        )
        .content.decode()
    )
    assert "Choose the practice / office name column too" in page
    # A row whose practice name is empty (an individual's NPPES row) has no office to put
    # its details on: the partner imports without one, and the preview says so.
    plan = plan_import(_sheet(_row(1, practice=""))[1:], guess_mapping(HEADERS))
    assert plan.of("reject") == []
    (row,) = plan.with_skipped_values
    assert row.skipped == [
        "Office details left out: the row names no practice or office to put them on. "
        "The partner is imported without an office."
    ]


def test_an_export_with_offices_round_trips_through_csv_import(client_for, manager):
    office = OrganizationFactory(
        name="Kearney Family Practice",
        address_line1="3219 Central Ave",
        address_line2="Suite 200",
        city="Kearney",
        state="NE",
        zip_code="68847-4410",
        phone="(308) 555-0100",
        fax="(308) 555-0111",
    )
    ProviderFactory(npi=make_npi(8001), last_name="Reyes", organization=office)
    ProviderFactory(npi=make_npi(8002), last_name="Lund", organization=office)
    client = client_for(manager)
    response = client.get(reverse("partners:provider_export"))
    exported = b"".join(response.streaming_content)
    header, *lines = list(csv.reader(io.StringIO(exported.decode())))
    assert header[6:14] == [
        "Practice",
        "Address",
        "Address line 2",
        "City",
        "State",
        "ZIP code",
        "Office phone",
        "Fax",
    ]
    assert lines[0][6:14] == [
        "Kearney Family Practice",
        "3219 Central Ave",
        "Suite 200",
        "Kearney",
        "NE",
        "68847-4410",
        "(308) 555-0100",
        "(308) 555-0111",
    ]

    # Back in as it is: the same office is found, nothing changes or doubles.
    headers, *rows = list(csv.reader(io.StringIO(exported.decode())))
    again = _import(manager, [headers, *rows])
    assert {"organization", "office_address_line1", "office_fax", "office_zip_code"} <= set(
        again.mapping.values()
    )
    plan = plan_import(again.rows, again.mapping)
    assert plan.counts["unchanged"] == 2 and not plan.new_offices and not plan.office_updates

    # Into an empty directory: the office comes back whole, once.
    Provider.objects.all().delete()
    Organization.objects.all().delete()
    _apply(again)
    restored = Organization.objects.get()
    assert [
        getattr(restored, name)
        for name in ("name", "address_line1", "address_line2", "city", "state", "zip_code")
    ] == ["Kearney Family Practice", "3219 Central Ave", "Suite 200", "Kearney", "NE", "68847-4410"]
    assert (restored.phone, restored.fax) == ("(308) 555-0100", "(308) 555-0111")
    assert restored.providers.count() == 2


def test_hostile_text_in_office_fields_is_stored_as_typed_and_shown_escaped(client_for, manager):
    script = "<script>alert(1)</script>"
    sheet = _sheet(
        _row(1, practice=f"{script} Clinic", address=f"1 {script} St", city=script),
        _row(2, practice="Huge", address="A" * 5000),
        _row(3, practice="Huge too", suite="B" * 201, city="C" * 101),
    )
    partner_import = _import(manager, sheet)
    client = client_for(manager)
    preview = client.get(partner_import.get_absolute_url()).content.decode()
    assert script not in preview
    assert "&lt;script&gt;alert(1)&lt;/script&gt; Clinic (&lt;script&gt;" in preview
    assert "Office address is longer than 200 characters." in preview
    assert "Office address line 2 (suite) is longer than 200 characters." in preview
    assert "Office city is longer than 100 characters." in preview
    assert "A" * 300 not in preview

    _apply(partner_import)
    office = Organization.objects.get()
    assert (office.name, office.address_line1, office.city) == (
        f"{script} Clinic",
        f"1 {script} St",
        script,
    )
    page = client.get(office.get_absolute_url()).content.decode()
    assert script not in page
    assert "1 &lt;script&gt;alert(1)&lt;/script&gt; St" in page
    provider = Provider.objects.get()
    assert script not in client.get(provider.get_absolute_url()).content.decode()


def test_an_office_merged_away_while_importing_fails_the_import_and_writes_nothing(
    manager, monkeypatch
):
    office = OrganizationFactory(name="Kearney Family Practice", zip_code="68847", fax="")
    partner_import = _import(manager, _sheet(_row(1), _row(2)))
    planned = plan_import

    def plan_then_merge(*args, **kwargs):
        plan = planned(*args, **kwargs)
        Organization.objects.filter(pk=office.pk).delete()  # a colleague's merge, say
        return plan

    monkeypatch.setattr("partners.spreadsheets.planning.plan_import", plan_then_merge)
    partner_import_start(partner_import=partner_import, previewed=partner_import.mapping_version)
    partner_import.refresh_from_db()
    assert partner_import.status == PartnerImport.Status.FAILED
    assert partner_import.error == (
        "Nothing was imported: the partner list changed while importing (An office was merged "
        "or deleted while importing). Upload the file again to see a fresh preview."
    )
    assert not Provider.objects.exists()
    assert not Organization.objects.exists()


def test_planning_runs_the_same_queries_for_ten_rows_or_a_hundred(manager):
    for n in range(40):
        OrganizationFactory(name=f"Clinic {n}", zip_code=f"68{n:03d}")

    def queries(count):
        rows = [_row(n, practice=f"Clinic {n}", zip_code=f"68{n:03d}") for n in range(count)]
        sheet = _sheet(*rows)
        with CaptureQueriesContext(connection) as captured:
            plan = plan_import(sheet[1:], guess_mapping(HEADERS))
        assert plan.counts["create"] == count
        return len(captured)

    assert queries(10) == queries(100)


def test_applying_runs_the_same_queries_for_ten_rows_or_thirty(manager):
    def queries(count, offset):
        # Seven practices per file, new each time, so both files create the same way.
        rows = [
            _row(offset + n, practice=f"Clinic {offset} {n % 7}", zip_code=f"68{n % 7:03d}")
            for n in range(count)
        ]
        partner_import = _import(manager, _sheet(*rows))
        PartnerImport.objects.filter(pk=partner_import.pk).update(status="queued")
        with CaptureQueriesContext(connection) as captured:
            done = partner_import_apply(import_id=partner_import.pk)
        assert done.result["create"] == count and done.result["organizations"] == 7
        return len(captured)

    # Thirty, not more: SQLite takes at most 999 parameters a statement, so Django splits a
    # bulk insert of 26-column partners past 38 rows (batches, not a query per row).
    assert queries(10, 0) == queries(30, 1000)


def test_the_office_form_writes_state_zip_phone_and_fax_as_the_import_reads_them(
    client_for, manager
):
    office = OrganizationFactory(name="Kearney Family Practice")
    url = reverse("partners:organization_update", args=[office.pk])
    form = {"name": office.name, "state": "ne", "zip_code": "68847 1234"}
    response = client_for(manager).post(
        url, {**form, "phone": "308.555.0100 ext. 2", "fax": "1 (308) 555 0111"}
    )
    assert response.status_code == 302
    office.refresh_from_db()
    assert (office.state, office.zip_code, office.phone, office.fax) == (
        "NE",
        "68847-1234",
        "(308) 555-0100 x2",
        "(308) 555-0111",
    )
    refused = client_for(manager).post(
        url, {**form, "state": "XX", "zip_code": "6884", "phone": "press 2", "fax": "+44 20"}
    )
    page = refused.content.decode()
    assert refused.status_code == 200
    for error in (
        "Not a US state or territory",
        "Not a ZIP code: 5 digits, or ZIP+4.",
        "Not a US phone number",
        "Not a US fax number",
    ):
        assert error in page
    office.refresh_from_db()
    assert office.fax == "(308) 555-0111"  # nothing saved from the refused form


def test_the_cms_nppes_file_is_recognised_and_its_individuals_import(db):
    """The real first thousand rows of the CMS file: its columns are guessed (the mapping
    step would otherwise mean picking among 330 columns), and an individual clinician, whose
    row names no practice, imports without an office rather than being refused."""
    path = (
        settings.BASE_DIR.parent
        / "shared"
        / "data"
        / "nppes"
        / "npidata_pfile_first1000_restored.csv"
    )
    with path.open("rb") as upload:
        table = read_table(upload, path.name)
    mapping = guess_mapping(table.headers)
    guessed = {target: table.headers[int(index)] for index, target in mapping.items()}
    assert guessed["npi"] == "NPI"
    assert guessed["last_name"] == "Provider Last Name (Legal Name)"
    assert guessed["credential"] == "Provider Credential Text"
    assert guessed["taxonomy_code"] == "Healthcare Provider Taxonomy Code_1"
    assert guessed["organization"] == "Provider Organization Name (Legal Business Name)"
    assert guessed["office_address_line1"] == (
        "Provider First Line Business Practice Location Address"
    )
    plan = plan_import(table.rows, mapping)
    # Entity type 1 is a person (2, an organization, has no first and last name).
    people = {row[0] for row in table.rows if row[1] == "1" and row[5] and row[6]}
    rejected = {row.values.get("npi") for row in plan.of("reject")}
    assert people and not people & rejected
    assert {row.values["npi"] for row in plan.of("create")} == people


def test_a_partners_own_phone_is_written_as_the_form_writes_it_or_left_out():
    mapping = {"0": "npi", "1": "first_name", "2": "last_name", "3": "phone"}
    rows = [
        [make_npi(8101), "Ann", "Quell", "308.555.0142"],
        [make_npi(8102), "Bo", "Quarry", "abc"],
    ]
    plan = plan_import(rows, mapping)
    readable, unreadable = plan.rows
    assert readable.action == unreadable.action == "create"
    assert readable.values["phone"] == "(308) 555-0142" and readable.skipped == []
    assert "phone" not in unreadable.values
    assert unreadable.skipped == [
        "Phone “abc” is not a US phone number. Left out; the rest of the row is imported."
    ]


def test_the_partners_an_import_adds_get_the_owner_chosen_and_those_it_updates_keep_theirs(
    client_for, manager
):
    from core.factories import UserFactory
    from core.roles import Role

    owner = UserFactory(role=Role.LIAISON, first_name="Liesl", last_name="Quade")
    keeper = UserFactory(role=Role.LIAISON)
    known = ProviderFactory(npi=make_npi(8100), owner=keeper)
    partner_import = _import(manager, _sheet(_row(1), _row(100)))
    client = client_for(manager)
    mapping_url = reverse("partners:import_mapping", args=[partner_import.pk])
    page = client.get(mapping_url).content.decode()
    assert "Owner of the partners this import adds" in page
    # A manager owns partners too: offered as the owner at first.
    assert f'<option value="{manager.pk}" selected>' in page
    data = {f"column_{index}": target for index, target in partner_import.mapping.items()}
    response = client.post(mapping_url, {**data, "new_owner": owner.pk})
    assert response.status_code == 302
    preview = client.get(partner_import.get_absolute_url()).content.decode()
    assert "The 1 new partner will be owned by Liesl Quade." in preview
    _apply(partner_import)
    assert Provider.objects.get(npi=make_npi(8001)).owner == owner
    known.refresh_from_db()
    assert known.owner == keeper


def test_an_export_round_trips_when_an_office_without_a_zip_shares_its_name(client_for, manager):
    """Two locations of one name, one not given its ZIP yet: the export's row without a ZIP
    is the partner's own office, not the namesake whose ZIP another row gives."""
    no_zip = OrganizationFactory(name="Family Clinic", zip_code="", address_line1="1 Elm St")
    zipped = OrganizationFactory(name="Family Clinic", zip_code="68847", address_line1="9 Oak Ave")
    ProviderFactory(npi=make_npi(8001), organization=no_zip)
    ProviderFactory(npi=make_npi(8002), organization=zipped)
    response = client_for(manager).get(reverse("partners:provider_export"))
    headers, *rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))

    plan = plan_import(rows, guess_mapping(headers))
    assert plan.counts == {"create": 0, "update": 0, "unchanged": 2, "reject": 0}
    assert not plan.new_offices and not plan.office_updates


def test_two_imports_at_once_adding_the_same_new_office_do_not_make_it_twice(manager, monkeypatch):
    """The second checked its rows before the first wrote: both planned the office as new."""
    from partners.services import imports

    first = _import(manager, _sheet(_row(1)))
    second = _import(manager, _sheet(_row(2)))
    PartnerImport.objects.update(status=PartnerImport.Status.QUEUED)
    first.refresh_from_db()
    write = imports._write_import

    def first_writes_in_between(partner_import, *args, **kwargs):
        if partner_import.pk == second.pk and first.status == PartnerImport.Status.QUEUED:
            first.status = partner_import_apply(import_id=first.pk).status
        write(partner_import, *args, **kwargs)

    monkeypatch.setattr(imports, "_write_import", first_writes_in_between)
    partner_import_apply(import_id=second.pk)

    assert first.status == PartnerImport.Status.APPLIED
    assert Organization.objects.filter(name="Kearney Family Practice").count() == 1
    second.refresh_from_db()
    assert second.status == PartnerImport.Status.FAILED
    assert "Kearney Family Practice" in second.error and "Upload the file again" in second.error
